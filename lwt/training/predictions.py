"""Per-image predictions as a phase measured them, and where they go in the run folder (lwt/run/per_image.py).

A phase's ``val_acc`` is its last validation pass and its ``test_acc`` its test pass; ``Predictions`` keeps
the predicted class of every image in exactly those passes (the argmax the accuracy metric took, from the
same weights, inputs and precision), so the per-image rows reproduce the phase's accuracies exactly.
"""

from __future__ import annotations

from dataclasses import replace

import lightning as L
import numpy as np
import torch
from torch import Tensor

from lwt.run.dir import Phase, RunDir
from lwt.run.per_image import PerImage, has_per_image, read_per_image, write_per_image


class Predictions(L.Callback):
    """``val`` / ``test``: (D, N) int16 predictions, a row per depth of the module (``depths`` order), and
    ``val_labels`` / ``test_labels`` (N,), from the last validation pass and the last test pass this Trainer
    ran (None before one ran). Under DDP each rank's share is gathered back into dataset order, every image
    once (the logged accuracy also counts the images a rank repeats to even out the shares, so the two agree
    exactly when the world size divides the split)."""

    def __init__(self):
        self.val = self.test = self.val_labels = self.test_labels = None
        self.depths: list[int] = []
        self._parts: list[tuple[Tensor, Tensor]] = []

    def val_correct(self, depth: int) -> np.ndarray | None:
        """(N,) bool: which validation images the last validation pass got right at ``depth`` (None before one
        ran): what the curriculum's paired critical-layer test reads, the same on every DDP rank."""
        if self.val is None:
            return None
        return self.val[self.depths.index(depth)] == self.val_labels

    def _start(self, trainer) -> None:
        if not trainer.sanity_checking:
            self._parts = []

    def _add(self, trainer, pl_module, outputs, batch) -> None:
        if not trainer.sanity_checking and outputs is not None:
            self._parts.append((torch.stack([outputs[d] for d in pl_module.depths]), batch[1]))  # (D, B), (B,)

    def _collect(self, trainer, pl_module, split: str) -> tuple[np.ndarray, np.ndarray] | None:
        if trainer.sanity_checking or not self._parts:
            return None
        self.depths = list(pl_module.depths)
        pred = torch.cat([p for p, _ in self._parts], dim=1)  # (D, n_rank)
        labels = torch.cat([y for _, y in self._parts])
        self._parts = []
        if trainer.world_size > 1:  # rank r held positions r, r + W, ... of the padded order (RankBatches)
            pred = pl_module.all_gather(pred).permute(1, 2, 0).reshape(len(pred), -1)  # (W, D, n) -> (D, n W)
            labels = pl_module.all_gather(labels).t().reshape(-1)
            dm = trainer.datamodule
            n = len(getattr(getattr(dm, "dm", dm), f"{split}_set"))  # a PrefixCache's: its DataModule's
            pred, labels = pred[:, :n], labels[:n]  # the padding repeats the start
        return pred.to(torch.int16).cpu().numpy(), labels.to(torch.int16).cpu().numpy()

    def on_validation_epoch_start(self, trainer, pl_module):
        self._start(trainer)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._add(trainer, pl_module, outputs, batch)

    def on_validation_epoch_end(self, trainer, pl_module):
        got = self._collect(trainer, pl_module, "val")
        if got is not None:
            self.val, self.val_labels = got

    def on_test_epoch_start(self, trainer, pl_module):
        self._start(trainer)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._add(trainer, pl_module, outputs, batch)

    def on_test_epoch_end(self, trainer, pl_module):
        got = self._collect(trainer, pl_module, "test")
        if got is not None:
            self.test, self.test_labels = got


def images(dm) -> dict:
    """The labels and image positions per-image rows are read against (a PrefixCache's, its DataModule's)."""
    dm = getattr(dm, "dm", dm)
    return {"num_classes": dm.num_classes, "val_labels": dm.val_set.y.numpy(), "test_labels": dm.test_set.y.numpy(),
            "val_index": getattr(dm, "val_index", None), "test_index": getattr(dm, "test_index", None)}


def record_phase(run_dir: RunDir, phase: Phase, depths: list[int], seen: Predictions, dm) -> bool:
    """Write the rows of ``phase`` into ``run_dir/per_image.npz``: greedy stage k's row (stages below k kept,
    later ones and the ensemble dropped), every depth of e2e / dgl (a new file), or the fine-tuned network's
    rows. False, with a note, when the passes did not see every image in order (trainer.extra limiting
    batches): the run then has no per-image file."""
    info = images(dm)
    ok = all(getattr(seen, split) is not None and np.array_equal(getattr(seen, f"{split}_labels"),
                                                                 info[f"{split}_labels"]) for split in ("val", "test"))
    if not ok:
        print(f"[lwt] note: {phase} did not validate and test every image in order; the run records no "
              "per-image predictions", flush=True)
        (run_dir / "per_image.npz").unlink(missing_ok=True)
        return False
    if phase.kind == "finetune":
        if not has_per_image(run_dir):
            return False
        write_per_image(run_dir, replace(read_per_image(run_dir), finetune_depths=list(depths),
                                         finetune_val_pred=seen.val, finetune_test_pred=seen.test))
        return True
    base = PerImage.empty(**info)
    if phase.kind == "stage" and phase.stage > 1:
        if not has_per_image(run_dir):
            return False  # an earlier stage recorded none
        base = read_per_image(run_dir)
    write_per_image(run_dir, base.with_rows(depths, seen.val, seen.test))
    return True


def record_ensemble(run_dir: RunDir, val: np.ndarray, test: np.ndarray) -> None:
    """Add Belilovsky's ensemble at each depth (greedy, dgl: lwt/training/evaluate.py) to the run's rows."""
    if has_per_image(run_dir):
        p = read_per_image(run_dir)
        write_per_image(run_dir, replace(p, val_ensemble_pred=np.asarray(val).astype(np.int16),
                                         test_ensemble_pred=np.asarray(test).astype(np.int16)))


def forget_rows(run_dir: RunDir, stage: int) -> None:
    """Drop the rows of greedy stages ``stage``, ``stage``+1, ... (``lwt train --resume --redo-stage``)."""
    if has_per_image(run_dir):
        write_per_image(run_dir, read_per_image(run_dir).below(stage))
