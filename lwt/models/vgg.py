"""VGG-11/13/16/19 with batch norm (Simonyan & Zisserman 2015, configurations A, B, D, E), as data.

One greedy unit per 3x3 conv layer; a max-pool ('M') belongs to the unit before it. Convs keep their
bias next to BN, as torchvision's ``vgg*_bn`` and the common CIFAR VGGs do, so parameter counts match
theirs (VGG-11 on CIFAR-10: 9,231,114).

Classifier: for inputs up to 32x32 (CIFAR), the five pools leave (B, 512, 1, 1) and one linear layer
reads the 512-d feature, the standard CIFAR VGG. Larger inputs (e.g. 64x64 Tiny ImageNet leaves 2x2)
are average-pooled to 2x2 and read by a small MLP (one hidden layer of the last width, dropout as VGG).
"""

from __future__ import annotations

from functools import partial

from torch import nn

from lwt.config import ModelConfig
from lwt.models.registry import register
from lwt.models.staged import StagedNet
from lwt.models.units import conv_bn_relu, depth_from_name, scale_widths, stack_units

M = "M"  # 2x2 max-pool, stride 2
LAYERS: dict[str, list] = {
    "vgg11": [64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    "vgg13": [64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    "vgg16": [64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M],
    "vgg19": [64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M],
}


def vgg(cfg: ModelConfig, num_classes: int, input_shape, aux_k: int, *, layers: list) -> StagedNet:
    depth_from_name(cfg)
    batch_norm = True if cfg.batch_norm is None else cfg.batch_norm
    convs = scale_widths([w for w in layers if w != M], cfg.width)
    pooled = [layers[i + 1:i + 2] == [M] for i, w in enumerate(layers) if w != M]  # a pool after conv i?
    units, resolution = [], []
    channels, stage = input_shape[0], 0
    for width, pool in zip(convs, pooled):
        pooling = [nn.MaxPool2d(2)] if pool else []  # (B, width, H/2, W/2)
        units.append(nn.Sequential(*conv_bn_relu(channels, width, batch_norm, bias=True), *pooling))
        resolution.append(stage)
        stage += pool
        channels = width
    if input_shape[1] <= 32:  # the pool is the identity on CIFAR's (B, C, 1, 1); it guards other sizes
        classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))
    else:
        classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),  # (B, C*4)
            nn.Linear(channels * 4, channels), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(channels, num_classes),
        )
    return stack_units(cfg, units, convs, resolution, classifier)


for _name, _layers in LAYERS.items():
    register(_name, aux_k=2)(partial(vgg, layers=_layers))
