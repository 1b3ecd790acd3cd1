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
    """Curriculum end: ``patience`` consecutive new stages fail to beat the best val accuracy so far by
    ``min_gain``. The best stage is then the critical layer. ``patience=None`` never fires."""

    def __init__(self, patience: int | None, min_gain: float):
        self.patience, self.min_gain = patience, min_gain
        self.best_acc, self.best_stage, self.misses = -math.inf, None, 0
        self.history: list[dict] = []
        self.fired, self.critical_stage = False, None  # sticky: once fired, the curriculum is over

    def update(self, stage: int, acc: float) -> bool:
        gain = acc - self.best_acc if self.best_stage is not None else None
        pays = self.best_stage is None or acc > self.best_acc + self.min_gain
        if pays:
            self.misses = 0
        else:
            self.misses += 1
        if acc > self.best_acc:
            self.best_acc, self.best_stage = acc, stage
        self.history.append({"stage": stage, "val_acc": acc, "gain_over_best": gain, "pays": pays})
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
            "min_gain": self.min_gain,
            "history": self.history,
        }


class Curriculum(L.Callback):
    """Owns the curriculum state across the per-stage Trainers (and in their checkpoints).

    Stages are numbered from 1 here and in every result. ``stage_done`` is called by the runner after
    each stage and answers whether to stop the curriculum.
    """

    def __init__(self, cfg: CurriculumConfig, num_stages: int):
        self.cfg = cfg
        self.num_stages = min(num_stages, cfg.max_stages or num_stages)
        self.stage = 1
        self.plateau = self._new_plateau()
        self.critical = CriticalLayer(cfg.critical_patience, cfg.critical_min_gain)
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

    def stage_done(self, stage: int, val_acc: float) -> bool:
        """Record a finished stage; True when the curriculum should stop (critical layer or last block)."""
        fired = self.critical.update(stage, val_acc)
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
