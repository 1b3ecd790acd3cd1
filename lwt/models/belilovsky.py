"""Belilovsky, Eickenberg & Oyallon (ICML 2019) CIFAR networks, as their code's README commands build them
(eugenium/layerCNN, ``cifar.py`` + ``model_greedy.py``; the commands produced the published 88.3 / 90.4 /
91.7 %), and ``s2d_cnn``, lwt's cheaper variant of the k=2 network.

A block is a 3x3 conv (+ BN) + ReLU; a downsampling block starts with the "invertible" space-to-depth
reshuffle (B, C, H, W) -> (B, 4C, H/2, W/2) and doubles the width. The auxiliary problem of depth k is
(k-1) x [3x3 conv at the block's width (no bias), BN, ReLU], average pooling to 2x2, **BN**, linear
(``AuxHead(pool_bn=True)``); the network's classifier is the last block's auxiliary problem.

- ``belilovsky_k2`` (``--ncnn 4 --nlin 1 --feature_size 128 --down [1] --bn 1``) and ``belilovsky_k3``
  (``--nlin 2``, otherwise the same): 4 blocks; blocks 1-2 at 32x32 with M=128, block 3 downsamples
  (16x16, 256), block 4 at 16x16, 256. The input is *not* downsampled.
- ``belilovsky_k1`` (``--ncnn 5 --nlin 0 --feature_size 256``; no ``--bn``, the script's default
  ``--down [1,2]``): 5 blocks of widths 256, 256, 512, 1024, 1024 at 32, 32, 16, 8, 8 px, no BN anywhere; the
  head is pooling + linear. As in the authors' code, only block 1's conv has a bias (their later blocks
  are bias-free whether or not BN follows).

Where the commands and the paper's text disagree (the commands are followed here): the README says "k
corresponds to nlin" but every command uses nlin = k - 1 (nlin counts the head's hidden convs, so the
auxiliary problem has k weight layers: ``model.aux.k``); the text can be read as the input itself
space-to-depth'ed (16x16x12) before block 1, four 16x16 blocks of 128 for k=2/3 and downsampling before
blocks 1 and 3 for k=1, which is not what the commands run (``s2d_cnn`` is that reading of k=2). The reshuffle's
channel order differs from the authors' ``psi`` by a fixed permutation, which the next conv absorbs.
"""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from lwt.config import ModelConfig
from lwt.models.heads import make_head
from lwt.models.registry import register
from lwt.models.staged import StagedNet
from lwt.models.units import conv_bn_relu


class SpaceToDepth(nn.Module):
    """(B, C, H, W) -> (B, 4C, H/2, W/2): each 2x2 patch becomes 4 channels; nothing is lost."""

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.pixel_unshuffle(x, 2)


def conv_block(in_ch: int, out_ch: int, batch_norm: bool, downsample: bool, bias: bool | None = None) -> nn.Sequential:
    """[space-to-depth] -> 3x3 conv -> [BN] -> ReLU. ``bias``: None is the usual rule, no bias before BN."""
    s2d = [SpaceToDepth()] if downsample else []
    return nn.Sequential(*s2d, *conv_bn_relu(in_ch * 4 if downsample else in_ch, out_ch, batch_norm, bias=bias))


def authors_net(cfg: ModelConfig, num_classes: int, input_shape, aux_k: int, *, width: int, num_blocks: int,
                downsample: tuple[int, ...], batch_norm: bool) -> StagedNet:
    """Blocks 1..num_blocks; the blocks named in ``downsample`` (1-based) start with space-to-depth and
    double the width. Block 1's conv has a bias exactly when there is no BN; later convs never do."""
    width = cfg.width or width
    batch_norm = batch_norm if cfg.batch_norm is None else cfg.batch_norm
    blocks, widths = [], []
    channels = input_shape[0]
    for i in range(1, (cfg.num_blocks or num_blocks) + 1):
        down = i in downsample
        if down:
            width *= 2
        blocks.append(conv_block(channels, width, batch_norm, down, bias=(not batch_norm) if i == 1 else False))
        widths.append(width)  # (B, width, H, W), H halved at every downsampling block
        channels = width
    classifier = make_head(cfg.aux, channels, num_classes, aux_k, batch_norm, pool_bn=batch_norm)
    return StagedNet(blocks, classifier, widths)


register("belilovsky_k1", aux_k=1, batch_norm=False)(
    partial(authors_net, width=256, num_blocks=5, downsample=(3, 4), batch_norm=False))
for _k in (2, 3):  # the same network; only the depth of the auxiliary problem differs
    register(f"belilovsky_k{_k}", aux_k=_k, pool_bn=True)(
        partial(authors_net, width=128, num_blocks=4, downsample=(3,), batch_norm=True))


@register("s2d_cnn", aux_k=2)
def s2d_cnn(cfg, num_classes, input_shape, aux_k):
    """lwt's cheap CIFAR network (a reading of the paper's text, not its commands: ``RENAMED`` in
    lwt/analysis/style.py tells its runs named ``belilovsky_k2`` apart): the input
    is space-to-depth'ed to 16x16x12, then 4 blocks of 3x3 conv + BN + ReLU at 16x16 with M=128; aux heads
    without the post-pooling BN. About a quarter of belilovsky_k2's cost per image."""
    width = cfg.width or 128
    batch_norm = True if cfg.batch_norm is None else cfg.batch_norm
    blocks, channels = [], input_shape[0]
    for i in range(cfg.num_blocks or 4):
        blocks.append(conv_block(channels, width, batch_norm, downsample=i == 0))  # (B, M, 16, 16)
        channels = width
    classifier = make_head(cfg.aux, channels, num_classes, aux_k, batch_norm)
    return StagedNet(blocks, classifier, [width] * len(blocks))
