"""A run's folder (``RunDir``: ``<out_dir>/<experiment>/<run_name>/``), its phases, and how lwt writes it.

Every file is written atomically (temp file + rename); ``result.json`` only when a run completes, so its
presence means "finished". The folder always lies inside ``logging.out_dir`` (names are checked by
lwt.config.check_name; symbolic links that lead out are refused here), ``.lwt-run`` marks it as lwt's
(``--overwrite`` empties only such folders) and ``.lwt.lock`` is flock'ed while a process writes it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from lwt.config import Config, flatten, identity_differences, to_dict
from lwt.config.files import file_problem, read_data, read_model
from lwt.config.load import config_text, load_saved_config
from lwt.errors import LwtError, RunLocked
from lwt.run.result import RunResult

RESULT = "result.json"
MARKER = ".lwt-run"  # written first into every run folder lwt makes
LOCK = ".lwt.lock"
# what a run folder may hold before its run starts: the lock, the writability probe
BEFORE_START = {LOCK, ".write-test"}
# the files lwt reads or appends to in a run folder: each must be a plain file (never a symbolic link, never a
# folder) before lwt opens it, so that nothing outside the folder is read, written or truncated through it
RUN_FILES = (LOCK, MARKER, "config.yaml", "meta.json", "progress.json", RESULT, "per_image.npz", "metrics.jsonl",
             "model.pt", "wandb_id.txt", "flops_match.json")
SCHEMA_VERSION = 1  # of meta.json and the files it vouches for; meta.json records it


class Meta(BaseModel):
    """meta.json: what wrote the run (git revision, command line, each resume's), and ``config_sha256``, the
    sha256 of config.yaml as written, which a resume checks (folders written before it lack both)."""

    model_config = ConfigDict(extra="allow")
    schema_version: int | None = None
    git_revision: str | None = None
    argv: list[str] | None = None
    config_sha256: str | None = None
    resumes: list[dict] = []

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


def is_main_process() -> bool:
    """False in the extra processes of a multi-process run (DDP ranks other than 0 launched by Lightning,
    srun tasks): they train but leave the run directory to the main process."""
    ranks = (os.environ.get(k) for k in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"))
    return all(r in (None, "", "0") for r in ranks)


@dataclass(frozen=True)
class Phase:
    """What one Trainer of a run trains: greedy stage ``stage`` (1-based), or E2E, DGL or fine-tuning."""

    kind: Literal["stage", "e2e", "dgl", "finetune"]
    stage: int | None = None

    @property
    def name(self) -> str:
        """Its checkpoint folder, and what its checkpoints record: "stage3", "e2e", "dgl", "finetune"."""
        return f"stage{self.stage}" if self.kind == "stage" else self.kind

    def __str__(self) -> str:  # "stage 3", "end-to-end training", ...
        return TITLES.get(self.kind) or f"stage {self.stage}"

    @classmethod
    def parse(cls, name: str) -> Phase | None:
        """The phase of a checkpoint folder (or of what a checkpoint recorded); None for another name."""
        if name.startswith("stage") and name[5:].isdigit():
            return cls("stage", int(name[5:]))
        return cls(name) if name in TITLES else None


TITLES = {"e2e": "end-to-end training", "dgl": "decoupled greedy training", "finetune": "end-to-end fine-tuning"}
E2E, DGL, FINETUNE = Phase("e2e"), Phase("dgl"), Phase("finetune")


class RunDir:
    """One run's folder and everything lwt keeps in it: ``.lwt-run`` (written first: lwt made it),
    ``config.yaml`` (authoritative), ``meta.json`` (git revision, argv, resumes), ``progress.json`` (finished
    greedy stages, lwt/training/resume.py), ``per_image.npz`` (per-image predictions, lwt.run.per_image),
    ``checkpoints/<phase>/last.ckpt``, ``model.pt``, ``result.json`` (lwt.run.result.RunResult; written last: the
    run finished) and ``.lwt.lock`` (held while a process writes). Its status is ``new``, ``unfinished``
    (config.yaml, no result.json: resume it) or ``finished``."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.config, self.meta, self.result = self.path / "config.yaml", self.path / "meta.json", self.path / RESULT
        self.progress, self.model = self.path / "progress.json", self.path / "model.pt"

    @classmethod
    def of(cls, cfg: Config) -> RunDir:
        """``<out_dir>/<experiment>/<run_name>``; LwtError if it resolves outside out_dir (a symbolic link)."""
        out = Path(cfg.logging.out_dir)
        run_dir = out / cfg.experiment / cfg.run_name
        real_out, real = out.resolve(), run_dir.resolve()
        if real.parent.parent != real_out:
            raise LwtError(f"the run directory {run_dir} leads to {real}, outside logging.out_dir={out} (a "
                           "symbolic link); lwt writes runs only inside logging.out_dir: remove the link or pick "
                           "another name")
        return cls(run_dir)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __fspath__(self) -> str:
        return str(self.path)

    __str__ = __fspath__

    def checkpoint(self, phase: Phase) -> Path:
        return self.path / "checkpoints" / phase.name / "last.ckpt"

    def status(self) -> Literal["new", "unfinished", "finished"]:
        return "finished" if self.result.is_file() else "unfinished" if self.config.is_file() else "new"

    def marker_run(self) -> str:
        """What the marker must name: ``<experiment>/<run_name>``, the folder's place under out_dir."""
        return f"{self.path.parent.name}/{self.path.name}"

    def write_marker(self) -> None:
        """The marker lwt writes first into a run folder it makes: the run it belongs to and a random id."""
        atomic_write_json(self.path / MARKER, {"lwt_run": self.marker_run(), "id": secrets.token_hex(16),
                                               "note": "a run folder written by lwt; `lwt train --overwrite` "
                                                       "may delete it"})

    def marker_problem(self) -> str | None:
        """None when the folder holds lwt's marker naming this run; else why it is not an lwt run folder. Only
        the marker counts: files that merely carry lwt's names (config.yaml, meta.json) prove nothing."""
        if self.path.is_symlink() or not self.path.is_dir():
            return "it is not a folder"
        marker = self.path / MARKER
        if marker.is_symlink() or not marker.is_file():
            return f"it has no {MARKER} marker"
        try:
            data = read_data(marker, "json", top=None, follow=False)
        except LwtError:
            return f"its {MARKER} is not lwt's marker"
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or len(data["id"]) != 32 \
                or any(c not in "0123456789abcdef" for c in data["id"]):
            return f"its {MARKER} is not lwt's marker"
        if data.get("lwt_run") != self.marker_run():
            return f"its {MARKER} names another run ({str(data.get('lwt_run'))[:100]!r})"
        return None

    def refuse_foreign(self) -> set[str]:
        """The names in the folder beyond what it holds before its run starts; LwtError unless lwt made it
        (called before the lock too, so that not even the lock file is put into someone else's folder)."""
        found = {e.name for e in self.path.iterdir()} - BEFORE_START if self.path.is_dir() else set()
        if found and (why := self.marker_problem()):
            raise LwtError(f"{self.path} holds files lwt did not write ({', '.join(sorted(found)[:3])}"
                           f"{', ...' if len(found) > 3 else ''}) and {why}; lwt writes a run only into a new folder "
                           "or its own run folder, and --overwrite deletes only those. Set run_name=... or "
                           "logging.out_dir=...")
        return found

    def check_files(self) -> None:
        """LwtError naming the first of lwt's files in the folder (``RUN_FILES``, ``checkpoints/<phase>/
        last.ckpt`` and their folders) that is a symbolic link or no plain file (a folder where a file belongs):
        lwt never opens such a file, so nothing outside the folder is read or written through it."""
        found = [(self.path / name, False) for name in RUN_FILES] + [(self.path / "checkpoints", True)]
        if file_problem(self.path / "checkpoints", folder=True) is None and (self.path / "checkpoints").is_dir():
            for phase in sorted((self.path / "checkpoints").iterdir()):
                found += [(phase, True), (phase / "last.ckpt", False)]
        for path, folder in found:
            if why := file_problem(path, folder):
                raise LwtError(f"{path}: {why}; lwt opens the files of a run folder only as plain files, never "
                               "through a link, so that it touches nothing outside the folder: remove it (or put "
                               "lwt's own file back) and run again")

    def prepare(self, cfg: Config, overwrite: bool = False) -> RunDir:
        """Check the folder (made and locked by ``lock``), write the marker, config.yaml (atomically) and
        meta.json (with config.yaml's sha256). ``overwrite`` empties it first, but only if it is an lwt run
        folder."""
        foreign = self.refuse_foreign()
        if not overwrite:
            self.check_files()
        if self.status() == "finished" and not overwrite:
            raise LwtError(f"{self.path} already holds a finished run ({RESULT}); pass --overwrite to replace it "
                           "or set run_name=... to keep both")
        if self.status() == "unfinished" and not overwrite:
            # a killed or failed run: starting afresh over its checkpoints would mix two runs
            raise LwtError(f"{self.path} holds an unfinished run; continue it with `lwt train --resume "
                           f"{self.path}`, or pass --overwrite to start it over")
        if overwrite and foreign:
            if why := self.marker_problem():  # checked again under the lock, right before deleting
                raise LwtError(f"{self.path} is not an lwt run folder ({why}); --overwrite deletes only those")
            _clear(self.path)
        _check_writable(self.path)
        self.write_marker()
        text = config_text(cfg).encode()
        atomic_write_bytes(self.config, text)
        atomic_write_json(self.meta, {"schema_version": SCHEMA_VERSION, "git_revision": git_revision(),
                                      "argv": sys.argv, "config_sha256": hashlib.sha256(text).hexdigest()})
        return self

    def read_meta(self) -> Meta:
        """meta.json, typed; LwtError naming the file when it is no JSON mapping of meta.json's shape."""
        return read_model(self.meta, Meta, what="lwt's meta.json (git revision, command line, config.yaml's sha256)")

    def saved_config(self) -> Config:
        """config.yaml as the run wrote it (``lwt.config.load.load_saved_config``): every file of the folder a
        plain file, the config complete and, where meta.json recorded one, of the recorded sha256."""
        self.check_files()
        sha = self.read_meta().config_sha256 if self.meta.is_file() else None
        return load_saved_config(self.config, sha)

    def reopen(self) -> RunDir:
        """The folder of a resumed run, checked writable; meta.json records each resume."""
        self.check_files()
        _check_writable(self.path)
        try:
            meta = self.read_meta().model_dump(exclude_none=True)
        except LwtError:
            meta = {}  # informational beyond the sha256, which resume_config has checked: rewritten afresh
        meta.setdefault("resumes", []).append({"git_revision": git_revision(), "argv": sys.argv})
        atomic_write_json(self.meta, meta)
        return self

    def differences(self, cfg: Config) -> list[str]:
        """Identity keys (lwt.config.is_identity) on which config.yaml and ``cfg`` disagree, as
        ``key: saved there, cfg's now``; empty when they agree or there is no config.yaml."""
        if not self.config.is_file():
            return []
        saved = read_data(self.config, "yaml", follow=False, empty_ok=True) or {}
        saved, wanted = flatten(saved), flatten(to_dict(cfg))
        return [f"{k}: {saved[k]!r} there, {wanted[k]!r} now" for k in identity_differences(wanted, saved)]

    def read_result(self) -> RunResult:
        return RunResult.read(self.result)

    def write_result(self, result: RunResult) -> None:
        atomic_write_json(self.result, result.to_json())


def _clear(run_dir: Path) -> None:
    """Empty an lwt run folder, keeping the lock this process holds in it (links are removed, not followed)."""
    for entry in run_dir.iterdir():
        if entry.name == LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


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
        path = self.run_dir / LOCK
        try:  # never through a link: a lock planted as a link must not truncate the file it points to
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
        except OSError as e:
            why = ("is a symbolic link" if e.errno == errno.ELOOP else "is a folder" if e.errno == errno.EISDIR
                   else f"cannot be opened ({e.strerror})")
            raise LwtError(f"{path}: {why}; lwt's lock must be a plain file it makes itself, so that it touches "
                           "nothing outside the run folder: remove it and run again") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise LwtError(f"{path}: {file_problem(path)}; lwt's lock must be a plain file it makes itself: remove "
                           "it and run again")
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
    if file_problem(path) or not path.is_file():
        return None  # no lock, or none lwt made (RunLock refuses it)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
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
