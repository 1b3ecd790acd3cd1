"""(f) CPU settings for sweeps (opt-in, ``--sections cpu``: about 10 minutes on 2 cores): channels_last,
torch's thread count, and N single-thread `lwt train` workers vs one N-thread worker.

Each setting trains ``RUNS`` short greedy runs of s2d_cnn (stages 1-2, one epoch each) as ``lwt sweep`` would:
``python -m lwt train`` subprocesses, ``workers`` at a time. What decides is their training images over the
wall time from the first start to the last end (start-up, evaluation and files included: what a sweep waits
for). Settings alternate within each round; the best round counts; /proc/loadavg is read before and after.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lwt.bench.common import EXPERIMENTS
from lwt.run.result import RunResult

RUNS = 2
SETTINGS = {  # name: (workers, threads per worker, channels_last)
    "1 worker x 2 threads": (1, 2, False),
    "1 worker x 2 threads, channels_last": (1, 2, True),
    "1 worker x 1 thread": (1, 1, False),
    "2 workers x 1 thread": (2, 1, False),
    "2 workers x 1 thread, channels_last": (2, 1, True),
}
OVERRIDES = ["data.train_subset=1536", "data.val_size=500", "data.test_subset=500", "curriculum.max_stages=2",
             "curriculum.epochs_per_stage=1", "logging.wandb=disabled", "trainer.progress_bar=false"]


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" r")[0].strip()
    except OSError:
        return "unknown"


def train_one(out: Path, name: str, threads: int, channels_last: bool) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "lwt", "train", str(EXPERIMENTS / "s2d_cnn_greedy.yaml"), *OVERRIDES,
           f"trainer.channels_last={str(channels_last).lower()}", f"logging.out_dir={out}", f"run_name={name}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    result = RunResult.read(next(out.rglob(f"{name}/result.json")))
    return {"images": sum(result.train_images * r.epochs for r in result.stages),
            "loop_images_per_s": [r.images_per_s for r in result.stages]}


def setting(out: Path, tag: str, workers: int, threads: int, channels_last: bool) -> dict:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        runs = list(pool.map(lambda i: train_one(out, f"{tag}_{i}", threads, channels_last), range(RUNS)))
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "images_per_s": sum(r["images"] for r in runs) / wall,
            "loop_images_per_s": [r["loop_images_per_s"] for r in runs]}


def run(rounds: int) -> dict:
    load_before = loadavg()
    rounds_out: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="lwt-bench-cpu-") as tmp:
        for i in range(rounds):
            order = list(SETTINGS) if i % 2 == 0 else list(reversed(SETTINGS))
            for name in order:
                workers, threads, cl = SETTINGS[name]
                tag = f"r{i}_{workers}w{threads}t{'_cl' if cl else ''}"
                rounds_out[name].append(setting(Path(tmp), tag, workers, threads, cl))
    best = {name: max(r["images_per_s"] for r in rs) for name, rs in rounds_out.items()}
    return {"network": "s2d_cnn", "runs_per_setting": RUNS, "overrides": OVERRIDES, "cpus": os.cpu_count(),
            "loadavg_before": load_before, "loadavg_after": loadavg(), "images_per_s": best,
            "rounds": rounds_out, "winner": max(best, key=best.get)}


def lines(c: dict) -> list[str]:
    out = [f"  CPU settings, {c['runs_per_setting']} runs of {c['network']} per setting (images/s combined, best "
           f"round; loadavg before {c['loadavg_before']}, after {c['loadavg_after']}):"]
    for name, ips in c["images_per_s"].items():
        walls = ", ".join(f"{r['wall_s']:.0f}" for r in c["rounds"][name])
        out.append(f"    {name:<38} {ips:7.1f}   (wall s per round: {walls})")
    out.append(f"    winner: {c['winner']}")
    return out
