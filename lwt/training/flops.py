"""Training FLOPs of a phase, counted by torch's ``FlopCounterMode`` on one real batch.

Convention (``StageRow.train_flops``, ``FineTune.train_flops``, ``RunResult.train_flops``):

- what is counted: one training step's forward and backward passes, as ``FlopCounterMode`` counts them
  (matrix products and convolutions, a multiply-add = 2 FLOPs; normalization, activations, pooling, the
  loss and the optimizer update are not counted), for the phase's module on a batch shaped as the
  phase's first training batch, divided by its size (these counts are linear in the batch size), times
  the training images the phase went through: epochs x training images (every optimizer step on its
  batch, the last batch of an epoch being the short one). Validation, test and the end-of-run
  evaluation are not training and are not counted.
- greedy stage k: the frozen prefix's forward (blocks 1..k-1, no backward: it has no gradient) plus block k
  and its auxiliary head, forward and backward. When the stage trains from cached prefix features
  (``data.augment=false``, lwt/training/prefix.py) the prefix costs nothing per step and is not counted:
  the cache is one block's forward over the training images per stage, which is small next to the
  stage's epochs and is left out, so the number is the compute a step actually does.
- e2e: the whole network with its classifier and the readout heads of the lower blocks (on detached
  features: forward and their own backward). dgl: every block with its head, each block's backward stopping
  at its input. fine-tuning: as e2e, through the depth the greedy curriculum reached.

The count runs on a copy of the module on the meta device, so it computes nothing and cannot change a
trained number (weights, batch-norm statistics, random streams); its cost is a fraction of a second.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor

from lwt.training.base import BaseModule


def step_flops(module: BaseModule, x: Tensor, y: Tensor, from_features: bool = False) -> tuple[int, int]:
    """(forward, forward + backward) FLOPs of one training step of ``module`` on the batch ``x`` (B, ...),
    ``y`` (B,); ``from_features``: ``x`` is a greedy stage's cached prefix output (only block and head run)."""
    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(module).to("meta")  # deepcopy leaves the Trainer out (LightningModule.__getstate__)
    for name, value in vars(meta).items():  # trainer.compile's wrapped block: counted as the plain block
        if isinstance(value, torch.nn.Module) and hasattr(value, "_orig_mod"):
            object.__setattr__(meta, name, value._orig_mod)
    x, y = x.to("meta", torch.float32), y.to("meta")
    if meta.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with FlopCounterMode(display=False) as counter:
        outs = meta.from_prefix(x) if from_features else meta.readouts(x)
        forward = counter.get_total_flops()
        loss = sum(F.cross_entropy(logits.float(), y) for logits in outs.values())
        if loss.requires_grad:
            loss.backward()
    return int(forward), int(counter.get_total_flops())


def batch_flops(module: BaseModule, dm) -> tuple[int, int, int]:
    """(one training step's FLOPs on the first training batch, that batch's size, training images) of
    ``module`` on ``dm`` (the run's DataModule or a greedy stage's PrefixCache, set up)."""
    base = getattr(dm, "dm", dm)  # a PrefixCache's DataModule
    features = "train" in getattr(dm, "cached", ())
    data = dm.sets["train"] if features else base.train_set
    x, y = data[range(min(base.cfg.batch_size, len(data)))]  # the first batch of the training set
    x = x.float() if features else base.preprocess(x, train=False)  # un-augmented: same shape, no random draw
    _, per_batch = step_flops(module, x, y, from_features=features)
    return per_batch, len(x), len(base.train_set)


def train_flops(per_batch: int, batch: int, images: int, epochs: int) -> int:
    """``epochs`` epochs over ``images`` training images at ``per_batch`` FLOPs per batch of ``batch``."""
    return per_batch * epochs * images // batch


def phase_train_flops(module: BaseModule, dm, epochs: int) -> int:
    """The training FLOPs of a phase that ran ``epochs`` epochs of ``module`` on ``dm`` (the run's DataModule
    or a greedy stage's PrefixCache, still set up): see the module docstring for what is counted."""
    return train_flops(*batch_flops(module, dm), epochs)
