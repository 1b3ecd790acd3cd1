"""One greedy stage: a frozen prefix of blocks, one trainable block, and its auxiliary head."""

from __future__ import annotations

import torch
from torch import Tensor

from lwt.config import OptimConfig
from lwt.models import StagedNet
from lwt.training.base import BaseModule
from lwt.training.layerwise import block_groups


class StageModule(BaseModule):
    """Trains ``net.blocks[stage]`` + ``net.aux_heads[stage]`` on top of the frozen ``net.blocks[:stage]``.

    The prefix stays in eval mode (BN running statistics untouched), has ``requires_grad=False`` and is
    run under ``no_grad``, so it costs one forward pass and no autograd memory. Later blocks and heads
    are frozen too (they are simply unused). ``stage`` is 0-based; the logged depth is ``stage + 1``.
    """

    def __init__(self, net: StagedNet, stage: int, optim: OptimConfig, num_classes: int, max_epochs: int):
        super().__init__(net, optim, num_classes, depths=[stage + 1], main_depth=stage + 1,
                         max_epochs=max_epochs, stage=stage + 1)
        self.stage = stage
        self.freeze_all_but_trainable()
        self.train()

    @property
    def block(self):
        return self.net.blocks[self.stage]

    @property
    def head(self):
        return self.net.aux_heads[self.stage]

    def trainable_parameters(self):
        return [*self.block.parameters(), *self.head.parameters()]

    def param_groups(self) -> list[dict]:
        """One group: lr * this stage's multiplier, this stage's weight decay (optim.stage_*)."""
        options = block_groups(self.optim_cfg, self.net.num_blocks)[self.stage]
        return [{"params": self.trainable_parameters(), **options}]

    def train(self, mode: bool = True):
        super().train(False)  # everything frozen is in eval mode ...
        self.block.train(mode)  # ... except the stage being trained
        self.head.train(mode)
        self.accuracy.train(mode)
        return self

    def readouts(self, x: Tensor) -> dict[int, Tensor]:
        with torch.no_grad():
            h = self.net.features(x, self.stage)  # (B, C, H, W) output of the frozen prefix
        return {self.stage + 1: self.head(self.block(h))}
