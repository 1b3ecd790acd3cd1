"""The same sweep for other schedulers: a W&B sweep config (``--export wandb``) or a job list plus a SLURM
array script (``--export jobs``). Both reproduce `lwt sweep`'s run names and run directories."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from lwt.errors import LwtError
from lwt.run.dir import atomic_write_text
from lwt.sweep.spec import Sweep, display_path

CPUS_PER_RUN = 8  # data loading and the prefix cache of one run; each run's SLURM task gets this many

_TIME = re.compile(r"(\d+-)?\d{1,2}:\d{2}:\d{2}")


def job_resources(gpus: str, time: str) -> dict:
    """``--gpus N`` and ``--time [D-]HH:MM:SS`` of ``--export jobs``, checked: ``{"gpus": int, "time": str}``."""
    if not gpus.isdigit() or int(gpus) < 1:
        raise LwtError(f"--gpus {gpus}: give the GPUs per SLURM job as a whole number of at least 1")
    if not _TIME.fullmatch(time) or any(int(part) >= 60 for part in time.split(":")[1:]):
        raise LwtError(f"--time {time}: give a SLURM time limit as HH:MM:SS or D-HH:MM:SS (e.g. 24:00:00, "
                       "2-00:00:00)")
    return {"gpus": int(gpus), "time": time}


def export_jobs(sweep: Sweep, gpus: int = 1, time: str = "24:00:00") -> list[Path]:
    """``jobs.txt``: one ``lwt train`` command per run (line i = run i); ``run_dirs.txt``: its run directory;
    ``jobs.sbatch``: a SLURM array of ceil(runs / gpus) jobs. Job j holds ``gpus`` GPUs and trains lines
    (j-1)*gpus+1 .. j*gpus at once, each as its own ``srun`` step on one GPU of its own (a GPU never trains two
    runs), and skips a line whose run has finished. The jobs ask for ``--requeue`` and SIGUSR1 90 s before
    their time limit, what Lightning's SLURM plugin needs to requeue a job that runs out of time; a requeued
    or resubmitted job continues each started run with ``--resume``."""
    out = sweep.out_dir
    out.mkdir(parents=True, exist_ok=True)
    jobs, dirs, script = out / "jobs.txt", out / "run_dirs.txt", out / "jobs.sbatch"
    atomic_write_text(jobs, "".join(shlex.join(["lwt", *r.train_args()]) + "\n" for r in sweep.runs))
    atomic_write_text(dirs, "".join(display_path(r.run_dir.resolve()) + "\n" for r in sweep.runs))
    n = len(sweep.runs)
    tasks = -(-n // gpus)
    atomic_write_text(script, f"""#!/bin/bash
# SLURM array for the lwt sweep '{sweep.name}' ({display_path(sweep.path)}): {n} runs, {gpus} per job.
# Job j trains lines (j-1)*{gpus}+1 .. j*{gpus} of {jobs.name} (one `lwt train` command per line) at once,
# each as an srun step with one GPU of its own, and skips a line whose run directory (the same line of
# {dirs.name}) holds a result.json; a run started by an earlier job continues (--resume). So
# resubmitting the array after a partial sweep trains only what is missing.
# --requeue and --signal: 90 s before the time limit SLURM sends SIGUSR1 to the srun steps, and Lightning's
# SLURM plugin (auto_requeue) requeues the job, which then resumes its runs from their last checkpoints.
# Submit from the lwt checkout (the paths are relative to it), with lwt installed in the job's environment:
#   sbatch {display_path(script)}
# Made by `lwt sweep ... --export jobs --gpus {gpus} --time {time}`; export again to change GPUs or time.
# Adjust the partition, account or CPUs below to your cluster.
#SBATCH --job-name=lwt-{sweep.name}
#SBATCH --array=1-{tasks}
#SBATCH --ntasks={gpus}
#SBATCH --cpus-per-task={CPUS_PER_RUN}
#SBATCH --gres=gpu:{gpus}
#SBATCH --time={time}
#SBATCH --requeue
#SBATCH --signal=SIGUSR1@90
#SBATCH --output={display_path(out)}/slurm-%A_%a.out
set -euo pipefail
runs={n}
per_job={gpus}
first=$(( (SLURM_ARRAY_TASK_ID - 1) * per_job + 1 ))
last=$(( first + per_job - 1 ))
if [ "$last" -gt "$runs" ]; then last=$runs; fi

train() {{  # line $1 of {jobs.name}, as one srun step: one task, one GPU
    local i=$1 line run_dir
    line=$(sed -n "${{i}}p" {shlex.quote(display_path(jobs))})
    run_dir=$(sed -n "${{i}}p" {shlex.quote(display_path(dirs))})
    if [ -f "$run_dir/result.json" ]; then
        echo "run $i: $run_dir is finished; nothing to do"
        return 0
    fi
    if [ -f "$run_dir/config.yaml" ]; then  # started by an earlier (killed, preempted or requeued) job
        line="$line --resume $(printf %q "$run_dir")"
    fi
    echo "run $i: $line"
    eval "srun --ntasks=1 --cpus-per-task={CPUS_PER_RUN} --gres=gpu:1 --exact $line"
}}

pids=()
for i in $(seq "$first" "$last"); do
    train "$i" &
    pids+=($!)
done
status=0
for pid in "${{pids[@]}}"; do
    wait "$pid" || status=1
done
exit $status
""")
    return [jobs, dirs, script]


def _wandb_value(value: Any) -> Any:
    """W&B hands values to the command as Python's str(): None would arrive as 'None', so send 'null'."""
    if isinstance(value, list):
        return [_wandb_value(v) for v in value]
    return "null" if value is None else value


def wandb_config(sweep: Sweep) -> dict:
    # overrides right after the file: argparse takes positionals only before the first option
    command = ["${env}", "lwt", "sweep", display_path(sweep.path), *sweep.cli_overrides, "logging.wandb=online",
               "--name", sweep.name]
    if sweep.variant:
        command += ["--variant", sweep.variant]
    command += ["--select", "${args_no_hyphens}"]
    project = sweep.runs[0].cfg.logging.project
    return {
        "name": sweep.name,
        "project": project,
        "program": "lwt",
        "method": "grid",
        "metric": {"name": "final_test_acc", "goal": "maximize"},
        "parameters": {k: {"values": _wandb_value(v)} for k, v in sweep.parameters().items()},
        "command": command,
    }


def export_wandb(sweep: Sweep) -> list[Path]:
    """``wandb_sweep.yaml``: a grid over the sweep's axes; each agent run calls ``lwt sweep FILE --select
    <its parameter values>``, which trains exactly that run into the same run directory (or skips it)."""
    out = sweep.out_dir
    out.mkdir(parents=True, exist_ok=True)
    path = out / "wandb_sweep.yaml"
    config = wandb_config(sweep)
    header = (f"# W&B sweep equivalent to `lwt sweep {display_path(sweep.path)}"
              f"{' --variant ' + sweep.variant if sweep.variant else ''}`: {len(sweep.runs)} runs "
              f"(the product of the parameters' values).\n"
              f"#   wandb sweep {display_path(path)}        # prints the sweep id\n"
              f"#   wandb agent <entity>/{config['project']}/<sweep id>   # on each machine, from the lwt checkout\n"
              "# Each agent run calls `lwt sweep ... --select <its parameters>`: the run trains into the same\n"
              f"# run directory as with `lwt sweep` (under {display_path(out)}), logs to W&B online, and a run\n"
              "# that already has its result.json is skipped.\n")
    atomic_write_text(path, header + yaml.safe_dump(config, sort_keys=False, default_flow_style=None, width=10**9))
    return [path]
