"""Run directories: ``<out_dir>/<experiment>/<run_name>/`` with config.yaml, meta.json, result.json.

``result.json`` is written atomically (temp file + rename) and only when a run completes, so its
presence means "finished".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from lwt.config import Config, save_config
from lwt.errors import LwtError

RESULT = "result.json"


def git_revision() -> str:
    """HEAD of the lwt checkout, with ``-dirty`` when it has uncommitted changes; ``unknown`` outside git."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("-dirty" if dirty else "")


def atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def is_main_process() -> bool:
    """False in the extra processes of a multi-process run (DDP ranks other than 0 launched by Lightning,
    srun tasks): they train but leave the run directory to the main process."""
    ranks = (os.environ.get(k) for k in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"))
    return all(r in (None, "", "0") for r in ranks)


def run_dir_of(cfg: Config) -> Path:
    return Path(cfg.logging.out_dir) / cfg.experiment / cfg.run_name


def prepare_run_dir(cfg: Config, overwrite: bool = False) -> Path:
    """Create the run directory and write config.yaml and meta.json into it, before any training."""
    run_dir = run_dir_of(cfg)
    if (run_dir / RESULT).exists() and not overwrite:
        raise LwtError(f"{run_dir} already holds a finished run ({RESULT}); pass --overwrite to replace it "
                       "or set run_name=... to keep both")
    if (run_dir / "config.yaml").exists() and not overwrite:
        # a killed or failed run: starting afresh over its checkpoints would mix two runs
        raise LwtError(f"{run_dir} holds an unfinished run; continue it with `lwt train --resume {run_dir}`, "
                       "or pass --overwrite to start it over")
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    _check_writable(run_dir)
    save_config(cfg, run_dir / "config.yaml")
    atomic_write_json(run_dir / "meta.json", {"git_revision": git_revision(), "argv": sys.argv})
    return run_dir


def reopen_run_dir(run_dir: Path) -> Path:
    """The run directory of a resumed run, checked writable; meta.json records each resume."""
    _check_writable(run_dir)
    meta_path = run_dir / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        meta = {}  # only informational: a damaged meta.json must not block a resume
    meta.setdefault("resumes", []).append({"git_revision": git_revision(), "argv": sys.argv})
    atomic_write_json(meta_path, meta)
    return run_dir


def _check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise LwtError(f"cannot write the run directory {run_dir}: {e.strerror}; "
                       "set logging.out_dir=... to a writable folder") from None
