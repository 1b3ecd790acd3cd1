"""The LightningModule shared by greedy stages and end-to-end training: readouts, metrics, optimizer.

A subclass says which parameters train (``trainable_parameters``) and how a batch is read out at each
depth (``readouts``: depth -> logits). Every readout adds its cross-entropy to the loss; the readout at
``main_depth`` is the one logged as ``{split}/acc`` and used for curriculum decisions.
"""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from lwt.config import OptimConfig, TrainerConfig
from lwt.models import StagedNet

SPLITS = ("train", "val", "test")


class BaseModule(L.LightningModule):
    """``net`` and ``optim`` may also be given as the plain data ``save_lwt_hyperparameters`` stores, which is how
    Lightning's ``load_from_checkpoint`` builds a module again from a stage/E2E/DGL checkpoint."""

    def __init__(self, net: StagedNet | dict, optim: OptimConfig | dict, num_classes: int, depths: list[int],
                 main_depth: int, max_epochs: int, stage: int | None = None):
        super().__init__()
        if isinstance(net, dict):
            from lwt.models import rebuild_model

            net = rebuild_model(net)
        if isinstance(optim, dict):
            optim = OptimConfig.model_validate(optim)
        self.net, self.optim_cfg, self.max_epochs = net, optim, max_epochs
        self.stage_tag = stage  # greedy: the stage (the loggers' rows get it as `stage`: lwt/training/axes.py)
        self.depths, self.main_depth = depths, main_depth
        self.accuracy = nn.ModuleDict({
            f"{split}_{d}": MulticlassAccuracy(num_classes, average="micro") for split in SPLITS for d in depths
        })

    channels_last = False  # set by use_speed_options

    def save_lwt_hyperparameters(self, num_classes: int, **args) -> None:
        """Lightning's ``save_hyperparameters``, as plain data a ``weights_only`` load accepts: the network's build
        arguments (its weights are the checkpoint's state dict), the optimizer config, the subclass's own
        arguments. Not sent to the loggers: the run's config is already there, flat."""
        build_args = getattr(self.net, "build_args", None)  # None: a network not made by build_model
        if build_args is None:
            return
        self.save_hyperparameters({"net": build_args, "optim": self.optim_cfg.model_dump(),
                                   "num_classes": num_classes, **args}, logger=False)

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
        return self._readout_step(batch, split)[0]

    def _readout_step(self, batch, split: str) -> tuple[Tensor, dict[int, Tensor]]:
        """The summed loss of a batch and its logits at each depth, with metrics and losses logged."""
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
        return sum(losses.values()), outs

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx) -> dict[int, Tensor]:
        """Each depth's predicted classes (B,), the argmax the accuracy metric took: the per-image record
        (lwt/training/predictions.py) gets them as the batch's outputs."""
        return {d: logits.argmax(1) for d, logits in self._readout_step(batch, "val")[1].items()}

    def test_step(self, batch, batch_idx) -> dict[int, Tensor]:
        return {d: logits.argmax(1) for d, logits in self._readout_step(batch, "test")[1].items()}

    def make_optimizer(self, groups: list[dict]):
        """The optimizer of ``optim.name`` over ``groups`` (SGD, or AdamW with torch's default betas; a group's own
        ``lr`` / ``weight_decay`` override these) and its per-step scheduler (warm-up times the schedule) over
        this phase's steps."""
        o = self.optim_cfg
        if o.name == "adamw":
            opt = torch.optim.AdamW(groups, lr=o.lr, weight_decay=o.weight_decay)
        else:
            opt = torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                                  nesterov=o.nesterov)
        if self._trainer is None:  # built outside a Trainer (to inspect its param groups): no budget, no schedule
            return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
        steps = max(1, int(self.trainer.estimated_stepping_batches))  # max_epochs x batches per epoch
        warmup = math.ceil(o.warmup_epochs * steps / self.max_epochs) if o.warmup_epochs else 0
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(o, step, steps, warmup))

    def configure_optimizers(self):
        opt, sched = self.make_optimizer(self.param_groups())
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def lr_factor(o: OptimConfig, step: int, steps: int, warmup: int = 0) -> float:
    """The learning-rate multiplier of optimizer step ``step`` (0-based) of ``steps``: the schedule's
    factor, times the linear warm-up's (s+1)/warmup over the first ``warmup`` steps.

    Milestone fraction f falls at step round(f * steps): with 50 epochs it is the first step of epoch 50f,
    so [0.3, 0.6, 0.9] is exactly the paper's epochs 15, 30, 45."""
    if o.schedule == "step":
        factor = o.gamma ** sum(step >= round(f * steps) for f in o.milestones)
    elif o.schedule == "cosine":
        factor = 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))
    else:
        factor = 1.0
    if warmup and step < warmup:
        factor *= (step + 1) / warmup
    return factor
