"""The greedy curriculum: when a stage ends, and when the whole curriculum ends (the critical layer).

The two criteria are plain classes (testable on scripted accuracy sequences); ``Curriculum`` is the
Lightning callback that feeds them validation accuracy and keeps their state in checkpoints.
"""

from __future__ import annotations

import math

import lightning as L

from lwt.config import CurriculumConfig


class Plateau:
    """Stage end: validation accuracy has not gained ``min_delta`` over its best for ``patience`` epochs."""

    def __init__(self, patience: int, min_delta: float):
        self.patience, self.min_delta = patience, min_delta
        self.best, self.stale = -math.inf, 0

    def update(self, acc: float) -> bool:
        if acc > self.best + self.min_delta:
            self.best, self.stale = acc, 0
        else:
            self.stale += 1
        return self.stale >= self.patience


class CriticalLayer:
    """Curriculum end: ``patience`` consecutive new stages fail to beat the best val accuracy so far by the
    threshold. The best stage is then the critical layer. ``patience=None`` never fires.

    The threshold is ``min_gain``, or with ``min_gain="auto"`` ``z`` binomial standard errors of the best
    accuracy p on ``val_images`` images, z * sqrt(p (1 - p) / n): a gain smaller than the noise of the
    validation estimate does not count as one.
    """

    def __init__(self, patience: int | None, min_gain: float | str, z: float = 2.0, val_images: int | None = None):
        if min_gain == "auto" and not val_images:
            raise ValueError("critical_min_gain=auto needs the validation set's size")
        self.patience, self.min_gain, self.z, self.val_images = patience, min_gain, z, val_images
        self.best_acc, self.best_stage, self.misses = -math.inf, None, 0
        self.history: list[dict] = []
        self.fired, self.critical_stage = False, None  # sticky: once fired, the curriculum is over

    def threshold(self) -> float:
        """The gain over the best so far that a new stage must exceed."""
        if self.min_gain != "auto":
            return float(self.min_gain)
        p = min(max(self.best_acc, 0.0), 1.0)
        return self.z * math.sqrt(p * (1 - p) / self.val_images)

    def update(self, stage: int, acc: float, counts: bool = True) -> bool:
        """Record stage ``stage``'s val accuracy; ``counts=False``: a stage copied from another run
        (curriculum.init_from) sets the best to beat but is no miss, so the curriculum cannot end there."""
        first = self.best_stage is None
        gain = None if first else acc - self.best_acc
        threshold = None if first else self.threshold()
        pays = first or acc > self.best_acc + threshold
        if pays:
            self.misses = 0
        elif counts:
            self.misses += 1
        if acc > self.best_acc:
            self.best_acc, self.best_stage = acc, stage
        self.history.append({"stage": stage, "val_acc": acc, "gain_over_best": gain, "threshold": threshold,
                             "pays": pays})
        if not self.fired and self.patience is not None and self.misses >= self.patience:
            self.fired, self.critical_stage = True, self.best_stage
        return self.fired

    def decision(self) -> dict:
        return {
            "critical_layer": self.critical_stage,
            "fired": self.fired,
            "best_stage": self.best_stage,
            "best_val_acc": self.best_acc if self.best_stage is not None else None,
            "patience": self.patience,
            "min_gain": self.min_gain,  # the rule: a number, or "auto" (then z and val_images say which)
            "z": self.z if self.min_gain == "auto" else None,
            "val_images": self.val_images,
            "history": self.history,  # each stage's threshold is in its entry
        }


class Curriculum(L.Callback):
    """Owns the curriculum state across the per-stage Trainers (and in their checkpoints).

    Stages are numbered from 1 here and in every result. ``stage_done`` is called by the runner after
    each stage and answers whether to stop the curriculum.
    """

    def __init__(self, cfg: CurriculumConfig, num_stages: int, val_images: int | None = None):
        self.cfg = cfg
        self.num_stages = min(num_stages, cfg.max_stages or num_stages)
        self.stage = 1
        self.plateau = self._new_plateau()
        self.critical = CriticalLayer(cfg.critical_patience, cfg.critical_min_gain, cfg.critical_z, val_images)
        self.stop_reason: dict[int, str] = {}

    def _new_plateau(self) -> Plateau:
        return Plateau(self.cfg.plateau_patience, self.cfg.plateau_min_delta)

    def start_stage(self, stage: int) -> None:
        self.stage, self.plateau = stage, self._new_plateau()
        self.stop_reason[stage] = "budget"

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # resumed from a checkpoint written in the epoch where the plateau ended the stage: stay stopped
        if self.cfg.stage_end == "plateau" and self.stop_reason.get(self.stage) == "plateau":
            trainer.should_stop = True

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.cfg.stage_end != "plateau" or "val/acc" not in trainer.callback_metrics:
            return
        if self.plateau.update(float(trainer.callback_metrics["val/acc"])):
            trainer.should_stop = True
            self.stop_reason[self.stage] = "plateau"

    def stage_done(self, stage: int, val_acc: float, copied: bool = False) -> bool:
        """Record a finished stage; True when the curriculum should stop (critical layer or last block).
        ``copied``: a stage taken from another run (curriculum.init_from), which never ends the curriculum."""
        fired = self.critical.update(stage, val_acc, counts=not copied)
        return fired or stage >= self.num_stages

    def state_dict(self) -> dict:
        return {
            "stage": self.stage,
            "plateau": vars(self.plateau).copy(),
            "critical": {k: v for k, v in vars(self.critical).items()},
            "stop_reason": dict(self.stop_reason),
        }

    def load_state_dict(self, state: dict) -> None:
        self.stage = state["stage"]
        vars(self.plateau).update(state["plateau"])
        vars(self.critical).update(state["critical"])
        self.stop_reason = {int(k): v for k, v in state["stop_reason"].items()}  # JSON keys are strings
