"""The same sweep for other schedulers: a W&B sweep config (``--export wandb``) or a job list plus a SLURM
array script (``--export jobs``). Both reproduce `lwt sweep`'s run names and run directories."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml

from lwt.run.dir import atomic_write_text
from lwt.sweep.spec import Sweep, display_path


def export_jobs(sweep: Sweep) -> list[Path]:
    """``jobs.txt``: one ``lwt train`` command per run (line i = run i); ``run_dirs.txt``: its run directory;
    ``jobs.sbatch``: a SLURM array whose task i runs line i unless that run has finished."""
    out = sweep.out_dir
    out.mkdir(parents=True, exist_ok=True)
    jobs, dirs, script = out / "jobs.txt", out / "run_dirs.txt", out / "jobs.sbatch"
    atomic_write_text(jobs, "".join(shlex.join(["lwt", *r.train_args()]) + "\n" for r in sweep.runs))
    atomic_write_text(dirs, "".join(display_path(r.run_dir.resolve()) + "\n" for r in sweep.runs))
    n = len(sweep.runs)
    atomic_write_text(script, f"""#!/bin/bash
# SLURM array for the lwt sweep '{sweep.name}' ({display_path(sweep.path)}): {n} runs.
# Task i runs line i of {jobs.name} (one `lwt train` command per line) unless the run directory on
# line i of {dirs.name} holds a result.json; a run started by an earlier task continues (--resume). So
# resubmitting the array after a partial sweep trains only what is missing.
# Submit from the lwt checkout (the paths are relative to it), with lwt installed in the job's environment:
#   sbatch {display_path(script)}
# Adjust the resources below to your cluster.
#SBATCH --job-name=lwt-{sweep.name}
#SBATCH --array=1-{n}
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --output={display_path(out)}/slurm-%A_%a.out
set -euo pipefail
line=$(sed -n "${{SLURM_ARRAY_TASK_ID}}p" {shlex.quote(display_path(jobs))})
run_dir=$(sed -n "${{SLURM_ARRAY_TASK_ID}}p" {shlex.quote(display_path(dirs))})
if [ -f "$run_dir/result.json" ]; then
    echo "task $SLURM_ARRAY_TASK_ID: $run_dir is finished; nothing to do"
    exit 0
fi
if [ -f "$run_dir/config.yaml" ]; then  # started by an earlier (killed or preempted) task: continue it
    line="$line --resume $(printf %q "$run_dir")"
fi
echo "task $SLURM_ARRAY_TASK_ID: $line"
eval "$line"
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
