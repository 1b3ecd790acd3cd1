"""Auxiliary classifiers attached to a block's output (``model.aux.kind`` picks one).

For both kinds ``k`` counts the head's weight layers (convs + linears), so ``model.aux.k`` means the
depth of the auxiliary problem whatever its kind, and k=1 is the same head for both: pool + linear.
"""

from __future__ import annotations

from torch import nn

from lwt.config import AuxConfig
from lwt.models.units import conv_bn_relu


class AuxHead(nn.Sequential):
    """Belilovsky et al.'s auxiliary problem of depth k, (B, C, H, W) -> (B, num_classes): (k-1) x [3x3 conv,
    BN, ReLU], average-pool to pool x pool, [BN: ``pool_bn``, as in the authors' code], linear."""

    def __init__(self, in_channels: int, num_classes: int, k: int = 1, width: int | None = None,
                 pool: int = 2, batch_norm: bool = True, pool_bn: bool = False):
        width = width or in_channels
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(k - 1):
            layers += conv_bn_relu(channels, width, batch_norm)
            channels = width
        layers.append(nn.AdaptiveAvgPool2d(pool))  # (B, C, pool, pool)
        if pool_bn:
            layers.append(nn.BatchNorm2d(channels))
        layers += [nn.Flatten(), nn.Linear(channels * pool * pool, num_classes)]
        super().__init__(*layers)


class DGLHead(nn.Sequential):
    """A cheap head in the spirit of DGL's MLP-SR auxiliary net (Belilovsky et al., ICML 2020): it pools
    first, so its cost barely depends on H, W. (B, C, H, W) -> avg-pool (B, C, p, p) -> (k-2) x [1x1 conv to
    ``hidden``, BN, ReLU] -> flatten -> [linear to ``hidden``, ReLU: k >= 2] -> linear -> (B, num_classes).
    DGL's own MLP-SR (three 1x1 convs, then a 3-hidden-layer MLP) is closest to k=5."""

    def __init__(self, in_channels: int, num_classes: int, k: int = 2, hidden: int = 256, pool: int = 2,
                 batch_norm: bool = True):
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(pool)]
        channels = in_channels
        for _ in range(k - 2):
            layers += conv_bn_relu(channels, hidden, batch_norm, kernel=1)
            channels = hidden
        layers.append(nn.Flatten())
        features = channels * pool * pool
        if k >= 2:  # no BatchNorm1d here: a last training batch of one image would make it fail
            layers += [nn.Linear(features, hidden), nn.ReLU(inplace=True)]
            features = hidden
        layers.append(nn.Linear(features, num_classes))
        super().__init__(*layers)


def make_head(aux: AuxConfig, in_channels: int, num_classes: int, k: int, batch_norm: bool,
              pool_bn: bool = False) -> nn.Module:
    """The auxiliary head ``aux.kind`` names, of depth ``k`` (already resolved against the preset);
    ``pool_bn`` applies to the conv kind only."""
    if aux.kind == "dgl":
        return DGLHead(in_channels, num_classes, k, aux.hidden, aux.pool, batch_norm)
    return AuxHead(in_channels, num_classes, k, aux.width, aux.pool, batch_norm, pool_bn)
