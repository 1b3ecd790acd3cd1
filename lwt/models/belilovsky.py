"""Belilovsky, Eickenberg & Oyallon (ICML 2019) CIFAR networks: 3x3 conv blocks of width M with
"invertible" space-to-depth downsampling.

Presets (paper, Sec. 4.1): k=1 uses 5 blocks of M=256, downsampling before blocks 1 and 3, no BN;
k=2/3 use 4 blocks of M=128, downsampling before block 1, with BN. Downsampling before block 1
shrinks the input itself (32x32x3 -> 16x16x12); later downsamplings double the width.
"""

from __future__ import annotations

from torch import Tensor, nn

from lwt.config import ModelConfig
from lwt.models.heads import make_head
from lwt.models.registry import register
from lwt.models.staged import StagedNet


class SpaceToDepth(nn.Module):
    """(B, C, H, W) -> (B, 4C, H/2, W/2): each 2x2 patch becomes 4 channels; nothing is lost."""

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.pixel_unshuffle(x, 2)


def conv_block(in_ch: int, out_ch: int, batch_norm: bool, downsample: bool) -> nn.Sequential:
    layers: list[nn.Module] = [SpaceToDepth()] if downsample else []
    conv_in = in_ch * 4 if downsample else in_ch
    layers.append(nn.Conv2d(conv_in, out_ch, 3, padding=1, bias=not batch_norm))
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_ch))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def belilovsky_net(cfg: ModelConfig, num_classes: int, input_shape, aux_k: int, *, width: int,
                   num_blocks: int, downsample: tuple[int, ...], batch_norm: bool) -> StagedNet:
    width = cfg.width or width
    num_blocks = cfg.num_blocks or num_blocks
    batch_norm = batch_norm if cfg.batch_norm is None else cfg.batch_norm
    blocks, widths = [], []
    channels = input_shape[0]
    for i in range(1, num_blocks + 1):
        down = i in downsample
        if down and i > 1:
            width *= 2
        blocks.append(conv_block(channels, width, batch_norm, down))
        widths.append(width)
        channels = width
    # the network's classifier is the last block's auxiliary problem, as in the paper
    classifier = make_head(cfg.aux, channels, num_classes, aux_k, batch_norm)
    return StagedNet(blocks, classifier, widths)


@register("belilovsky_k1", aux_k=1, batch_norm=False)
def belilovsky_k1(cfg, num_classes, input_shape, aux_k):
    return belilovsky_net(cfg, num_classes, input_shape, aux_k, width=256, num_blocks=5,
                          downsample=(1, 3), batch_norm=False)


@register("belilovsky_k2", aux_k=2)
def belilovsky_k2(cfg, num_classes, input_shape, aux_k):
    return belilovsky_net(cfg, num_classes, input_shape, aux_k, width=128, num_blocks=4,
                          downsample=(1,), batch_norm=True)


@register("belilovsky_k3", aux_k=3)
def belilovsky_k3(cfg, num_classes, input_shape, aux_k):
    return belilovsky_net(cfg, num_classes, input_shape, aux_k, width=128, num_blocks=4,
                          downsample=(1,), batch_norm=True)
