"""A plain CNN: one 3x3 conv + BN + ReLU per block, widths straight from ``model.widths``.

Downsampling goes where the width grows (``widths[i+1] > widths[i]``), the usual "halve the map, widen
the layer" rule, so a width list alone fixes the architecture: [64, 128, 256, 256] on 32x32 gives maps
32, 16, 8, 8. ``model.downsample_at`` moves it: the blocks (1-based) whose output is halved, whatever the
widths, e.g. [1, 2] on [16, 16, 32, 32, 64, 64, 64, 64] gives maps 32, 16, 8, 8, ... instead of 32, 32, 16, 16,
8, ... (the accelerated downsampling of Ma et al., 2020, "Why layer-wise learning is hard to scale up": the
shallow blocks that a greedy curriculum fits first see a smaller map sooner, and the deep blocks work on
smaller, more separable maps). ``model.pooling`` says how: ``max`` ends block i with a 2x2 max-pool;
``space_to_depth`` starts block i+1 with Belilovsky's invertible (B, C, H, W) -> (B, 4C, H/2, W/2) reshuffle
instead.

The classifier is the last block's auxiliary problem (``model.aux``), as in Belilovsky et al.: greedy
training reads its last stage out through an aux head of exactly this shape, so with it greedy and
end-to-end training fit the same function class and simple_cnn compares the two methods alone.
"""

from __future__ import annotations

from torch import nn

from lwt.config import ModelConfig
from lwt.errors import LwtError
from lwt.models.belilovsky import conv_block
from lwt.models.heads import make_head
from lwt.models.registry import register
from lwt.models.units import scale_widths, stack_units

DEFAULT_WIDTHS = [64, 128, 256, 256]


@register("simple_cnn", aux_k=2)
def simple_cnn(cfg: ModelConfig, num_classes: int, input_shape, aux_k: int):
    if cfg.num_blocks is not None:
        raise LwtError("model.num_blocks does not apply to simple_cnn: list one width per block in "
                       "model.widths, e.g. model.widths=[64,128,256]")
    widths = scale_widths(cfg.widths or DEFAULT_WIDTHS, cfg.width)
    if not widths or min(widths) < 1:
        raise LwtError(f"model.widths={cfg.widths} must list at least one positive width")
    batch_norm = True if cfg.batch_norm is None else cfg.batch_norm
    down_after = downsampling(cfg.downsample_at, widths)
    if min(input_shape[1:]) >> sum(down_after) < 1:
        rule = (f"model.downsample_at={cfg.downsample_at}" if cfg.downsample_at is not None
                else f"model.widths={widths} (the map is halved where the width grows)")
        raise LwtError(f"{rule} halves the {input_shape[1]}x{input_shape[2]} images {sum(down_after)} times, "
                       "below one pixel; halve it fewer times")
    units, resolution = [], []
    channels, stage = input_shape[0], 0
    for i, width in enumerate(widths):
        s2d = cfg.pooling == "space_to_depth" and i > 0 and down_after[i - 1]
        block = conv_block(channels, width, batch_norm, downsample=s2d)  # (B, width, H, W)
        if cfg.pooling == "max" and down_after[i]:
            block.append(nn.MaxPool2d(2))  # (B, width, H/2, W/2)
        units.append(block)
        resolution.append(stage)
        stage += down_after[i]  # the next block works at the next resolution
        channels = width
    classifier = make_head(cfg.aux, channels, num_classes, aux_k, batch_norm)
    return stack_units(cfg, units, widths, resolution, classifier)


def downsampling(blocks: list[int] | None, widths: list[int]) -> list[bool]:
    """For each block, whether its output map is halved: the blocks listed (1-based, ``model.downsample_at``),
    else each block whose successor is wider. A block past the last one, a repeat, or the last block (its
    output goes to the classifier at the map it has) is refused."""
    if blocks is None:
        return [i + 1 < len(widths) and widths[i + 1] > widths[i] for i in range(len(widths))]
    if len(set(blocks)) != len(blocks) or not all(1 <= b < len(widths) for b in blocks):
        raise LwtError(f"model.downsample_at={blocks}: list distinct blocks from 1 to {len(widths) - 1} (the last "
                       f"of the {len(widths)} blocks feeds the classifier), e.g. model.downsample_at=[1, 2]; "
                       "null: halve the map where the width grows")
    return [i + 1 in blocks for i in range(len(widths))]
