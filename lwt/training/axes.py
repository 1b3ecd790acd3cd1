"""Curriculum-wide x-axes: ``global_step`` and ``global_epoch`` never go back, across greedy stages and fine-tuning.

Each greedy stage (and the fine-tuning after it) has its own Trainer, so Lightning's step and epoch restart at 0
in every phase and the curves of successive stages would lie on top of each other. ``CurriculumClock`` sits
between Lightning and every logger of a run: each row a logger receives gets ``global_step`` and
``global_epoch`` (the phase's own step and epoch plus those of the phases before it) and, in a greedy stage,
``stage``. The per-phase ``trainer/global_step`` and ``epoch`` are kept as they are.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L

from lwt.run.result import StageRow


class CurriculumClock(L.Callback):
    """Added to every Trainer of a run (for the epoch of rows that carry none, e.g. the learning rate's);
    ``begin`` is called before each phase with the rows of the phases already done."""

    def __init__(self):
        self.stage: int | None = None
        self.step0, self.epoch0 = 0, 0
        self._trainer = None

    def begin(self, stage: int | None, done: list[StageRow]) -> None:
        """Start a phase (``stage``: the greedy stage, None for e2e/dgl/fine-tuning) after the phases whose
        result rows are ``done`` (their ``steps`` and ``epochs``; rows without ``steps`` count 0)."""
        self.stage = stage
        self.step0 = sum(r.steps or 0 for r in done)
        self.epoch0 = sum(r.epochs or 0 for r in done)

    def setup(self, trainer, pl_module, stage) -> None:
        self._trainer = trainer

    def stamp(self, metrics: dict, step: int | None) -> dict:
        """``metrics`` with the run's axes; a row without a step (a table logged after training) is left as is."""
        if step is None:
            return metrics
        epoch = metrics.get("epoch", self._trainer.current_epoch if self._trainer is not None else 0)
        out = {**metrics, "global_step": self.step0 + (step or 0), "global_epoch": self.epoch0 + int(epoch)}
        if self.stage is not None:
            out["stage"] = self.stage
        return out

    def wrap(self, log_metrics: Callable, global_x: bool) -> Callable:
        """``log_metrics`` of a logger, stamped. ``global_x``: also hand it ``global_step`` as its step (for
        loggers with no other x-axis, e.g. TensorBoard); else it keeps the phase's step (metrics.jsonl, W&B)."""

        def stamped(metrics, step=None):
            row = self.stamp(dict(metrics), step)
            return log_metrics(row, row["global_step"] if global_x and step is not None else step)

        return stamped


def attach_clock(own: list, users: list = ()) -> CurriculumClock:
    """One clock for a run's loggers: every logger's rows are stamped from now on. ``own``: lwt's metrics.jsonl and W&B
    loggers, which keep Lightning's per-phase step; ``users``: those of ``logging.loggers``, whose x-axis
    (TensorBoard's, MLflow's step) becomes ``global_step``."""
    clock = CurriculumClock()
    for logger in [*own, *users]:
        logger.log_metrics = clock.wrap(logger.log_metrics, global_x=logger in users)
        logger.lwt_clock = clock
    return clock


def clock_of(loggers: list) -> CurriculumClock:
    """The run's clock (a DDP worker, which has no loggers, gets one of its own that stamps nothing)."""
    return next((lg.lwt_clock for lg in loggers if hasattr(lg, "lwt_clock")), None) or CurriculumClock()


def progress_bar(title: str):
    """Lightning's progress bar, titled by the phase: "stage 2/4, epoch 3/10" (its ETA is Lightning's)."""
    from lightning.pytorch.callbacks import TQDMProgressBar

    class PhaseProgressBar(TQDMProgressBar):
        def on_train_epoch_start(self, trainer, *args) -> None:
            super().on_train_epoch_start(trainer, *args)
            self.train_progress_bar.set_description(f"{title}, epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")

    return PhaseProgressBar()
