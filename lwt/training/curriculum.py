"""The greedy curriculum: when a stage ends, and when the whole curriculum ends (the critical layer).

The two criteria are plain classes (testable on scripted sequences); ``Curriculum`` is the Lightning callback
that feeds them validation accuracy (and, for the critical layer, each stage's per-image validation correctness)
and keeps their state in checkpoints and progress.json.
"""

from __future__ import annotations

import base64
import math

import lightning as L
import numpy as np

from lwt.config import CurriculumConfig
from lwt.errors import LwtError
from lwt.run.critical import discordant, paired_gain_pvalue


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
    """Curriculum end by the paired test (lwt/run/critical.py): ``patience`` new stages in a row that are not
    significantly more accurate than the stage to beat, on the same validation images. That stage is then the
    critical layer. ``patience=None`` never fires.

    The stage to beat is the first stage, then each stage that beat it (one-sided exact McNemar, p <= ``alpha``).
    A stage that gains without significance does not replace it, so small gains that add up still pay against it,
    and the critical layer is a stage no later stage was shown to beat. ``update`` needs each stage's per-image
    validation correctness when the rule is on; the state keeps the stage to beat's, so a resumed run goes on
    exactly.
    """

    def __init__(self, patience: int | None, alpha: float = 0.05, val_images: int | None = None):
        if not 0 < alpha < 1:
            raise ValueError(f"alpha={alpha} must be in (0, 1)")
        self.patience, self.alpha, self.val_images = patience, alpha, val_images
        self.reference_stage: int | None = None  # the stage to beat, its val acc and its (N,) bool correctness
        self.reference_acc: float | None = None
        self.reference_correct: np.ndarray | None = None
        self.best_stage: int | None = None  # the highest val acc so far, significant or not
        self.best_acc: float | None = None
        self.misses = 0
        self.history: list[dict] = []
        self.fired, self.critical_stage = False, None  # sticky: once fired, the curriculum is over

    def _checked(self, stage: int, correct) -> np.ndarray | None:
        if correct is None:
            if self.patience is not None:
                raise ValueError(f"stage {stage}: curriculum.critical_patience={self.patience} tests each stage on "
                                 "its per-image validation correctness; pass it to Curriculum.stage_done(stage, "
                                 "val_acc, val_correct=...) as a bool array of the validation images, in order")
            return None
        arr = np.asarray(correct)
        if arr.ndim != 1 or arr.dtype != bool:
            raise ValueError(f"stage {stage}: val_correct must be a 1-D bool array, got dtype {arr.dtype}, shape "
                             f"{arr.shape}")
        expected = self.val_images if self.reference_correct is None else self.reference_correct.size
        if expected is not None and arr.size != expected:
            raise ValueError(f"stage {stage}: val_correct has {arr.size} entries but the validation set has "
                             f"{expected} images")
        return arr.copy()

    def update(self, stage: int, acc: float, correct=None, counts: bool = True) -> bool:
        """Record stage ``stage``: its val accuracy and ``correct``, its (N,) bool per-image validation
        correctness. ``counts=False``: a stage copied from another run (curriculum.init_from) may become the stage
        to beat but is no miss, so the curriculum cannot end there."""
        correct = self._checked(stage, correct)
        entry = {"stage": stage, "val_acc": acc, "reference": self.reference_stage, "gain_over_reference": None,
                 "gained": None, "lost": None, "p_value": None, "pays": None}
        if self.reference_stage is None:
            entry["pays"] = True
        elif correct is not None and self.reference_correct is not None:
            gained, lost = discordant(correct, self.reference_correct)
            p = paired_gain_pvalue(correct, self.reference_correct)
            entry.update(gain_over_reference=(gained - lost) / correct.size, gained=gained, lost=lost, p_value=p,
                         pays=p <= self.alpha)
        if entry["pays"]:
            self.reference_stage, self.reference_acc, self.reference_correct = stage, acc, correct
            self.misses = 0
        elif entry["pays"] is False and counts:
            self.misses += 1
        if self.best_acc is None or acc > self.best_acc:
            self.best_acc, self.best_stage = acc, stage
        self.history.append(entry)
        if not self.fired and self.patience is not None and self.misses >= self.patience:
            self.fired, self.critical_stage = True, self.reference_stage
        return self.fired

    def decision(self) -> dict:
        return {
            "critical_layer": self.critical_stage,
            "fired": self.fired,
            "rule": "paired",  # one-sided exact McNemar against the stage to beat (lwt/run/critical.py)
            "alpha": self.alpha,
            "patience": self.patience,
            "reference_stage": self.reference_stage,  # the stage to beat when the curriculum ended
            "reference_val_acc": self.reference_acc,
            "best_stage": self.best_stage,
            "best_val_acc": self.best_acc,
            "val_images": self.val_images,
            "history": self.history,  # each stage's gain over the stage to beat, discordant counts and p-value
        }

    def state_dict(self) -> dict:
        """Plain JSON data (progress.json holds it): the stage to beat's correctness as packed bits."""
        state = {k: v for k, v in vars(self).items() if k not in ("patience", "alpha", "val_images")}
        state["reference_correct"] = pack_bits(self.reference_correct)
        return state

    def load_state_dict(self, state: dict) -> None:
        if "reference_correct" not in state:  # the state of a threshold rule, which kept no per-image correctness
            if self.patience is not None and not state.get("fired"):
                raise LwtError("this run's saved curriculum state (progress.json) comes from a critical-layer rule "
                               "that kept no per-image validation correctness, so the paired test cannot go on "
                               "from it; retrain the run (lwt train --overwrite)")
            best = state.get("best_stage")
            state = {"best_stage": best, "best_acc": state.get("best_acc") if best is not None else None,
                     "reference_stage": best, "reference_acc": state.get("best_acc") if best is not None else None,
                     "reference_correct": None, "misses": state.get("misses", 0), "history": state.get("history", []),
                     "fired": state.get("fired", False), "critical_stage": state.get("critical_stage")}
        for key in ("reference_stage", "reference_acc", "best_stage", "best_acc", "misses", "fired",
                    "critical_stage"):
            setattr(self, key, state[key])
        self.history = [dict(h) for h in state["history"]]
        self.reference_correct = unpack_bits(state["reference_correct"])


def pack_bits(correct: np.ndarray | None) -> dict | None:
    """A bool vector as JSON: ``{"n": N, "bits": base64 of np.packbits}`` (N / 8 bytes, not a list of N)."""
    if correct is None:
        return None
    return {"n": int(correct.size), "bits": base64.b64encode(np.packbits(correct).tobytes()).decode("ascii")}


def unpack_bits(packed: dict | None) -> np.ndarray | None:
    if packed is None:
        return None
    raw = np.frombuffer(base64.b64decode(packed["bits"]), dtype=np.uint8)
    return np.unpackbits(raw, count=packed["n"]).astype(bool)


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
        self.critical = CriticalLayer(cfg.critical_patience, cfg.critical_alpha, val_images)
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

    def stage_done(self, stage: int, val_acc: float, val_correct: np.ndarray | None = None,
                   copied: bool = False) -> bool:
        """Record a finished stage; True when the curriculum should stop (critical layer or last block).
        ``val_correct``: (N,) bool, the stage's correctness on each validation image, in the same image order at
        every stage (and on every DDP rank); required when curriculum.critical_patience is set.
        ``copied``: a stage taken from another run (curriculum.init_from), which never ends the curriculum."""
        fired = self.critical.update(stage, val_acc, val_correct, counts=not copied)
        return fired or stage >= self.num_stages

    def state_dict(self) -> dict:
        return {
            "stage": self.stage,
            "plateau": vars(self.plateau).copy(),
            "critical": self.critical.state_dict(),
            "stop_reason": dict(self.stop_reason),
        }

    def load_state_dict(self, state: dict) -> None:
        self.stage = state["stage"]
        vars(self.plateau).update(state["plateau"])
        self.critical.load_state_dict(state["critical"])
        self.stop_reason = {int(k): v for k, v in state["stop_reason"].items()}  # JSON keys are strings
