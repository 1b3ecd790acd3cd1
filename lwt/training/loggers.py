"""The loggers every Trainer of a run shares: lwt's metrics.jsonl always, W&B unless disabled (docs/wandb.md).

The W&B run id is kept in ``run_dir/wandb_id.txt``, so a resumed run continues its W&B run; online mode that
cannot reach the server falls back to offline with a warning: training never waits on W&B. Every row carries
the curriculum-wide ``global_step`` and ``global_epoch`` (lwt/training/axes.py), W&B's x-axis; a greedy run's
``test/acc`` and ``test/loss`` are plotted against ``stage``, the per-depth series of ``log_run_end`` against
``depth``.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import string
import sys
from pathlib import Path
from urllib.parse import urlparse

from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from lwt.config import Config, flatten, to_dict
from lwt.run.dir import atomic_write_text
from lwt.run.result import RunResult
from lwt.training.axes import attach_clock

WANDB_ID = "wandb_id.txt"
METRICS = "metrics.jsonl"
PROBE_TIMEOUT_S = 5.0
# wandb.init's own limit (W&B's default is 90 s) for servers that accept the connection but do not answer;
# past it, wandb raises and the run falls back to offline. WANDB_INIT_TIMEOUT, if set, wins.
INIT_TIMEOUT_S = 30.0
DEPTH_KEYS = ("test_acc", "val_acc", "train_acc")  # StageRow fields logged as depth/<key>


def wandb_run_id(run_dir: Path) -> str:
    path = run_dir / WANDB_ID
    if path.is_file():
        return path.read_text().strip()
    run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))  # W&B's id style
    atomic_write_text(path, run_id + "\n")
    return run_id


def wandb_unreachable() -> str | None:
    """Why the W&B server cannot be reached, or None. A TCP connect answers in milliseconds where
    ``wandb.init`` would retry for its ``init_timeout`` (90 s by default) before giving up."""
    url = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        return f"cannot connect to {url.hostname}:{port} ({e.strerror or e})"
    return None


def warn(message: str) -> None:
    print(f"lwt: warning: {message}", file=sys.stderr, flush=True)


class MetricsLog(Logger):
    """``run_dir/metrics.jsonl``, lwt's own log: one JSON object per row Lightning logs (``step``: the phase's
    step; the run's axes stamped by lwt/training/axes.py), appended and flushed as it comes. A resumed run
    simply appends to the killed attempt's file; a line a kill tore is skipped by ``read_metrics``."""

    def __init__(self, run_dir: Path):
        super().__init__()
        self.path = Path(run_dir) / METRICS

    name, version = property(lambda self: "lwt"), property(lambda self: "")

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass  # config.yaml holds them

    @rank_zero_only
    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **{k: float(v) if hasattr(v, "item") else v
                                                 for k, v in metrics.items()}}) + "\n")


def read_metrics(run_dir: Path) -> list[dict]:
    """The rows of ``run_dir/metrics.jsonl``, in the order they were logged (attempts of a resumed run too)."""
    rows = []
    for line in (Path(run_dir) / METRICS).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # torn by a kill mid-write: the resumed attempt logs that epoch again
    return rows


class RunWandbLogger(WandbLogger):
    """A WandbLogger that declares lwt's x-axes as soon as its W&B run starts (lazily, as Lightning starts it:
    a logger that never logs starts no run)."""

    def __init__(self, *args, greedy: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self._greedy, self.started = greedy, False  # started: its W&B run began (asking `experiment` starts it)
        self._defined = {"global_step", "depth", *(f"depth/{k}" for k in DEPTH_KEYS),
                         *(("stage", "test/acc", "test/loss") if greedy else ())}  # their x is set below

    def log_metrics(self, metrics, step=None):
        """As Lightning's, with each new metric's x-axis declared first: ``global_step`` (lwt/training/axes.py)."""
        if step is not None:
            for key in metrics.keys() - self._defined:
                self.experiment.define_metric(key, step_metric="global_step")
                self._defined.add(key)
        super().log_metrics(metrics, step)

    @property
    @rank_zero_experiment  # other DDP ranks get Lightning's no-op dummy and never start a W&B run
    def experiment(self):
        run = super().experiment
        if not self.started:
            self.started = True
            run.define_metric("global_step")
            # Exact names, not globs: Lightning declares the glob "*" (x = trainer/global_step), and wandb-core
            # picks among overlapping globs in no fixed order; an exact name always wins over a glob (so every
            # other metric gets its exact x = global_step in log_metrics). step_sync off for stage and depth:
            # wandb would copy the last `stage` into the fine-tuned test row, which has none.
            if self._greedy:  # only greedy stages log `stage`; elsewhere test/acc would have no x value
                run.define_metric("stage")
                for key in ("test/acc", "test/loss"):
                    run.define_metric(key, step_metric="stage", step_sync=False)
            run.define_metric("depth")
            for key in DEPTH_KEYS:
                run.define_metric(f"depth/{key}", step_metric="depth", step_sync=False)
        return run


def log_run_end(loggers: list[Logger], result: RunResult, run_dir: Path, figure=None) -> None:
    """W&B at the end of a run: a row per depth (``depth``, ``depth/test_acc``, ...: with x = depth, greedy and E2E
    runs of a group overlay as accuracy-vs-depth lines in one panel), the ``stages`` table, the image ``figure``
    draws (``figure(result, run_dir)`` -> a PNG path), the summary; then the W&B run is finished.
    (``per_layer`` is logged by training.evaluate.record_per_layer.)"""
    wandb_loggers = [lg for lg in loggers if isinstance(lg, WandbLogger)]
    if not wandb_loggers:
        return
    import wandb

    png = figure(result, run_dir) if figure is not None else None
    saved = result.to_json()
    rows = saved["stages"]
    for logger in wandb_loggers:
        for row in result.stages:
            logger.experiment.log({"depth": row.depth, **{
                f"depth/{k}": getattr(row, k) for k in DEPTH_KEYS if getattr(row, k) is not None}})
        logger.log_table("stages", columns=list(rows[0]), data=[list(r.values()) for r in rows])
        if png is not None:
            logger.experiment.log({"figures/depth_accuracy": wandb.Image(str(png))})
        logger.experiment.summary.update({k: saved[k] for k in (
            "final_test_acc", "selected_depth", "selected_test_acc", "ensemble_test_acc")})
        logger.experiment.finish()


def make_loggers(cfg: Config, run_dir: Path) -> list[Logger]:
    """The run's loggers, every row stamped with the curriculum-wide axes (``axes.clock_of(loggers)``)."""
    from lwt.training.plugins import user_loggers

    own, users = _base_loggers(cfg, run_dir), user_loggers(cfg, run_dir)
    attach_clock(own, users)
    return own + users


def _base_loggers(cfg: Config, run_dir: Path) -> list[Logger]:
    loggers: list[Logger] = [MetricsLog(run_dir)]
    if cfg.logging.wandb == "disabled":
        return loggers

    def wandb_logger(offline: bool) -> WandbLogger:
        # mode given to wandb.init: a failed online init has already fixed wandb's process-wide settings, so
        # the WANDB_MODE Lightning sets for offline loggers would come too late and the fallback would try to log in
        extra = {"mode": "offline"} if offline else {}
        if not offline and "WANDB_INIT_TIMEOUT" not in os.environ:
            import wandb

            extra["settings"] = wandb.Settings(init_timeout=INIT_TIMEOUT_S)
        return RunWandbLogger(
            project=cfg.logging.project, name=f"{cfg.experiment}/{cfg.run_name}", group=cfg.sweep or cfg.experiment,
            job_type=cfg.mode, save_dir=str(run_dir), offline=offline, config=flatten(to_dict(cfg)),
            id=wandb_run_id(run_dir), greedy=cfg.mode == "greedy", **extra,
        )

    if cfg.logging.wandb == "offline":
        return loggers + [wandb_logger(offline=True)]
    problem = wandb_unreachable()
    if problem is None:
        logger = wandb_logger(offline=False)
        try:
            run = logger.experiment  # start the online run now, while falling back is still possible
        except Exception as e:  # wandb raises its own error types (CommError, UsageError: no API key, timeouts)
            problem = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        else:
            if not getattr(run, "offline", False):
                return loggers + [logger]
            warn(f"W&B online mode was asked for, but wandb started the run offline (WANDB_MODE="  # its own choice
                 f"{os.environ.get('WANDB_MODE')!r}); upload later with `wandb sync {run_dir / 'wandb'}/offline-run-*`")
            return loggers + [logger]
    warn(f"W&B online mode is unavailable ({problem}); logging offline to {run_dir / 'wandb'} instead. "
         f"Training continues; upload later with `wandb sync {run_dir / 'wandb'}/offline-run-*`")
    return loggers + [wandb_logger(offline=True)]
