"""`lwt sweep --export jobs`: the job list reproduces the sweep's runs, and the SLURM array script trains each
line once, one run per GPU, `--gpus` runs per job, skips finished runs, resumes started ones and asks for
what Lightning's auto-requeue needs."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from lwt.cli import main
from lwt.config import load_config
from lwt.sweep import load_sweep

from conftest import EXPERIMENTS, lwt_error

GREEDY = EXPERIMENTS / "cifar10" / "belilovsky_k2_greedy.yaml"
E2E = EXPERIMENTS / "cifar10" / "belilovsky_k2_e2e.yaml"

# 2 bases x 3 seeds = 6 runs
SWEEP = f"""# test sweep
bases: [{GREEDY}, {E2E}]
overrides: [data.train_subset=1000, model.width=8]
seeds: [0, 1, 2]
"""

# a stand-in srun: records its options and the command it was given, one file per step
SRUN = """#!/bin/bash
opts=()
while [[ "$1" == --* ]]; do opts+=("$1"); shift; done
{ echo "${opts[*]}"; printf '%s\\n' "$@"; } > "$STEPS/$$"
"""


def export(tmp_path: Path, *options: str) -> tuple[Path, list[str], str]:
    path = tmp_path / "mysweep.yaml"
    path.write_text(SWEEP)
    out = tmp_path / "runs"
    assert main(["sweep", str(path), f"logging.out_dir={out}", "--export", "jobs", *options]) == 0
    folder = out / "sweeps" / "mysweep"
    return folder, (folder / "jobs.txt").read_text().splitlines(), (folder / "jobs.sbatch").read_text()


def steps_of_task(tmp_path: Path, folder: Path, task: int) -> list[tuple[str, list[str]]]:
    """Run the array script as SLURM task ``task``; return each srun step's options and command."""
    bin_dir, steps = tmp_path / "bin", tmp_path / f"steps{task}"
    bin_dir.mkdir(exist_ok=True)
    steps.mkdir()
    (bin_dir / "srun").write_text(SRUN)
    (bin_dir / "srun").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_ARRAY_TASK_ID": str(task),
           "STEPS": str(steps)}
    subprocess.run(["bash", folder / "jobs.sbatch"], env=env, check=True, capture_output=True)
    found = [p.read_text().splitlines() for p in steps.iterdir()]
    return sorted(((lines[0], lines[1:]) for lines in found), key=lambda step: step[1])


@pytest.mark.slow
def test_export_jobs_reproduces_the_runs_one_per_job_by_default(tmp_path):
    folder, lines, script = export(tmp_path)
    sweep = load_sweep(tmp_path / "mysweep.yaml", overrides=[f"logging.out_dir={tmp_path / 'runs'}"])
    assert len(lines) == 6 and (folder / "run_dirs.txt").read_text().count("\n") == 6
    for line, r in zip(lines, sweep.runs):
        argv = shlex.split(line)
        assert argv[:2] == ["lwt", "train"]
        assert load_config(argv[2], argv[3:]) == r.cfg  # the job line trains exactly this run
    for directive in ("--array=1-6", "--ntasks=1", "--gres=gpu:1", "--time=24:00:00", "--requeue",
                      "--signal=SIGUSR1@90"):
        assert f"#SBATCH {directive}\n" in script
    assert subprocess.run(["bash", "-n", folder / "jobs.sbatch"]).returncode == 0

    # task 2 trains line 2 as one srun step on one GPU; a finished run is skipped; a started one continues
    one_gpu = "--ntasks=1 --cpus-per-task=8 --gres=gpu:1 --exact"
    assert steps_of_task(tmp_path, folder, 2) == [(one_gpu, shlex.split(lines[1]))]
    sweep.runs[2].run_dir.mkdir(parents=True)
    (sweep.runs[2].run_dir / "result.json").write_text("{}")
    assert steps_of_task(tmp_path, folder, 3) == []
    sweep.runs[3].run_dir.mkdir(parents=True)
    (sweep.runs[3].run_dir / "config.yaml").write_text("{}")
    resumed = shlex.split(lines[3]) + ["--resume", str(sweep.runs[3].run_dir)]
    assert steps_of_task(tmp_path, folder, 4) == [(one_gpu, resumed)]


@pytest.mark.slow
def test_export_jobs_gpus_per_job_trains_that_many_runs_at_once_one_per_gpu(tmp_path):
    folder, lines, script = export(tmp_path, "--gpus", "4", "--time", "2-00:00:00")
    for directive in ("--array=1-2", "--ntasks=4", "--gres=gpu:4", "--time=2-00:00:00", "--requeue",
                      "--signal=SIGUSR1@90"):
        assert f"#SBATCH {directive}\n" in script
    first, second = steps_of_task(tmp_path, folder, 1), steps_of_task(tmp_path, folder, 2)
    assert [argv for _, argv in first] == sorted(shlex.split(line) for line in lines[:4])
    assert [argv for _, argv in second] == sorted(shlex.split(line) for line in lines[4:])  # 6 runs: 4 + 2
    assert all(opts == "--ntasks=1 --cpus-per-task=8 --gres=gpu:1 --exact" for opts, _ in first + second)


@pytest.mark.parametrize("options, named", [
    (["--gpus", "0"], "--gpus 0"),
    (["--gpus", "two"], "--gpus two"),
    (["--time", "25h"], "--time 25h"),
    (["--time", "10:61:00"], "--time 10:61:00"),
])
def test_bad_gpus_or_time_is_one_error_line(capsys, tmp_path, options, named):
    line = lwt_error(capsys, ["sweep", EXPERIMENTS / "sweeps" / "gap.yaml", f"logging.out_dir={tmp_path / 'runs'}",
                              "--export", "jobs", *options])
    assert named in line and ("at least 1" in line or "HH:MM:SS" in line)
    assert not (tmp_path / "runs").exists()  # refused before anything is written


def test_gpus_without_export_jobs_is_refused(capsys):
    line = lwt_error(capsys, ["sweep", EXPERIMENTS / "sweeps" / "gap.yaml", "--gpus", "2", "--dry-run"])
    assert "--export jobs" in line
