"""Continuing a killed run: which config it runs under, what it has finished, and which checkpoints fit.

What a resume reads (``config.yaml``, ``progress.json``, ``checkpoints/<phase>/last.ckpt``) is listed by
lwt.run.dir.RunDir and, with when each is written, in docs/reliability.md.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from pydantic import BaseModel

from lwt.config import Config, ModelConfig, flatten, identity_differences, is_identity, load_config, with_overrides
from lwt.config.files import file_problem, read_model
from lwt.errors import LwtError
from lwt.run.dir import RESULT, Phase, RunDir, atomic_write_json
from lwt.run.result import StageRow
from lwt.training.predictions import forget_rows


def resume_config(run_dir: Path | str, experiment: str | None = None, overrides: list[str] = ()) -> Config:
    """The config of the run in ``run_dir``; the command's experiment file and overrides, if given, must
    agree with it on every identity key (lwt.config.is_identity); the others the command then sets."""
    rd = RunDir(run_dir)
    rd.check_files()  # before any of them is opened: no link, no folder where a file belongs
    if rd.status() == "new":
        raise LwtError(f"--resume {run_dir}: not a run directory (it has no config.yaml); pass the folder that "
                       "`lwt train` printed, <logging.out_dir>/<experiment>/<run_name>")
    if rd.status() == "finished":
        raise LwtError(f"--resume {run_dir}: this run already finished ({RESULT} exists); nothing to resume. "
                       "To train it again, drop --resume and pass --overwrite")
    saved = rd.saved_config()  # exactly as written: never completed from today's defaults
    if experiment is None and not overrides:
        return saved
    if experiment is not None:
        given = load_config(experiment, overrides)
    else:  # overrides alone apply on top of the saved run
        given = with_overrides(saved, overrides)
    old, new = flatten(saved.model_dump()), flatten(given.model_dump())
    clashes = identity_differences(old, new)
    if clashes:
        shown = "; ".join(f"{k}={new.get(k)!r} here but {old[k]!r} in the run" for k in clashes[:4])
        more = f" (and {len(clashes) - 4} more)" if len(clashes) > 4 else ""
        raise LwtError(f"--resume {run_dir}: the command contradicts the run's config.yaml, which a resume "
                       f"keeps: {shown}{more}. Resume with `lwt train --resume {run_dir}` alone, or start a new "
                       "run without --resume")
    for key in new:  # the run stays where it is: its directory and name come from --resume
        if not is_identity(key) and key not in ("run_name", "logging.out_dir"):
            *sections, name = key.split(".")
            node = saved
            for section in sections:
                node = getattr(node, section)
            setattr(node, name, new[key])
    return saved


class Progress(BaseModel):
    """progress.json: the finished greedy stages' rows, the curriculum state after the last and after each."""

    stages: list[dict]
    curriculum: dict | None = None
    finished: bool
    history: list[dict] = []


def read_progress(run_dir: Path) -> dict:
    """``{"stages": [StageRow, ...], "curriculum": state or None, "finished": bool, "history": [...]}``; empty for
    a fresh run. A file of the wrong shape is one LwtError naming it (read without following a link)."""
    path = RunDir(run_dir).progress
    if not path.exists() and not path.is_symlink():
        return {"stages": [], "curriculum": None, "finished": False}
    fix = ("it is rewritten atomically after each stage, so it was edited or damaged outside lwt. Delete the run "
           "directory's progress.json and checkpoints/ to retrain from scratch")
    try:
        progress = read_model(path, Progress, what="lwt's record of finished stages").model_dump()
        for row in progress["stages"]:
            StageRow.check(row)
        progress["stages"] = [StageRow.from_json(row) for row in progress["stages"]]
    except (ValueError, TypeError) as e:
        raise LwtError(f"{path} is corrupt ({e}); {fix}") from None
    except LwtError as e:
        raise LwtError(f"{e}; {fix}") from None
    return progress


def write_progress(run_dir: Path, rows: list[StageRow], curriculum: dict, finished: bool,
                   history: list[dict] | None = None) -> None:
    """``history``: the curriculum state after each finished stage, so ``forget_stages`` can go back to any."""
    atomic_write_json(RunDir(run_dir).progress, {"stages": [r.to_json() for r in rows], "curriculum": curriculum,
                                                 "finished": finished, "history": history or []})


def forget_stages(run_dir: Path, stage: int) -> None:
    """Forget greedy stages ``stage``, ``stage``+1, ... of an unfinished run (rows, curriculum state and
    checkpoints, fine-tuning's included), so that a resume retrains them from stage ``stage``-1's checkpoint:
    the way out when a finished stage's checkpoint is damaged (progress.json still lists the stage)."""
    run_dir = Path(run_dir)
    progress = read_progress(run_dir)
    rows, history = progress["stages"], progress.get("history") or []
    if not 1 <= stage <= len(rows):
        raise LwtError(f"--redo-stage {stage}: {run_dir} has finished greedy stages "
                       f"{'1-' + str(len(rows)) if rows else '(none yet)'}; give one of them")
    if stage > 1 and len(history) < stage - 1:
        raise LwtError(f"--redo-stage {stage}: progress.json of {run_dir} was written before lwt kept the curriculum "
                       "state of every stage; only --redo-stage 1 (retrain all stages) is possible")
    for folder in (run_dir / "checkpoints").glob("*"):
        phase = Phase.parse(folder.name)
        if phase is not None and (phase.kind == "finetune" or (phase.kind == "stage" and phase.stage >= stage)):
            shutil.rmtree(folder)
    forget_rows(RunDir(run_dir), stage)  # their per-image rows, the ensemble's and fine-tuning's
    write_progress(run_dir, rows[:stage - 1], history[stage - 2] if stage > 1 else None, False, history[:stage - 1])


def _describe(model: dict, keys) -> str:
    return ", ".join(f"{k}={model.get(k)!r}" for k in keys)


def load_checkpoint(path: Path, net: torch.nn.Module, model: ModelConfig, phase: Phase, finished: bool = False) -> dict:
    """Read ``path`` and check that it was written for this network and phase; LwtError naming both if not.

    Returns the checkpoint; its ``state_dict`` keys are the module's (``net.`` + the StagedNet's keys).
    """
    if why := file_problem(path):  # torch.load would follow a link out of the run folder
        raise LwtError(f"checkpoint {path} {why}; lwt reads a run's checkpoints only as plain files, never through a "
                       f"link: delete it to redo {phase} from its start, or put the run's own checkpoint back")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        weights = ckpt["state_dict"]
    except Exception as e:  # torch raises many types for damaged zip archives and pickles
        reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        if finished:  # progress.json lists the stage: deleting the file alone would not retrain it
            run_dir = Path(path).parents[2]
            raise LwtError(f"checkpoint {path} of finished {phase} is corrupt, truncated or missing "
                           f"({reason}); retrain from that stage with `lwt train --resume {run_dir} --redo-stage "
                           f"{phase.stage}` (earlier stages are kept)") from None
        raise LwtError(f"checkpoint {path} is corrupt or truncated ({reason}); delete it to redo "
                       f"{phase} from its start (earlier stages are kept), then resume again") from None
    expected = {f"net.{k}": v.shape for k, v in net.state_dict().items()}
    found = {k: v.shape for k, v in weights.items() if k.startswith("net.")}
    meta = ckpt.get("lwt", {})
    mine = model.model_dump()
    written = meta.get("model")
    if written is not None and written != mine:
        keys = ["name"] + [k for k in mine if k != "name" and written.get(k) != mine[k]]
        raise LwtError(f"checkpoint {path} holds a different network: it was written by a model with "
                       f"{_describe(written, keys)}, but this run's config.yaml says {_describe(mine, keys)}. "
                       "Put this run's own checkpoint back, or start a new run")
    if found != expected:
        key = (sorted(set(found) ^ set(expected)) or [k for k in expected if found[k] != expected[k]])[0]

        def shape(d):
            return tuple(d[key]) if key in d else "missing"

        raise LwtError(f"checkpoint {path} does not fit this run's network (model.name={model.name!r}): {key} is "
                       f"{shape(found)} in the checkpoint but {shape(expected)} in the model. Put this run's own "
                       "checkpoint back, or start a new run")
    if meta.get("phase", phase.name) != phase.name:
        raise LwtError(f"checkpoint {path} was written by {Phase.parse(meta['phase']) or meta['phase']}, not {phase}; "
                       "it was moved or copied from elsewhere. Delete it to redo this phase from its start")
    return ckpt


def restore_net(path: Path, net: torch.nn.Module, model: ModelConfig, phase: Phase) -> None:
    """Load every block's weights (frozen ones included) from a finished phase's checkpoint into ``net``."""
    weights = load_checkpoint(path, net, model, phase, finished=True)["state_dict"]
    net.load_state_dict({k[len("net."):]: v for k, v in weights.items() if k.startswith("net.")})
