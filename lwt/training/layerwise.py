"""Layer-wise learning rates and weight decay: which multiplier and decay each block's parameters get.

Early blocks of a greedily trained network fit their local problem fast and then overfit it; a smaller
learning rate (or a stronger weight decay) on them is one remedy. Blocks are numbered 0..K-1 here;
``lr_k = lr * gamma ** (K - 1 - k)`` is the documented ``lr * gamma^(K-k)`` (``optim.stage_lr_gamma``) with
1-based k.
"""

from __future__ import annotations

from torch import nn

from lwt.config import OptimConfig


def lr_multipliers(mult: list[float] | None, gamma: float | None, num_blocks: int) -> list[float]:
    """One multiplier per block: the explicit list, the geometric rule (last block 1.0), or all 1.0."""
    if mult is not None:
        return list(mult[:num_blocks])
    if gamma is not None:
        return [gamma ** (num_blocks - 1 - k) for k in range(num_blocks)]
    return [1.0] * num_blocks


def block_groups(optim: OptimConfig, num_blocks: int) -> list[dict]:
    """``[{"lr": ..., "weight_decay": ...}]`` for blocks 0..num_blocks-1 (optimizer param-group options)."""
    mults = lr_multipliers(optim.stage_lr_mult, optim.stage_lr_gamma, num_blocks)
    decays = optim.stage_weight_decay or [optim.weight_decay] * num_blocks
    return [{"lr": optim.lr * m, "weight_decay": wd} for m, wd in zip(mults, decays)]


def per_block_param_groups(optim: OptimConfig, blocks: list[nn.Module], heads: list[nn.Parameter],
                           num_blocks: int | None = None) -> list[dict]:
    """Discriminative learning rates for end-to-end training: one param group per block with that block's
    options, plus the ``heads`` (classifier, readout heads) at the last block's options (they sit on top
    of it). ``num_blocks``: K of the geometric rule (default: ``len(blocks)``)."""
    options = block_groups(optim, num_blocks or len(blocks))
    groups = [{"params": list(b.parameters()), **options[k]} for k, b in enumerate(blocks)]
    if heads:
        groups.append({"params": list(heads), **options[len(blocks) - 1]})
    return [g for g in groups if g["params"]]  # a parameter-free block (pooling only) needs no group
