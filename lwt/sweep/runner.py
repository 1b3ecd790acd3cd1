"""Running a sweep: finished runs are skipped, the rest train one after another in this process or in
``--workers N`` ``python -m lwt train`` subprocesses, with progress and an ETA after every run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lwt.errors import LwtError, RunLocked
from lwt.run.dir import locked_by
from lwt.sweep.spec import Run, Sweep


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def check_finished_runs(sweep: Sweep, runs: list[Run]) -> None:
    """A finished run is only skipped if it was trained with the config asked for now: running the same
    sweep with other overrides must not pass off old results as new ones."""
    for r in runs:
        if r.finished():
            diff = r.differences()
            if diff:
                where = r.run_dir if r.status() == "done" else f"the run archive's line for {r.id}"
                raise LwtError(f"{where} holds a finished run trained with another config ({diff[0]}"
                               f"{f', and {len(diff) - 1} more' if len(diff) > 1 else ''}); run this sweep "
                               "under another name with --name NAME, or delete that run directory")


def prepare_data(runs: list[Run]) -> None:
    """Check (or download, or cache) each dataset once before the first run: missing data stops the sweep
    with one message, and parallel workers find caches built."""
    from lwt.data import build_datamodule

    seen = set()
    for r in runs:
        key = repr((r.cfg.data, r.cfg.data_root()))
        if key not in seen:
            seen.add(key)
            build_datamodule(r.cfg).prepare_data()


class Progress:
    def __init__(self, sweep: Sweep, total: int, already: int, workers: int):
        self.sweep, self.total, self.workers = sweep, total, workers
        self.done, self.failed, self.seconds, self.locked = already, [], [], []
        self.lock = threading.Lock()

    def start(self, r: Run) -> None:
        with self.lock:  # r.index: its number in the whole sweep (a --select trains some of them)
            print(f"[sweep {self.sweep.name}] start {r.id} (run {r.index} of the sweep, {r.status()})", flush=True)

    def finish(self, r: Run, seconds: float, ok: bool | str) -> None:
        """``ok``: True, False (failed) or the pid of another process that holds the run's lock (skipped)."""
        with self.lock:
            if isinstance(ok, str):
                self.locked.append(r)
                print(f"[sweep {self.sweep.name}] skipped {r.id}: another process (pid {ok}) is training it",
                      flush=True)
                return
            if ok:
                self.done += 1
                self.seconds.append(seconds)
            else:
                self.failed.append(r)
            mean = sum(self.seconds) / len(self.seconds) if self.seconds else None
            left = self.total - self.done - len(self.failed) - len(self.locked)
            eta = f"ETA {_duration(mean * left / min(self.workers, max(left, 1)))}" if mean and left else ""
            rate = f"mean {_duration(mean)}/run" if mean else ""
            print(f"[sweep {self.sweep.name}] {'finished' if ok else 'FAILED'} {r.id} in {_duration(seconds)}: "
                  f"{self.done}/{self.total} done, {len(self.failed)} failed"
                  + "".join(f"; {x}" for x in (rate, eta) if x), flush=True)


def _train_here(r: Run) -> bool | str:
    from lwt.analysis.pipeline import run
    from lwt.config import load_config
    from lwt.training.resume import resume_config

    try:
        if r.status() == "partial":  # killed earlier: continue from its last checkpoint
            run(resume_config(r.run_dir, r.base.path, r.overrides), resume=r.run_dir)
        else:
            run(load_config(r.base.path, r.overrides))  # a fresh config: run() may fill in fields
        return True
    except RunLocked as e:
        return e.pid
    except LwtError as e:
        print(f"lwt: error in {r.id}: {e}", file=sys.stderr, flush=True)
    except Exception:  # a bug in one run should not stop the others; its traceback is kept
        traceback.print_exc()
    return False


def worker_log(r: Run) -> Path:
    """A ``--workers`` subprocess's log: ``<sweep folder>/logs/<experiment>@<run_name>.log``, never inside a
    run folder (another process may hold the run); ``@`` cannot occur in a name, so no two runs share one."""
    return r.run_dir.parent.parent / "logs" / f"{r.experiment}@{r.run_dir.name}.log"


def _train_subprocess(r: Run, env: dict) -> bool | str:
    resume = ["--resume", str(r.run_dir)] if r.status() == "partial" else []
    path = worker_log(r)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as log:
        proc = subprocess.run([sys.executable, "-m", "lwt", *r.train_args(), *resume], stdout=log,
                              stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0 and (pid := locked_by(r.run_dir)):
        return pid  # another sweep took the run between the check before the start and the child's lock
    if proc.returncode != 0:
        print(f"lwt: {r.id} exited with status {proc.returncode}; see {path}", file=sys.stderr, flush=True)
    return proc.returncode == 0


def auto_workers(todo: int) -> int:
    """``--workers auto``: with a CUDA GPU 1; else one single-thread process per CPU core (faster than fewer
    threaded ones, docs/scaling.md), at most one per run and one per 4 GiB of available memory."""
    import torch

    from lwt.training.prefix import GB, available_bytes

    if torch.cuda.is_available():
        return 1
    return max(1, min(os.cpu_count() or 1, todo, available_bytes(torch.device("cpu")) // (4 * GB)))


def cpu_defaults(todo: list[Run]) -> list[str]:
    """The CPU sweep's measured default (docs/scaling.md): ``trainer.channels_last=true`` (+19-25 % images/s),
    added to each run that does not set it; a "how" key that names and resume checks ignore. Returns the
    overrides added."""
    added = ["trainer.channels_last=true"]
    for r in todo:
        if not any(o.startswith("trainer.channels_last=") for o in r.overrides):
            r.overrides.extend(added)
            r.cfg.trainer.channels_last = True
    return added


def execute(sweep: Sweep, runs: list[Run], workers: int | None = 1) -> int:
    """Train every run of ``runs`` that has no result.json, ``workers`` at once (None: ``auto_workers``); 0 when
    none failed (a run another process holds is skipped: that process trains it)."""
    check_finished_runs(sweep, runs)
    todo = [r for r in runs if not r.finished()]
    cpu_added = []
    if workers is None:
        workers = auto_workers(len(todo))
        import torch

        if not torch.cuda.is_available():
            cpu_added = cpu_defaults(todo)
    prepare_data(todo)
    progress = Progress(sweep, len(runs), len(runs) - len(todo), workers)
    archived = sum(r.status() == "archived" for r in runs)
    skipped = f"skipped; {archived} of them in the run archive" if archived else "skipped"
    print(f"[sweep {sweep.name}] {len(runs)} runs under {sweep.out_dir}: {len(runs) - len(todo)} finished "
          f"({skipped}), {len(todo)} to train" + (f" with {workers} workers" if workers > 1 else "")
          + (f"; CPU defaults {' '.join(cpu_added)} unless a run sets them" if cpu_added else ""), flush=True)

    def one(r: Run, env: dict | None) -> None:
        t0 = time.perf_counter()
        if pid := locked_by(r.run_dir):  # another sweep (or lwt train) is training it: leave it alone
            progress.finish(r, 0.0, pid)
            return
        progress.start(r)
        ok = _train_subprocess(r, env) if env is not None else _train_here(r)
        progress.finish(r, time.perf_counter() - t0, ok)

    if workers <= 1:
        for r in todo:
            one(r, None)
    else:
        env = dict(os.environ)
        # N processes on the same cores: split the cores instead of oversubscribing them
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(one, r, env) for r in todo]:
                future.result()
    if progress.locked:
        print(f"[sweep {sweep.name}] {len(progress.locked)} run(s) skipped, being trained by another process: "
              + ", ".join(r.id for r in progress.locked) + "; run the sweep again once it has ended",
              file=sys.stderr, flush=True)
    if progress.failed:
        print(f"[sweep {sweep.name}] {len(progress.failed)} run(s) failed: "
              + ", ".join(r.id for r in progress.failed), file=sys.stderr, flush=True)
        return 1
    if progress.locked:
        return 0  # nothing failed; the other process finishes those runs
    print(f"[sweep {sweep.name}] all {len(runs)} runs finished; table: "
          f"lwt results {sweep.out_dir.parent.parent} --sweep {sweep.name}", flush=True)
    return 0
