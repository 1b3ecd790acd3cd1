"""Shared building blocks of the families: the conv-BN-ReLU layer, width scaling, and grouping a flat list
of greedy units into a StagedNet.

A family builds its network as *units* (a conv layer, a residual block, ...) and tags each unit with
the resolution stage it belongs to. ``model.stage_grouping`` then decides what one greedy stage is:
``unit`` keeps one block per unit; ``pool`` merges the units of each resolution stage into one block.
"""

from __future__ import annotations

from itertools import groupby

from torch import nn

from lwt.config import ModelConfig
from lwt.errors import LwtError
from lwt.models.staged import StagedNet


def conv_bn_relu(in_ch: int, out_ch: int, batch_norm: bool, kernel: int = 3, bias: bool | None = None) -> list:
    """Same-size conv -> [BN] -> ReLU, as a list of layers; ``bias`` None: a bias exactly when there is no BN."""
    conv = nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=not batch_norm if bias is None else bias)
    return [conv, *([nn.BatchNorm2d(out_ch)] if batch_norm else []), nn.ReLU(inplace=True)]


def scale_widths(widths: list[int], width: int | None) -> list[int]:
    """``model.width`` sets the first width; the others keep their ratio to it (64 -> 8 divides all by 8)."""
    if width is None:
        return list(widths)
    return [max(1, round(w * width / widths[0])) for w in widths]


def depth_from_name(cfg: ModelConfig) -> None:
    """The depth of these families is in their name (vgg16, resnet56): refuse a knob that would be ignored."""
    if cfg.num_blocks is not None:
        raise LwtError(f"model.num_blocks does not apply to {cfg.name}: its depth is fixed by the name; "
                       "use curriculum.max_stages to train only the first stages")


def stack_units(cfg: ModelConfig, units: list[nn.Module], widths: list[int], resolution: list[int],
                classifier: nn.Module) -> StagedNet:
    """``units[i]`` outputs ``widths[i]`` channels and belongs to resolution stage ``resolution[i]``
    (non-decreasing). With ``stage_grouping=pool`` consecutive units of one resolution become one block
    whose width is that of its last unit."""
    if cfg.stage_grouping == "unit":
        return StagedNet(units, classifier, widths)
    groups = [list(g) for _, g in groupby(zip(units, widths, resolution), key=lambda unit: unit[2])]
    return StagedNet([nn.Sequential(*(u for u, _, _ in g)) for g in groups], classifier, [g[-1][1] for g in groups])
