"""One greedy stage: a frozen prefix of blocks, one trainable block, and its auxiliary head."""

from __future__ import annotations

import torch
from torch import Tensor

from lwt.config import OptimConfig, TrainerConfig
from lwt.models import StagedNet
from lwt.training.base import BaseModule
from lwt.training.layerwise import block_groups
from lwt.training.prefix import PrefixCache


class StageModule(BaseModule):
    """Greedy stage ``stage`` (1-based, as everywhere): trains block ``stage`` and its auxiliary head
    (``net.blocks[stage-1]``, ``net.aux_heads[stage-1]``) on top of the frozen ``net.blocks[:stage-1]``.

    The prefix stays in eval mode (BN running statistics untouched), has ``requires_grad=False`` and is
    run under ``inference_mode``, so it costs one forward pass and no autograd memory; for the splits a
    ``PrefixCache`` serves (lwt/training/prefix.py) it costs nothing, as batches arrive as its output:
    val and test always, the training images when they are not augmented, and, with
    ``trainer.prefix_views=V``, V augmented views of them (epoch e reads view e mod V).
    Later blocks and heads are frozen too (they are simply unused). Its readout is depth ``stage``.
    (A checkpoint whose hyperparameters hold a 0-based stage loads with
    ``StageModule.load_from_checkpoint(path, stage=k)``, which overrides it.)
    """

    def __init__(self, net: StagedNet | dict, stage: int, optim: OptimConfig | dict, num_classes: int,
                 max_epochs: int):
        super().__init__(net, optim, num_classes, depths=[stage], main_depth=stage, max_epochs=max_epochs, stage=stage)
        self.save_lwt_hyperparameters(num_classes, stage=stage, max_epochs=max_epochs)
        self.stage = stage
        object.__setattr__(self, "block_fn", self.block)  # not a submodule: trainer.compile may wrap it
        self.freeze_all_but_trainable()
        self.train()

    @property
    def block(self):
        return self.net.blocks[self.stage - 1]

    @property
    def head(self):
        return self.net.aux_heads[self.stage - 1]

    def trainable_parameters(self):
        return [*self.block.parameters(), *self.head.parameters()]

    def param_groups(self) -> list[dict]:
        """One group: lr * this stage's multiplier, this stage's weight decay (optim.stage_*)."""
        options = block_groups(self.optim_cfg, self.net.num_blocks)[self.stage - 1]
        return [{"params": self.trainable_parameters(), **options}]

    def train(self, mode: bool = True):
        super().train(False)  # everything frozen is in eval mode ...
        self.block.train(mode)  # ... except the stage being trained
        self.head.train(mode)
        self.accuracy.train(mode)
        return self

    def use_speed_options(self, cfg: TrainerConfig) -> StageModule:
        super().use_speed_options(cfg)
        if cfg.compile:
            object.__setattr__(self, "block_fn", torch.compile(self.block))
        return self

    def prefix(self, x: Tensor) -> Tensor:
        """The frozen prefix's output (B, C, H, W), without an autograd graph."""
        if self.stage == 1:
            return x
        with torch.inference_mode():
            h = self.net.features(x, self.stage - 1)
        return h.clone()  # an inference tensor cannot be saved for block k's backward pass; a copy can

    @property
    def cached_splits(self) -> tuple[str, ...]:
        dm = self._trainer.datamodule if self._trainer is not None else None
        return dm.cached if isinstance(dm, PrefixCache) else ()

    def from_prefix(self, h: Tensor) -> dict[int, Tensor]:
        """The readout of the prefix's output ``h`` (B, C, H, W): block ``stage``, then its head."""
        return {self.stage: self.head(self.block_fn(h))}

    def readouts(self, x: Tensor) -> dict[int, Tensor]:
        return self.from_prefix(self.prefix(x))

    def step_readouts(self, x: Tensor, split: str) -> dict[int, Tensor]:
        if split in self.cached_splits:  # x is already the prefix's output
            return self.from_prefix(x)
        return self.readouts(x)
