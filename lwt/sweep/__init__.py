"""Sweeps as data: ``lwt sweep experiments/sweeps/<name>.yaml`` expands a sweep file into named runs.

A sweep file (YAML; begins with a comment: the question it answers, the command, the hardware, the
expected runtime)::

    name: gap                     # optional; default: the file stem. Runs land in <out_dir>/sweeps/<name>/
    bases:                        # or `base: <file>` for one experiment file
      - experiments/cifar10/vgg11_greedy.yaml
      - file: experiments/cifar10/belilovsky_k2_greedy.yaml
        overrides: [model.num_blocks=8]            # only for this base
    overrides: [data.train_subset=5000]           # fixed for every run
    grid: {model.width: [32, 64]}                 # cartesian product
    zip: {model.name: [belilovsky_k1, belilovsky_k2], model.aux.k: [1, 2]}   # in step; equal lengths
    seeds: [0, 1, 2]                              # default [0]
    variants:                                     # `--variant cpu`: a smaller sweep named <name>_cpu
      cpu: {overrides: [curriculum.epochs_per_stage=2], seeds: [0, 1]}

Runs = bases x grid x zip x seeds. Overrides apply in this order, the more specific winning: the file's
``overrides``, the base entry's, the command line's (an axis key cannot be overridden: the axis would
collapse). A variant's ``overrides`` are added after the file's; any other key it sets (``base(s)``,
``grid``, ``zip``, ``seeds``) replaces the file's. A nested list in ``bases`` (a YAML alias to another
list of bases, ``- *cifar_bases``) counts as its entries. Relative paths are tried from the current
folder, then from the lwt checkout. The whole file is checked when it is read (``spec.SweepFile``), every
variant included, whichever one runs.

Each run is ``lwt train <base> <overrides> seed=S sweep=<name> run_name=<axes>_seed<S>
logging.out_dir=<out_dir>/sweeps/<name>``, so its directory is
``<out_dir>/sweeps/<name>/<experiment>/<run_name>/`` (experiment: the base file's stem unless a base entry
sets ``experiment=``), its config.yaml and result.json carry the sweep name, and its W&B run is grouped by
it. ``run_name`` joins the axis values in file order (``width-32_k-2_seed0``); the same sweep file always
gives the same names, which is how an interrupted sweep resumes: a run with a result.json is skipped (after
checking that its config.yaml matches the config asked for now), a run killed half-way continues from its
last checkpoint (``lwt train --resume``), the others start.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lwt.errors import LwtError
from lwt.sweep.select import select
from lwt.sweep.spec import Run, Sweep, build_sweep, load_sweep

__all__ = ["Run", "Sweep", "add_subparser", "build_sweep", "load_sweep", "select"]


def _plan(r: Run) -> str:
    cfg = r.cfg
    if cfg.mode in ("e2e", "dgl"):
        return f"{cfg.mode} {cfg.e2e_epochs(r.num_stages)} ep"
    stages = min(r.num_stages, cfg.curriculum.max_stages or r.num_stages)
    per_stage = "/".join(map(str, cfg.curriculum.stage_epochs[:stages])) if cfg.curriculum.stage_epochs \
        else cfg.curriculum.epochs_per_stage
    return f"{stages} stages x {per_stage} ep" + (f" + ft {cfg.finetune.epochs}" if cfg.finetune.epochs else "")


def dry_run(sweep: Sweep, runs: list[Run]) -> None:
    print(f"sweep {sweep.name}: {sweep.path}{f' (variant {sweep.variant})' if sweep.variant else ''}, "
          f"{len(runs)} runs under {sweep.out_dir}")
    if sweep.overrides or sweep.cli_overrides:
        print("fixed overrides: " + " ".join(sweep.overrides + sweep.cli_overrides))
    width = max(len(r.id) for r in runs)
    for r in runs:
        status = r.status()
        if status in ("done", "archived") and r.differences():
            status = "done, other config"
        axes = " ".join(f"{k}={v}" for k, v in r.axes.items() if k != "experiment")
        extra = " ".join(r.base.overrides)
        print(f"{r.index:4d}  {status:8s}  {r.id:{width}s}  {r.cfg.mode:6s} {_plan(r):18s} {axes} {extra}".rstrip())


def cmd_sweep(args) -> int:
    from lwt.sweep.export import export_jobs, export_wandb, job_resources
    from lwt.sweep.runner import execute

    if (args.gpus is not None or args.time is not None) and args.export != "jobs":
        raise LwtError("--gpus and --time size the SLURM script of --export jobs; add --export jobs")
    resources = job_resources(args.gpus or "1", args.time or "24:00:00") if args.export == "jobs" else {}
    sweep = load_sweep(args.file, args.variant, args.overrides, args.name)
    if args.archive != "none":
        sweep.attach_archive(Path(args.archive or f"results/{sweep.name}_runs.jsonl"))
    runs = select(sweep.runs, sweep, args.select) if args.select else sweep.runs
    if args.export:
        if args.select:
            raise LwtError("--export writes the whole sweep; leave out --select")
        paths = export_wandb(sweep) if args.export == "wandb" else export_jobs(sweep, **resources)
        print(f"{len(sweep.runs)} runs exported: " + ", ".join(map(str, paths)))
        return 0
    if args.dry_run:
        dry_run(sweep, runs)
        return 0
    return execute(sweep, runs, parse_workers(args.workers))


def parse_workers(text: str) -> int | None:
    """--workers: a count of at least 1, or auto (None: the runner picks, see runner.auto_workers)."""
    if text == "auto":
        return None
    if not text.isdigit() or int(text) < 1:
        raise LwtError(f"--workers {text}: give a count of at least 1, or auto")
    return int(text)


def add_subparser(sub) -> None:
    p = sub.add_parser("sweep", help="expand a sweep file into runs and train those not finished yet",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="sweep file, e.g. experiments/sweeps/arch_table.yaml")
    p.add_argument("overrides", nargs="*", help="key=value overrides applied to every run (before any --option)")
    p.add_argument("--variant", help="a named variant of the sweep file (e.g. cpu)")
    p.add_argument("--name", help="sweep name (default: the file's name:, else its stem; _<variant> appended)")
    p.add_argument("--dry-run", action="store_true", help="list the runs (name, status, overrides); train nothing")
    p.add_argument("--archive", metavar="JSONL",
                   help="the sweep's run archive (default results/<name>_runs.jsonl, written by `lwt results`): "
                        "the runs it holds count as finished where their folders are gone (trained elsewhere); "
                        "none: train every run without a folder here (e.g. to rebuild networks another sweep reads)")
    p.add_argument("--workers", default="auto",
                   help="train N runs at once in `python -m lwt train` subprocesses, 1: in this process; auto "
                        "(default): one single-thread worker per CPU core without a GPU, else 1 (docs/scaling.md)")
    p.add_argument("--export", choices=["wandb", "jobs"],
                   help="write a W&B sweep config, or a job list + SLURM array script, into the sweep's folder")
    p.add_argument("--gpus", metavar="N",
                   help="--export jobs: GPUs per SLURM job (default 1); a job trains N runs at once, one per GPU")
    p.add_argument("--time", metavar="[D-]HH:MM:SS",
                   help="--export jobs: each SLURM job's time limit (default 24:00:00); requeued when it runs out")
    p.add_argument("--select", nargs="+", metavar="AXIS=VALUE",
                   help="only the runs with these axis values (experiment=, grid/zip keys, seed=); "
                        "a key given twice matches either value")
    p.set_defaults(func=cmd_sweep)
