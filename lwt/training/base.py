"""The LightningModule shared by greedy stages and end-to-end training: readouts, metrics, optimizer.

A subclass says which parameters train (``trainable_parameters``) and how a batch is read out at each
depth (``readouts``: depth -> logits). Every readout adds its cross-entropy to the loss; the readout at
``main_depth`` is the one logged as ``{split}/acc`` and used for curriculum decisions.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from lwt.config import OptimConfig, TrainerConfig
from lwt.models import StagedNet

SPLITS = ("train", "val", "test")


class BaseModule(L.LightningModule):
    def __init__(self, net: StagedNet, optim: OptimConfig, num_classes: int, depths: list[int],
                 main_depth: int, max_epochs: int, stage: int | None = None):
        super().__init__()
        self.net, self.optim_cfg, self.max_epochs = net, optim, max_epochs
        self.stage_tag = stage  # greedy: logged as `stage` on every row, so curves split by stage
        self.depths, self.main_depth = depths, main_depth
        self.accuracy = nn.ModuleDict({
            f"{split}_{d}": MulticlassAccuracy(num_classes, average="micro") for split in SPLITS for d in depths
        })

    channels_last = False  # set by use_speed_options

    def readouts(self, x: Tensor) -> dict[int, Tensor]:
        raise NotImplementedError

    def step_readouts(self, x: Tensor, split: str) -> dict[int, Tensor]:
        """The readouts of a training/val/test batch; a greedy stage may get cached prefix features here."""
        return self.readouts(x)

    def use_speed_options(self, cfg: TrainerConfig) -> BaseModule:
        """trainer.channels_last (and, for a greedy stage, trainer.compile); returns self."""
        self.channels_last = cfg.channels_last
        if cfg.channels_last:
            self.net.to(memory_format=torch.channels_last)
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def param_groups(self) -> list[dict]:
        """Optimizer param groups; a group's ``lr``/``weight_decay`` override optim's (layer-wise remedies)."""
        return [{"params": self.trainable_parameters()}]

    def freeze_all_but_trainable(self) -> None:
        """``requires_grad`` only on ``trainable_parameters()``: the rest of the net is frozen."""
        for p in self.net.parameters():
            p.requires_grad_(False)
        for p in self.trainable_parameters():
            p.requires_grad_(True)

    def forward(self, x: Tensor) -> Tensor:
        return self.readouts(x)[self.main_depth]

    def _step(self, batch, split: str) -> Tensor:
        x, y = batch
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        outs = self.step_readouts(x, split)
        losses = {d: F.cross_entropy(logits, y) for d, logits in outs.items()}
        on_step = split == "train"
        for d, logits in outs.items():
            acc = self.accuracy[f"{split}_{d}"]
            acc(logits, y)
            self.log(f"{split}/acc_depth{d}", acc, on_step=False, on_epoch=True)
        self.log(f"{split}/acc", self.accuracy[f"{split}_{self.main_depth}"], on_step=False, on_epoch=True,
                 prog_bar=split != "test")
        self.log(f"{split}/loss", losses[self.main_depth], on_step=on_step, on_epoch=True, prog_bar=on_step)
        if self.stage_tag is not None:
            self.log("stage", float(self.stage_tag), on_step=on_step, on_epoch=True)
        return sum(losses.values())

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def make_optimizer(self, groups: list[dict]):
        """SGD over ``groups`` and its epoch-wise scheduler (None for the constant schedule)."""
        o = self.optim_cfg
        opt = torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                              nesterov=o.nesterov)
        if o.schedule == "constant":
            return opt, None
        if o.schedule == "step":
            return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=o.step_size, gamma=o.gamma)
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.max_epochs)

    def warmup_factor(self, batch_idx: int) -> float:
        """The learning-rate factor of this epoch's batch ``batch_idx`` under optim.warmup_epochs (1: none)."""
        batches = self.trainer.num_training_batches
        if not self.optim_cfg.warmup_epochs or not math.isfinite(batches):
            return 1.0
        steps = max(1, math.ceil(self.optim_cfg.warmup_epochs * batches))
        return min(1.0, (self.current_epoch * batches + batch_idx + 1) / steps)

    @contextmanager
    def warmed_up(self, optimizer, batch_idx: int):
        """Every group's lr times the warm-up factor for one optimizer step, then restored: the epoch-wise
        scheduler never sees the factor, so the schedule after warm-up is the one without it."""
        factor = self.warmup_factor(batch_idx)
        if factor == 1.0:  # off, or warm-up over: the step runs untouched
            yield
            return
        saved = [g["lr"] for g in optimizer.param_groups]
        for g in optimizer.param_groups:
            g["lr"] *= factor
        try:
            yield
        finally:
            for g, lr in zip(optimizer.param_groups, saved):
                g["lr"] = lr

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        with self.warmed_up(optimizer, batch_idx):
            super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)

    def configure_optimizers(self):
        opt, sched = self.make_optimizer(self.param_groups())
        if sched is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
