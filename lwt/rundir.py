"""Run directories: ``<out_dir>/<experiment>/<run_name>/`` with config.yaml, meta.json, result.json.

``result.json`` is written atomically (temp file + rename) and only when a run completes, so its
presence means "finished". The folder always lies inside ``logging.out_dir`` (names are checked by
lwt.config.check_name; symbolic links that lead out are refused here), ``.lwt-run`` marks it as lwt's
(``--overwrite`` empties only such folders) and ``.lwt.lock`` is flock'ed while a process writes it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from lwt.config import Config, save_config
from lwt.errors import LwtError, RunLocked

RESULT = "result.json"
MARKER = ".lwt-run"  # written first into every run folder lwt makes
LOCK = ".lwt.lock"
# what a run folder may hold before its run starts: a sweep worker's log, the lock, the writability probe
BEFORE_START = {LOCK, "train.log", ".write-test"}
# a full disk, a quota, permissions, a read-only or failing file system: the user's to fix, then resume
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG, errno.EIO}
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: os.umask can only be read by setting it, which is not thread-safe later


def git_revision() -> str:
    """HEAD of the lwt checkout, with ``-dirty`` when it has uncommitted changes; ``unknown`` outside git."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             check=True).stdout.strip()
        # --no-optional-locks: read-only; plain `git status` refreshes the checkout's index under index.lock,
        # which a killed run (a test's SIGKILL, a preempted job) would leave behind
        dirty = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("-dirty" if dirty else "")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """``path`` holds either its old content or ``data``, never a part: temp file beside it, fsync, rename,
    fsync of the folder. Mode as ``open`` would give (0666 minus the umask), not mkstemp's 0600. An OSError
    names ``path``, not the temp file."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def incomplete(result) -> str | None:
    """Why a parsed result.json is not a complete lwt run, or None."""
    if not isinstance(result, dict):
        return f"it holds a {type(result).__name__}, not an lwt result"
    stages = result.get("stages")
    if not isinstance(stages, list) or not stages:
        return "it has no stages"
    if not all(isinstance(s, dict) and isinstance(s.get("test_acc"), (int, float)) for s in stages):
        return "a stage has no test accuracy"
    return None


def read_result(path: Path) -> dict:
    """A complete run's result.json, or one LwtError saying what is wrong with it."""
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise LwtError(f"{path} cannot be read as JSON ({e}); it is not a finished lwt run's result") from None
    problem = incomplete(result)
    if problem:
        raise LwtError(f"{path} is not a complete lwt run's result: {problem}")
    return result


def is_main_process() -> bool:
    """False in the extra processes of a multi-process run (DDP ranks other than 0 launched by Lightning,
    srun tasks): they train but leave the run directory to the main process."""
    ranks = (os.environ.get(k) for k in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"))
    return all(r in (None, "", "0") for r in ranks)


def run_dir_of(cfg: Config) -> Path:
    """``<out_dir>/<experiment>/<run_name>``; LwtError if it resolves outside out_dir (a symbolic link)."""
    out = Path(cfg.logging.out_dir)
    run_dir = out / cfg.experiment / cfg.run_name
    real_out, real = out.resolve(), run_dir.resolve()
    if real.parent.parent != real_out:
        raise LwtError(f"the run directory {run_dir} leads to {real}, outside logging.out_dir={out} (a symbolic "
                       "link); lwt writes runs only inside logging.out_dir: remove the link or pick another name")
    return run_dir


def is_lwt_run(run_dir: Path) -> bool:
    """A folder lwt made for a run: its marker, or (runs from before the marker) config.yaml + meta.json."""
    run_dir = Path(run_dir)
    if run_dir.is_symlink() or not run_dir.is_dir():
        return False
    return (run_dir / MARKER).is_file() or ((run_dir / "config.yaml").is_file() and (run_dir / "meta.json").is_file())


def _clear(run_dir: Path) -> None:
    """Empty an lwt run folder, keeping the lock this process holds in it (links are removed, not followed)."""
    for entry in run_dir.iterdir():
        if entry.name == LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def refuse_foreign(run_dir: Path) -> set[str]:
    """The names in ``run_dir`` beyond what a folder holds before its run starts; LwtError unless lwt made it
    (called before the lock too, so that not even the lock file is put into someone else's folder)."""
    found = {e.name for e in run_dir.iterdir()} - BEFORE_START if run_dir.is_dir() else set()
    if found and not is_lwt_run(run_dir):
        raise LwtError(f"{run_dir} holds files lwt did not write ({', '.join(sorted(found)[:3])}"
                       f"{', ...' if len(found) > 3 else ''}); lwt writes a run only into a new folder or its own "
                       "run folder, and --overwrite deletes only those. Set run_name=... or logging.out_dir=...")
    return found


def prepare_run_dir(cfg: Config, overwrite: bool = False) -> Path:
    """Check the run directory (made and locked by ``RunLock``), write the marker, config.yaml and meta.json.

    ``overwrite`` empties it first, but only if it is an lwt run folder; a folder holding anything else is
    never written into."""
    run_dir = run_dir_of(cfg)
    foreign = refuse_foreign(run_dir)
    if (run_dir / RESULT).exists() and not overwrite:
        raise LwtError(f"{run_dir} already holds a finished run ({RESULT}); pass --overwrite to replace it "
                       "or set run_name=... to keep both")
    if (run_dir / "config.yaml").exists() and not overwrite:
        # a killed or failed run: starting afresh over its checkpoints would mix two runs
        raise LwtError(f"{run_dir} holds an unfinished run; continue it with `lwt train --resume {run_dir}`, "
                       "or pass --overwrite to start it over")
    if overwrite and foreign:
        _clear(run_dir)
    _check_writable(run_dir)
    atomic_write_text(run_dir / MARKER, "a run folder written by lwt; `lwt train --overwrite` may delete it\n")
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


def _check_writable(run_dir: Path, probe: bool = True) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if probe:
            (run_dir / ".write-test").write_text("")
            (run_dir / ".write-test").unlink()
    except OSError as e:
        raise LwtError(f"cannot write the run directory {run_dir}: {e.strerror}; "
                       "set logging.out_dir=... to a writable folder") from None


class RunLock:
    """An exclusive ``flock`` on ``run_dir/.lwt.lock`` while this process writes the run. The OS drops it when
    the process ends, however it ends, so a killed run never leaves a stale lock. A second process gets
    ``RunLocked`` naming the holder's pid, having changed nothing in the folder."""

    def __init__(self, run_dir: Path):
        self.run_dir, self.fd = Path(run_dir), None

    def __enter__(self) -> RunLock:
        _check_writable(self.run_dir, probe=False)
        fd = os.open(self.run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLocked(f"{self.run_dir} is being written by another lwt process (pid {pid}); nothing was "
                            "changed. Wait for it to end or stop it (its lock goes with it), then run again",
                            pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        os.ftruncate(self.fd, 0)
        os.close(self.fd)  # closing the only descriptor releases the flock
        self.fd = None


def locked_by(run_dir: Path) -> str | None:
    """The pid holding ``run_dir``'s lock, or None when no process holds it (nothing is created)."""
    path = Path(run_dir) / LOCK
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
    finally:
        os.close(fd)


@contextmanager
def write_errors_reported(run_dir: Path):
    """An OSError while writing the run (disk full, quota, permissions) becomes one LwtError naming the file;
    every file of the run is written atomically, so the run resumes from its last checkpoint."""
    try:
        yield
    except OSError as e:
        if e.errno not in WRITE_ERRNOS:
            raise
        raise LwtError(f"cannot write {e.filename or run_dir}: {e.strerror}; the run stopped and keeps its last "
                       f"checkpoint. Free space or fix permissions, then `lwt train --resume {run_dir}`") from None
