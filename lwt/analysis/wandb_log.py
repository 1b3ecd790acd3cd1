"""``lwt gap | probe | cka | critical`` log their tables and figures as W&B runs of their own (job type
``analysis``), in the training run's group (lwt.training.loggers.identity), written into the run folder it analyses
(offline: ``<run_dir>/wandb/offline-run-*-<its own id>``). The training run itself is never resumed: its id and
folder are in the analysis run's config (``train_run_id``, ``train_run_dir``), and online its final model artifact
(``logging.log_model``) is the analysis run's input. docs/wandb.md says the rest.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lwt.training.loggers import WANDB_ID, wandb_unreachable, warn

MODES = ("run", "offline", "online", "disabled")


def add_wandb_flag(parser) -> None:
    parser.add_argument("--wandb", choices=MODES, default="run",
                        help="log the tables and figures as a W&B analysis run beside the training run's: "
                             "'run' (default) as the run was logged (logging.wandb; nothing if it was disabled), "
                             "or offline, online, disabled")


def resolve_mode(run_dir: Path, cfg, asked: str = "run") -> str | None:
    """``offline``/``online`` for the analysis run, or None: disabled, or the training run has no W&B run."""
    mode = cfg.logging.wandb if asked == "run" else asked
    if mode == "disabled":
        return None
    if not (run_dir / WANDB_ID).is_file():
        if asked != "run" or cfg.logging.wandb != "disabled":
            print(f"[lwt] W&B: {run_dir} has no {WANDB_ID} (trained with logging.wandb=disabled?), so there is "
                  "no W&B run to file the analysis under; nothing logged", file=sys.stderr, flush=True)
        return None
    return mode


def attach(run_dir: Path, cfg, asked: str, kind: str, tables: dict[str, list[dict]],
           images: dict[str, Path], caption: str | None = None) -> Path | None:
    """Log ``tables`` (name -> rows of equal keys) as ``analysis/<name>`` tables and ``images`` (name -> PNG) as
    ``figures/<name>`` in one history row of a new W&B run (job type analysis) for the training run of ``run_dir``;
    returns that run's folder, or None when nothing was logged. ``kind`` (gap, probe, ...) names the run."""
    mode = resolve_mode(run_dir, cfg, asked)
    if mode is None:
        return None
    import wandb

    from lwt.config import flatten, to_dict
    from lwt.training.loggers import identity, model_artifact_name

    if mode == "online":
        problem = wandb_unreachable()
        if problem:
            warn(f"W&B online mode is unavailable ({problem}); logging the {kind} results offline to "
                 f"{run_dir / 'wandb'} instead")
            mode = "offline"
    train_id = (run_dir / WANDB_ID).read_text().strip()
    ident = identity(cfg, job_type="analysis")
    model = model_artifact_name(train_id) if cfg.logging.log_model else None
    config = {**flatten(to_dict(cfg)), "analysis.kind": kind, "train_run_id": train_id,
              "train_run_dir": str(run_dir.resolve()), "model_artifact": model}
    kwargs = dict(project=cfg.logging.project, entity=cfg.logging.entity, mode=mode, dir=str(run_dir),
                  **{**ident, "name": f"{ident['name']}/{kind}", "tags": [*ident["tags"], f"analysis:{kind}"]},
                  config=config, settings=wandb.Settings(console="off", silent=True))
    try:
        run = wandb.init(**kwargs)
    except Exception as e:  # wandb's own errors (CommError, UsageError: no API key, timeouts)
        if mode == "offline":
            raise
        warn(f"W&B online mode failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
             f"logging the {kind} results offline to {run_dir / 'wandb'} instead")
        run = wandb.init(**{**kwargs, "mode": "offline"})
    if model and not getattr(run, "offline", True):  # W&B records an input only online; offline the config names it
        try:
            run.use_artifact(f"{run.entity}/{run.project}/{model}:latest", type="model")
        except Exception as e:  # not uploaded yet (an offline training run not synced), or another project
            warn(f"the training run's model artifact {model} is not on the server ({type(e).__name__}); "
                 "the analysis run names it in its config only")
    row = {f"analysis/{name}": wandb.Table(columns=list(rows[0]), data=[[r.get(c) for c in rows[0]] for r in rows])
           for name, rows in tables.items() if rows}
    row.update({f"figures/{name}": wandb.Image(str(path), caption=caption) for name, path in images.items()})
    run.log(row)
    where, run_id = Path(run.dir).parent, run.id  # .../wandb/offline-run-<time>-<id>/files -> the run's folder
    run.finish()
    print(f"W&B: {', '.join(row)} logged to analysis run {run_id} of training run {train_id} ({mode}: {where})")
    return where
