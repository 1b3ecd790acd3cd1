"""The loggers every Trainer of a run shares: lwt's metrics.jsonl always, W&B unless disabled (docs/wandb.md).

The W&B run id is kept in ``run_dir/wandb_id.txt``, so a resumed run continues its W&B run; online mode that
cannot reach the server falls back to offline with a warning: training never waits on W&B. Every row carries
the curriculum-wide ``global_step`` and ``global_epoch`` (lwt/training/axes.py), W&B's x-axis; a greedy run's
``test/acc`` and ``test/loss`` are plotted against ``stage``, the per-depth series of ``log_run_end`` against
``depth``.

``identity(cfg, job_type)`` is what every W&B run of lwt is filed under (training, analyses, ``lwt wandb export``):
its name, tags, notes, job type and ``group``, the comparison a dashboard groups by (docs/wandb.md).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import string
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from lightning.pytorch.callbacks import Callback, LearningRateMonitor
from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from lwt.config import Config, flatten, to_dict
from lwt.config.files import read_data
from lwt.run.dir import atomic_write_text
from lwt.run.result import RunResult
from lwt.training.axes import attach_clock
from lwt.training.state import peak_memory_mb, reset_peak_memory

WANDB_ID = "wandb_id.txt"
METRICS = "metrics.jsonl"
PROBE_TIMEOUT_S = 5.0
# wandb.init's own limit (W&B's default is 90 s) for servers that accept the connection but do not answer;
# past it, wandb raises and the run falls back to offline. WANDB_INIT_TIMEOUT, if set, wins.
INIT_TIMEOUT_S = 30.0
DEPTH_KEYS = ("test_acc", "val_acc", "train_acc")  # StageRow fields logged as depth/<key>
DEPTH_SERIES = tuple(f"depth/{k}" for k in (*DEPTH_KEYS, "gap"))  # + depth/gap, analysis.per_layer's
MODES = ("greedy", "e2e", "dgl")
BEST = {"val/acc": "max"}  # metric -> what its summary keeps (W&B keeps the last value of the others)
SUMMARY = ("final_test_acc", "best_val_acc", "selected_depth", "selected_test_acc", "ensemble_test_acc",
           "critical_layer", "train_flops")  # the end-of-run summary (log_run_end, and `lwt wandb export`)


def family(experiment: str) -> str:
    """The experiment's name without its mode: ``s2d_cnn_greedy`` and ``s2d_cnn_e2e`` are both ``s2d_cnn``."""
    return "_".join(t for t in experiment.split("_") if t not in MODES) or experiment


def group_of(cfg: Config) -> str:
    """The comparison a run belongs to: ``[<sweep>/]<dataset>/<family>/seed<seed>``, the config with the mode taken
    out, so the greedy, E2E and DGL runs of one experiment family, dataset and seed (and the analyses of each)
    share it."""
    return "/".join([*([cfg.sweep] if cfg.sweep else []), cfg.data.name, family(cfg.experiment), f"seed{cfg.seed}"])


def purpose(cfg: Config) -> str | None:
    """``logging.notes``, else the first comment line of the experiment file the run came from (found by its
    name among lwt's experiments, the one whose data and model the run has), else None."""
    if cfg.logging.notes:
        return cfg.logging.notes
    from lwt.config.files import experiments_dir

    for path in sorted(experiments_dir().rglob(f"{cfg.experiment}.yaml")):
        try:
            text = path.read_text()
            raw = read_data(path, "yaml", empty_ok=True) or {}
            data, model = raw.get("data") or {}, raw.get("model") or {}
            same = data.get("name", "cifar10") == cfg.data.name and model.get("name") == cfg.model.name
        except Exception:  # not an experiment (a sweep file of the same name, unreadable YAML): not the run's
            continue
        if same:
            first = next((ln.lstrip("#").strip() for ln in text.splitlines() if ln.startswith("#")), "")
            return first or None
    return None


def claims_of(sweep: str | None) -> list[str]:
    """The claims (experiments/claims.yaml) whose table is the sweep's own, e.g. C1 for sweep gap_cpu."""
    if not sweep:
        return []
    from lwt.config.files import experiments_dir

    try:
        claims = (read_data(experiments_dir() / "claims.yaml", "yaml") or {}).get("claims") or {}
        return [name for name, claim in claims.items() if isinstance(claim, dict) and claim.get("table") == sweep]
    except Exception:  # no claims file (a trimmed install), or one lwt claims would refuse: no claim tags
        return []


def identity(cfg: Config, job_type: str = "train") -> dict:
    """The W&B run's name, group, job type (train, analysis, tune), tags and notes: the same for live logging,
    analyses and `lwt wandb export`. A run of a sweep named ``tune_*`` (``lwt tune``) has job type tune."""
    if job_type == "train" and (cfg.sweep or "").startswith("tune_"):
        job_type = "tune"
    tags = [f"mode:{cfg.mode}", f"model:{cfg.model.name}", f"dataset:{cfg.data.name}",
            *([f"sweep:{cfg.sweep}"] if cfg.sweep else []), *(f"claim:{c}" for c in claims_of(cfg.sweep))]
    return dict(name=f"{cfg.experiment}/{cfg.run_name}", group=group_of(cfg), job_type=job_type,
                tags=[t[:64] for t in tags], notes=purpose(cfg))  # W&B refuses tags over 64 characters


def define_axes(run, greedy: bool) -> None:
    """lwt's x-axes on a W&B run, declared before its first row: ``global_step`` for every metric, ``stage`` for a
    greedy run's test/acc and test/loss, ``depth`` for the end-of-run depth series (the rest: define_step_metric)."""
    run.define_metric("global_step")
    # Exact names, not globs: Lightning declares the glob "*" (x = trainer/global_step), and wandb-core
    # picks among overlapping globs in no fixed order; an exact name always wins over a glob (so every
    # other metric gets its exact x = global_step in log_metrics). step_sync off for stage and depth:
    # wandb would copy the last `stage` into the fine-tuned test row, which has none.
    if greedy:  # only greedy stages log `stage`; elsewhere test/acc would have no x value
        run.define_metric("stage")
        for key in ("test/acc", "test/loss"):
            run.define_metric(key, step_metric="stage", step_sync=False)
    run.define_metric("depth")
    for key in DEPTH_SERIES:
        run.define_metric(key, step_metric="depth", step_sync=False)


def define_step_metric(run, key: str) -> None:
    """``key`` plotted against ``global_step``; a key of BEST keeps its best value in the summary."""
    run.define_metric(key, step_metric="global_step", **({"summary": BEST[key]} if key in BEST else {}))


def end_summary(result: RunResult) -> dict:
    """The summary a finished run ends with (SUMMARY): its result's metrics, the best val accuracy over the
    depths, the critical layer (None when the criterion did not fire) and the training FLOPs."""
    saved = result.to_json()
    vals = [r.val_acc for r in result.stages if r.val_acc is not None]
    extra = {"best_val_acc": max(vals) if vals else None,
             "critical_layer": (result.critical or {}).get("critical_layer")}
    return {k: extra[k] if k in extra else saved.get(k) for k in SUMMARY}


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
    a logger that never logs starts no run). ``log_model`` is lwt's ``logging.log_model``, not Lightning's: a run has
    one Trainer per phase, so Lightning's own (a checkpoint at every Trainer's end, or every save) would log each
    phase's per-epoch ``last.ckpt``; lwt logs the final model (``log_run_end``) and, with ``all``, each phase's
    final checkpoint (``log_checkpoint``)."""

    def __init__(self, *args, greedy: bool, log_model: bool | str = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._greedy, self.started = greedy, False  # started: its W&B run began (asking `experiment` starts it)
        self.lwt_log_model = log_model
        self._defined = {"global_step", "depth", *DEPTH_SERIES,
                         *(("stage", "test/acc", "test/loss") if greedy else ())}  # their x is set below

    def log_metrics(self, metrics, step=None):
        """As Lightning's, with each new metric's x-axis declared first: ``global_step`` (lwt/training/axes.py)."""
        if step is not None:
            for key in metrics.keys() - self._defined:
                define_step_metric(self.experiment, key)
                self._defined.add(key)
        super().log_metrics(metrics, step)

    @property
    @rank_zero_experiment  # other DDP ranks get Lightning's no-op dummy and never start a W&B run
    def experiment(self):
        run = super().experiment
        if not self.started:
            self.started = True
            define_axes(run, self._greedy)
        return run


class PhaseLrMonitor(LearningRateMonitor):
    """Lightning's LearningRateMonitor (every ``log_every_n_steps`` steps), which also logs at a phase's first and
    last optimizer step: a greedy stage shorter than ``log_every_n_steps`` steps would otherwise log no lr at all.
    Beside Lightning's ``lr-<Optimizer>`` keys it logs ``lr``, the first optimizer's first group's rate, so one
    dashboard panel reads SGD and AdamW runs alike."""

    def _extract_stats(self, trainer, interval: str) -> dict[str, float]:
        stats = super()._extract_stats(trainer, interval)
        first = next((key for key in stats if key.startswith("lr-")), None)
        return {**stats, "lr": stats[first]} if first else stats

    def on_train_batch_start(self, trainer, *args, **kwargs) -> None:
        step = trainer.fit_loop.epoch_loop._batches_that_stepped  # Lightning's step of the row logged now
        if (step == 0 or step + 1 >= trainer.estimated_stepping_batches) and \
                not trainer._logger_connector.should_update_logs:
            stats = self._extract_stats(trainer, "step")
            for logger in trainer.loggers if stats else ():
                logger.log_metrics(stats, step=step)
            return
        super().on_train_batch_start(trainer, *args, **kwargs)


def model_artifact_name(run_id: str) -> str:
    """The W&B model artifact of the run with this id (its final model), as analyses name their input."""
    return f"model-{run_id}"


def log_checkpoint(loggers: list[Logger], path: Path, phase: str) -> None:
    """``logging.log_model=all``: the phase's final checkpoint as a version of the artifact ``checkpoint-<id>``
    (type model), aliased with the phase (``stage2``, ``e2e``, ...)."""
    for logger in loggers:
        if isinstance(logger, RunWandbLogger) and logger.lwt_log_model == "all":
            import wandb

            run = logger.experiment
            artifact = wandb.Artifact(f"checkpoint-{run.id}", type="model", metadata={"phase": phase})
            artifact.add_file(str(path), name=f"{phase}.ckpt")
            run.log_artifact(artifact, aliases=["latest", phase])


def log_model_artifact(run, run_dir: Path, result: RunResult) -> None:
    """The final model as the artifact ``model-<id>`` (type model): ``model.pt``, ``config.yaml`` and
    ``result.json``, the files ``lwt.load_run`` reads, so the artifact's folder loads as a run (docs/wandb.md)."""
    import wandb

    artifact = wandb.Artifact(model_artifact_name(run.id), type="model", metadata={
        k: v for k, v in end_summary(result).items() if v is not None})
    for name in ("model.pt", "config.yaml"):
        artifact.add_file(str(Path(run_dir) / name), name=name)
    with artifact.new_file("result.json") as f:  # result.json is written after W&B is done with the run
        json.dump(result.to_json(), f, indent=1)
    run.log_artifact(artifact, aliases=["latest", "final"])


def log_run_end(loggers: list[Logger], result: RunResult, run_dir: Path, figure=None) -> None:
    """W&B at the end of a run (``log_end``), then the W&B run is finished. ``figure(result, run_dir)`` draws the
    run's accuracy-vs-depth figure (a PNG path). (``per_layer`` is logged by training.evaluate.record_per_layer.)"""
    wandb_loggers = [lg for lg in loggers if isinstance(lg, WandbLogger)]
    if not wandb_loggers:
        return
    png = figure(result, run_dir) if figure is not None else None
    for logger in wandb_loggers:
        log_end(logger.experiment, result, run_dir, png, getattr(logger, "lwt_log_model", False))
        logger.experiment.finish()


def log_end(run, result: RunResult, run_dir: Path, png: Path | None = None, log_model: bool | str = False) -> None:
    """A row per depth (``depth``, ``depth/test_acc``, ..., ``depth/gap``: with x = depth, greedy and E2E runs of a
    group overlay as accuracy-vs-depth lines in one panel), the ``stages`` table, the image ``png``, the summary
    (SUMMARY) and, with ``log_model``, the model artifact: what live logging and `lwt wandb export` both end with."""
    import wandb

    gaps = {r.depth: r.gap for r in result.per_layer or ()}  # un-augmented train - test (analysis.per_layer)
    for row in result.stages:
        values = {f"depth/{k}": getattr(row, k) for k in DEPTH_KEYS if getattr(row, k) is not None}
        run.log({"depth": row.depth, **values, **({"depth/gap": gaps[row.depth]} if row.depth in gaps else {})})
    rows = result.to_json()["stages"]
    run.log({"stages": wandb.Table(columns=list(rows[0]), data=[list(r.values()) for r in rows])})
    if png is not None:
        run.log({"figures/depth_accuracy": wandb.Image(str(png))})
    run.summary.update(end_summary(result))
    if log_model:
        log_model_artifact(run, run_dir, result)


class PhaseCost(Callback):
    """At the end of each phase's fit (a greedy stage, e2e, ...), its cost on the run's axes: ``cost/seconds`` (the
    fit's wall time) and ``cost/peak_memory_mb`` (``lwt.training.state.peak_memory_mb``, as result.json records it)."""

    def on_fit_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()
        reset_peak_memory()

    def on_fit_end(self, trainer, pl_module) -> None:
        row = {"cost/seconds": round(time.perf_counter() - self._t0, 3),
               "cost/peak_memory_mb": peak_memory_mb(pl_module.device)}
        for logger in trainer.loggers:
            logger.log_metrics(row, step=trainer.fit_loop.epoch_loop._batches_that_stepped)


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
            project=cfg.logging.project, entity=cfg.logging.entity, **identity(cfg), save_dir=str(run_dir),
            offline=offline, config=flatten(to_dict(cfg)), id=wandb_run_id(run_dir), greedy=cfg.mode == "greedy",
            log_model=cfg.logging.log_model, **extra,
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
