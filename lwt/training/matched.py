"""The compute-matched arm of docs/protocol.md: an E2E (or DGL) run whose epoch budget is set by another finished
run's training FLOPs (``trainer.match_flops_of``, e.g. the greedy run of the same seed), beside the epoch-matched
arm whose budget is the greedy curriculum's epochs.

The budget is the largest whole number of epochs (at least 1) whose training FLOPs, counted as
lwt/training/flops.py counts every phase, do not exceed the source run's ``RunResult.train_flops``. It is
resolved before the run folder is made (a missing or unsuitable source leaves nothing behind), from the source's
result.json alone (read, never a network built from it), and saved in the run folder (``flops_match.json``): a
resume continues with that budget, whatever has become of the source run since.
"""

from __future__ import annotations

from pathlib import Path

from lwt.config import Config
from lwt.config.files import read_data
from lwt.errors import LwtError
from lwt.run.dir import RESULT, RunDir, atomic_write_json
from lwt.run.result import RunResult
from lwt.training.base import BaseModule
from lwt.training.flops import batch_flops, train_flops
from lwt.training.intervention import seeded_path

MATCH = "flops_match.json"  # in the run folder: the resolved budget, what a resume reads


def resolve(cfg: Config, module: BaseModule, dm, resume: Path | str | None = None) -> dict | None:
    """``{"run": source folder, "train_flops": its training FLOPs, "epochs": this run's budget, "flops": that
    budget's training FLOPs}``, or None when trainer.match_flops_of is not set. ``module``: this run's phase module
    (any budget: it is only counted, on the meta device), ``dm``: its DataModule, set up; ``resume``: a resumed
    run's folder, whose saved budget is kept."""
    if cfg.trainer.match_flops_of is None:
        return None
    if resume is not None:
        saved = _saved(RunDir(resume) / MATCH)
        if saved is not None:
            return saved
    path = seeded_path(cfg.trainer.match_flops_of, cfg)
    if not (path / RESULT).is_file():
        raise LwtError(f"trainer.match_flops_of={path}: no finished run there (it holds no {RESULT}); train that "
                       "run first, or give its folder, <logging.out_dir>/<experiment>/<run_name>")
    budget = RunResult.read(path / RESULT).train_flops
    if budget is None:
        raise LwtError(f"trainer.match_flops_of={path}: its {RESULT} has no train_flops: trained before lwt "
                       "counted FLOPs; retrain it")
    per_batch, batch, images = batch_flops(module, dm)
    # the largest e with train_flops(e) = floor(per_batch * images * e / batch) <= budget, i.e. with
    # per_batch * images * e < (budget + 1) * batch
    epochs = max(1, ((budget + 1) * batch - 1) // max(1, per_batch * images))
    return {"run": str(path), "train_flops": budget, "epochs": epochs,
            "flops": train_flops(per_batch, batch, images, epochs)}


def _saved(path: Path) -> dict | None:
    """The budget a run folder recorded, or None when it holds none (a kill before it was written) or a damaged
    one: the budget is then resolved again, the same way."""
    try:
        saved = read_data(path, "json", follow=False)
    except LwtError:
        return None
    ok = isinstance(saved, dict) and all(isinstance(saved.get(k), int) for k in ("epochs", "flops", "train_flops"))
    ok = ok and saved["epochs"] >= 1
    return saved if ok else None


def save(run_dir: RunDir, match: dict | None) -> None:
    if match is not None:
        atomic_write_json(run_dir / MATCH, match)


def describe(match: dict) -> str:
    """The one line a run prints: its budget, that budget's training FLOPs and the source's."""
    return (f"[lwt] trainer.match_flops_of={match['run']}: {match['epochs']} epochs, {match['flops']:.4g} "
            f"training FLOPs (that run: {match['train_flops']:.4g})")
