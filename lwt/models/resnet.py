"""ResNets of basic blocks (He et al., CVPR 2016). One residual block = one greedy unit; the stem is
part of the first unit, so unit 1 maps the image itself.

CIFAR ResNet-20/32/56/110 (paper, Sec. 4.2): depth 6n+2, three stages of n blocks at 16/32/64 channels
on 32/16/8 px maps. Shortcuts are option A (identity; where the shape changes, subsample by 2 and pad
the new channels with zeros), as in the paper: it adds no parameters, which gives its counts exactly:
269,722 / 464,154 / 853,018 / 1,727,962 parameters for 10 classes (0.27M/0.46M/0.85M/1.7M).

ResNet-18/34: four stages of [2,2,2,2] / [3,4,6,3] blocks at 64-512 channels, option-B shortcuts (1x1
conv + BN where the shape changes) as torchvision's. Inputs of 64 px and more get the ImageNet stem
(7x7/2 conv + 3x3/2 max-pool); smaller ones a 3x3/1 conv and no pool, the usual CIFAR variant, which
keeps 32x32 maps in stage 1 (11,173,962 parameters for 10 classes).

Classifier: global average pool + linear, (B, C, H, W) -> (B, C) -> (B, num_classes).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from lwt.config import ModelConfig
from lwt.models.registry import register
from lwt.models.staged import StagedNet
from lwt.models.units import depth_from_name, scale_widths, stack_units


class PadShortcut(nn.Module):
    """Option A: (B, C, H, W) -> (B, C_out, H/s, W/s), the new channels zero. Parameter-free."""

    def __init__(self, out_ch: int, stride: int):
        super().__init__()
        self.out_ch, self.stride = out_ch, stride

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return nn.functional.pad(x, (0, 0, 0, 0, 0, self.out_ch - x.shape[1]))


class BasicBlock(nn.Module):
    """relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x)); the first conv carries the stride."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, shortcut: str, batch_norm: bool):
        super().__init__()
        norm = nn.BatchNorm2d if batch_norm else nn.Identity
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=not batch_norm)
        self.bn1 = norm(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=not batch_norm)
        self.bn2 = norm(out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            if shortcut == "A":
                self.shortcut = PadShortcut(out_ch, stride)
            else:
                self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=not batch_norm),
                                              norm(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


def stem(in_ch: int, out_ch: int, imagenet: bool, batch_norm: bool) -> nn.Sequential:
    norm = nn.BatchNorm2d if batch_norm else nn.Identity
    if imagenet:  # (B, 3, H, W) -> (B, out_ch, H/4, W/4)
        return nn.Sequential(nn.Conv2d(in_ch, out_ch, 7, 2, 3, bias=not batch_norm), norm(out_ch),
                             nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=not batch_norm), norm(out_ch),
                         nn.ReLU(inplace=True))  # (B, out_ch, H, W)


def resnet(cfg: ModelConfig, num_classes: int, input_shape, aux_k: int, *, blocks_per_stage: list[int],
           widths: list[int], shortcut: str) -> StagedNet:
    """``shortcut`` "A": the CIFAR ResNet; "B": ResNet-18/34, with the ImageNet stem on inputs of 64 px or more."""
    depth_from_name(cfg)
    imagenet_stem = shortcut == "B" and input_shape[1] >= 64
    batch_norm = True if cfg.batch_norm is None else cfg.batch_norm
    widths = scale_widths(widths, cfg.width)
    units, unit_widths, resolution = [], [], []
    channels = widths[0]
    for stage, (n, width) in enumerate(zip(blocks_per_stage, widths)):
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            block = BasicBlock(channels, width, stride, shortcut, batch_norm)
            if not units:
                block = nn.Sequential(stem(input_shape[0], widths[0], imagenet_stem, batch_norm), block)
            units.append(block)
            unit_widths.append(width)
            resolution.append(stage)
            channels = width
    classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))
    return stack_units(cfg, units, unit_widths, resolution, classifier)


CIFAR_DEPTHS = {"resnet20": 3, "resnet32": 5, "resnet56": 9, "resnet110": 18}  # n blocks per stage
IMAGENET_LAYOUTS = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}
for _name, _n in CIFAR_DEPTHS.items():
    register(_name, aux_k=2)(partial(resnet, blocks_per_stage=[_n] * 3, widths=[16, 32, 64], shortcut="A"))
for _name, _layout in IMAGENET_LAYOUTS.items():
    register(_name, aux_k=2)(partial(resnet, blocks_per_stage=_layout, widths=[64, 128, 256, 512], shortcut="B"))
