"""``lwt gap | probe | cka | critical`` put their tables and figures on the W&B run of the training run they
analyse, resumed by the id training kept in ``run_dir/wandb_id.txt`` (lwt/training/loggers.py): offline, one more
``offline-run-*-<id>`` folder in the run folder; online, the run on the server. docs/wandb.md says the rest.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lwt.training.loggers import WANDB_ID, wandb_unreachable, warn

MODES = ("run", "offline", "online", "disabled")


def add_wandb_flag(parser) -> None:
    parser.add_argument("--wandb", choices=MODES, default="run",
                        help="attach the tables and figures to the training run's W&B run: 'run' (default) as "
                             "the run was logged (logging.wandb; nothing if it was disabled), or offline, "
                             "online, disabled")


def resolve_mode(run_dir: Path, cfg, asked: str = "run") -> str | None:
    """``offline``/``online`` to attach to the run's W&B run, or None: disabled, or the run has none."""
    mode = cfg.logging.wandb if asked == "run" else asked
    if mode == "disabled":
        return None
    if not (run_dir / WANDB_ID).is_file():
        if asked != "run" or cfg.logging.wandb != "disabled":
            print(f"[lwt] W&B: {run_dir} has no {WANDB_ID} (trained with logging.wandb=disabled?), so there is "
                  "no W&B run to attach the results to; nothing logged", file=sys.stderr, flush=True)
        return None
    return mode


def attach(run_dir: Path, cfg, asked: str, kind: str, tables: dict[str, list[dict]],
           images: dict[str, Path], caption: str | None = None) -> Path | None:
    """Log ``tables`` (name -> rows of equal keys) as ``analysis/<name>`` tables and ``images`` (name -> PNG) as
    ``figures/<name>`` to the W&B run of ``run_dir``, in one history row; returns the W&B run's folder, or None
    when nothing was logged. ``kind`` (gap, probe, ...) only names what is logged, in the message."""
    mode = resolve_mode(run_dir, cfg, asked)
    if mode is None:
        return None
    import wandb

    if mode == "online":
        problem = wandb_unreachable()
        if problem:
            warn(f"W&B online mode is unavailable ({problem}); attaching the {kind} results offline to "
                 f"{run_dir / 'wandb'} instead")
            mode = "offline"
    run_id = (run_dir / WANDB_ID).read_text().strip()
    # name, group and job type as training set them, so the resumed segment agrees with the run it extends;
    # no config: the run has it, and analysis.* overrides would overwrite it with this command's settings
    kwargs = dict(project=cfg.logging.project, id=run_id, resume="allow", mode=mode, dir=str(run_dir),
                  name=f"{cfg.experiment}/{cfg.run_name}", group=cfg.sweep or cfg.experiment, job_type=cfg.mode,
                  settings=wandb.Settings(console="off", silent=True))
    try:
        run = wandb.init(**kwargs)
    except Exception as e:  # wandb's own errors (CommError, UsageError: no API key, timeouts)
        if mode == "offline":
            raise
        warn(f"W&B online mode failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
             f"attaching the {kind} results offline to {run_dir / 'wandb'} instead")
        run = wandb.init(**{**kwargs, "mode": "offline"})
    row = {f"analysis/{name}": wandb.Table(columns=list(rows[0]), data=[[r.get(c) for c in rows[0]] for r in rows])
           for name, rows in tables.items() if rows}
    row.update({f"figures/{name}": wandb.Image(str(path), caption=caption) for name, path in images.items()})
    run.log(row)
    where = Path(run.dir).parent  # .../wandb/offline-run-<time>-<id>[-n]/files -> the run's folder
    run.finish()
    print(f"W&B: {', '.join(row)} attached to run {run_id} ({mode}: {where})")
    return where
