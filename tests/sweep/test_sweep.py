"""Sweeps: files expand into named, validated runs; exports reproduce them; an interrupted sweep resumes
without redoing finished runs; `lwt results` tabulates them with mean, SD, n and 95 % t-interval over seeds,
and E2E - greedy paired by seed."""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lwt.cli import main
from lwt.config import load_config
from lwt.errors import LwtError
from lwt.sweep import load_sweep, select

from conftest import EXPERIMENTS, ROOT

GREEDY = EXPERIMENTS / "cifar10" / "belilovsky_k2_greedy.yaml"
E2E = EXPERIMENTS / "cifar10" / "belilovsky_k2_e2e.yaml"
SWEEPS = sorted((EXPERIMENTS / "sweeps").glob("*.yaml"))

# 2 bases x 2 x 2 grid x 2 zipped x 2 seeds = 32 runs
SWEEP = f"""# test sweep
bases: [{GREEDY}, {E2E}]
overrides: [data.train_subset=1000, trainer.max_epochs=null]
grid:
  model.width: [8, 16]
  optim.lr: [0.05, 0.1]
zip:
  model.name: [belilovsky_k2, belilovsky_k3]
  model.aux.k: [2, 3]
seeds: [0, 1]
"""


def write(tmp_path: Path, text: str, name: str = "mysweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.slow
def test_expansion_counts_names_and_values(tmp_path):
    path = write(tmp_path, SWEEP)
    sweep = load_sweep(path, overrides=[f"logging.out_dir={tmp_path / 'runs'}"])
    assert len(sweep.runs) == 2 * 2 * 2 * 2 * 2
    first = sweep.runs[0]
    assert first.id == "belilovsky_k2_greedy/width-8_lr-0.05_name-belilovsky_k2_k-2_seed0"
    assert first.run_dir == tmp_path / "runs" / "sweeps" / "mysweep" / first.id
    assert len({r.id for r in sweep.runs}) == len(sweep.runs)  # every run has its own directory
    assert [r.index for r in sweep.runs] == list(range(1, 33))
    for r in sweep.runs:
        cfg = r.cfg
        assert cfg.sweep == "mysweep" and cfg.data.train_subset == 1000 and cfg.seed == r.axes["seed"]
        assert (cfg.model.width, cfg.optim.lr) == (r.axes["model.width"], r.axes["optim.lr"])
        assert (cfg.model.name, cfg.model.aux.k) in {("belilovsky_k2", 2), ("belilovsky_k3", 3)}  # zipped in step
        assert cfg.mode == ("greedy" if r.experiment.endswith("greedy") else "e2e")
        assert cfg.trainer.max_epochs is None  # the E2E file's 200 is overridden: greedy budget
        # the run's override list alone rebuilds its config (what --workers and --export jobs rely on)
        assert load_config(r.base.path, r.overrides) == cfg
    # the grid is a full product and the seeds are crossed with it
    combos = {(r.experiment, r.axes["model.width"], r.axes["optim.lr"], r.axes["model.name"], r.axes["seed"])
              for r in sweep.runs}
    assert len(combos) == 32
    # deterministic: the same file gives the same runs in the same order
    again = load_sweep(path, overrides=[f"logging.out_dir={tmp_path / 'runs'}"])
    assert [r.id for r in again.runs] == [r.id for r in sweep.runs]
    # the W&B parameters are the axes; their product is the run list
    params = sweep.parameters()
    assert list(params) == ["experiment", "model.width", "optim.lr", "model.name+model.aux.k", "seed"]
    assert len(list(itertools.product(*params.values()))) == 32


def test_variant_replaces_axes_and_adds_overrides(tmp_path):
    path = write(tmp_path, SWEEP + "variants:\n  small: {grid: {model.width: [4]}, overrides: [data.val_size=500], "
                 "seeds: [3]}\n")
    sweep = load_sweep(path, variant="small")
    assert sweep.name == "mysweep_small" and len(sweep.runs) == 2 * 1 * 2 * 1
    assert all(r.cfg.data.val_size == 500 and r.cfg.data.train_subset == 1000 and r.cfg.seed == 3
               for r in sweep.runs)
    assert all(r.cfg.optim.lr == 0.1 for r in sweep.runs)  # the file's optim.lr axis was replaced away


def test_zipped_lists_may_repeat_a_value_that_another_list_tells_apart(tmp_path):
    path = write(tmp_path, f"# k-specific lr\nbase: {GREEDY}\nzip: {{model.name: [belilovsky_k2, belilovsky_k3], "
                           "model.aux.k: [2, 3], optim.lr: [0.02, 0.02]}\n")
    runs = load_sweep(path).runs
    assert [(r.cfg.model.name, r.cfg.model.aux.k, r.cfg.optim.lr) for r in runs] == [
        ("belilovsky_k2", 2, 0.02), ("belilovsky_k3", 3, 0.02)]
    assert len({r.id for r in runs}) == 2


@pytest.mark.parametrize("text, fragments", [
    ("base: {g}\nfoo: 1\n", ["unknown key 'foo'", "valid keys: name, base, bases, overrides, grid, zip, seeds"]),
    ("base: {g}\ngrid: {{model.width: []}}\n", ["grid.model.width is an empty axis"]),
    ("base: {g}\ngrid: {{model.width: 8}}\n", ["grid.model.width must be a list of values"]),
    ("base: {g}\nzip: {{model.name: [belilovsky_k2, belilovsky_k3], model.aux.k: [1, 2, 3]}}\n",
     ["zipped lists must have equal lengths", "model.name: 2, model.aux.k: 3"]),
    ("base: {g}\ngrid: {{model.name: [belilovsky_k2, nope]}}\n",
     ["run ", "model.name=nope", "model.name='nope' is not a known architecture"]),
    ("base: {g}\ngrid: {{model.name: [vgg11]}}\noverrides: [model.num_blocks=3]\n",  # only the builder knows
     ["model.num_blocks does not apply to vgg11"]),
    ("base: {g}\nzip: {{model.name: [belilovsky_k2, belilovsky_k2], optim.lr: [0.1, 0.1]}}\n",
     ["zip lists a combination twice"]),
    ("base: {g}\ngrid: {{optim.lr: [0.1, 0.1]}}\n", ["grid.optim.lr lists a value twice"]),
    ("base: {g}\ngrid: {{data.train_subset: [lots]}}\n", ["data.train_subset='lots'", "int"]),
    ("base: {g}\ngrid: {{model.width: [8]}}\noverrides: [model.width=16]\n", ["'model.width' is an axis"]),
    ("base: {g}\ngrid: {{seed: [1, 2]}}\n", ["'seed' cannot be set in a sweep", "seeds:"]),
    ("base: {g}\nseeds: []\n", ["seeds must be a non-empty list of integers"]),
    ("base: {g}\nbases: [{g}]\n", ["exactly one of 'base'"]),
    ("bases: [{g}, {g}]\n", ["two runs would share the run directory", "experiment=..."]),
    ("base: {g}\nvariants: {{cpu: {{seed: [1]}}}}\n", ["variants.cpu: unknown key 'seed'"]),
    ("base: {g}\nvariants: {{cpu: {{seeds: []}}}}\n", ["variants.cpu.seeds must be a non-empty list"]),  # unused
    ("base: nowhere.yaml\n", ["base experiment file not found: nowhere.yaml"]),
    ("base: {g}\noverrides: [nonsense]\n", ["must look like key=value"]),
])
def test_bad_sweep_files_fail_before_anything_runs(tmp_path, text, fragments):
    path = write(tmp_path, "# bad\n" + text.format(g=GREEDY))
    with pytest.raises(LwtError) as err:
        load_sweep(path)
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.slow
@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_every_sweep_file_expands_and_validates(path):
    text = path.read_text()
    assert text.startswith("#"), "a sweep file begins with a comment"
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    for fragment in (f"lwt sweep experiments/sweeps/{path.name}", "runtime", "--variant cpu"):
        assert fragment in header, f"{path.name}: header lacks {fragment!r}"
    variants = [None, *(yaml.safe_load(text).get("variants") or {})]
    assert "cpu" in variants
    for variant in variants:
        sweep = load_sweep(path, variant)  # every run's config is validated and its network built (meta)
        assert sweep.runs and len({r.id for r in sweep.runs}) == len(sweep.runs)
        assert all(r.cfg.sweep == sweep.name for r in sweep.runs)


@pytest.mark.slow
def test_export_wandb_grid_selects_each_run_once(tmp_path):
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args  # what `wandb agent` calls

    path = write(tmp_path, SWEEP)
    out = tmp_path / "runs"
    assert main(["sweep", str(path), f"logging.out_dir={out}", "--export", "wandb"]) == 0
    config = yaml.safe_load((out / "sweeps" / "mysweep" / "wandb_sweep.yaml").read_text())
    assert config["method"] == "grid" and config["metric"]["name"] == "final_test_acc"
    params = config["parameters"]
    assert {k: len(v["values"]) for k, v in params.items()} == {
        "experiment": 2, "model.width": 2, "optim.lr": 2, "model.name+model.aux.k": 2, "seed": 2}
    command = config["command"]
    assert command[-2:] == ["--select", "${args_no_hyphens}"] and "logging.wandb=online" in command
    sweep = load_sweep(path, overrides=[f"logging.out_dir={out}"])
    chosen = []
    for values in itertools.product(*(p["values"] for p in params.values())):
        args = create_sweep_command_args({"args": {k: {"value": v} for k, v in zip(params, values)}})
        (r,) = select(sweep.runs, sweep, args["args_no_hyphens"])  # exactly one run per grid point
        chosen.append(r.id)
    assert sorted(chosen) == sorted(r.id for r in sweep.runs)
    # the agent's command line parses and selects its run: `lwt sweep FILE ... --select <args>`
    assert command[:3] == ["${env}", "lwt", "sweep"]
    assert main([*command[2:-1], *args["args_no_hyphens"], "--dry-run"]) == 0


def test_sweep_runs_are_grouped_by_sweep_in_wandb(tmp_path):
    from lightning.pytorch.loggers import WandbLogger

    from lwt.training.loggers import family, make_loggers

    sweep = load_sweep(write(tmp_path, SWEEP), overrides=[f"logging.out_dir={tmp_path}"])
    r = sweep.runs[0]
    r.run_dir.mkdir(parents=True)
    (wandb,) = [lg for lg in make_loggers(r.cfg, r.run_dir) if isinstance(lg, WandbLogger)]
    init = wandb._wandb_init  # the group: the sweep, then the comparison within it (docs/wandb.md)
    assert init["group"] == f"mysweep/{r.cfg.data.name}/{family(r.cfg.experiment)}/seed{r.cfg.seed}"
    assert init["name"] == r.id and "sweep:mysweep" in init["tags"]


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the sweep exited ({proc.returncode}) before {path} appeared")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)


@pytest.mark.slow
def test_interrupted_sweep_resumes_without_redoing_finished_runs(tiny, tmp_path, capsys):
    path = write(tmp_path, f"""# a real tiny sweep: greedy and E2E x 2 widths x 2 seeds, 1 epoch each
bases: [{GREEDY}, {{file: {E2E}, overrides: [trainer.max_epochs=1]}}]
overrides: [curriculum.max_stages=1, curriculum.epochs_per_stage=1]
grid: {{model.width: [4, 8]}}
seeds: [0, 1]
""", "tiny.yaml")
    args = ["sweep", str(path), *tiny]
    sweep = load_sweep(path, overrides=tiny)
    first, second = sweep.runs[0], sweep.runs[1]
    log = open(tmp_path / "sweep.log", "w")
    # one run at a time, in the sweep's process (--workers auto would start two at once on a CPU machine)
    proc = subprocess.Popen([sys.executable, "-m", "lwt", *args, "--workers", "1"], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(first.run_dir / "result.json", proc)
        _wait_for(second.run_dir / "config.yaml", proc)  # the second run has started
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    assert [r.status() for r in sweep.runs] == ["done", "partial"] + ["todo"] * 6
    kept = (first.run_dir / "result.json").read_bytes(), (first.run_dir / "result.json").stat().st_mtime_ns

    assert main([*args, "--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert "8 runs" in listing and " done " in listing and " partial " in listing

    # the same sweep with other overrides must not pass the finished run off as its own
    assert main([*args, "data.train_subset=256"]) == 2
    assert "holds a finished run trained with another config (data.train_subset" in capsys.readouterr().err

    assert main([*args, "--workers", "2"]) == 0  # the rest, in `python -m lwt train` subprocesses
    out = capsys.readouterr().out
    assert "1 finished (skipped), 7 to train" in out and "8/8 done" in out
    assert all(r.status() == "done" for r in sweep.runs)
    result = first.run_dir / "result.json"
    assert (result.read_bytes(), result.stat().st_mtime_ns) == kept  # not retrained, not rewritten
    meta = json.loads((second.run_dir / "meta.json").read_text())
    assert len(meta.get("resumes", [])) == 1  # the killed run was continued (lwt train --resume)
    assert main(args) == 0 and "8 finished (skipped), 0 to train" in capsys.readouterr().out

    # lwt results: one row per run, then mean, SD, n and 95 % interval over the two seeds of each group
    table = tmp_path / "results" / "tiny.csv"
    assert main(["results", str(tmp_path / "runs"), "--sweep", "tiny", "--out", str(table)]) == 0
    markdown = capsys.readouterr().out
    rows = list(csv.DictReader(table.open()))
    results = {r.id: json.loads((r.run_dir / "result.json").read_text()) for r in sweep.runs}
    widths = {r.id: r.cfg.model.width for r in sweep.runs}
    assert len(rows) == 8
    for row in rows:
        run_id = f"{row['experiment']}/{row['run_name']}"
        res = results[run_id]
        assert (row["mode"], row["model"], row["dataset"]) == (res["mode"], "belilovsky_k2", "cifar10")
        assert row["experiment"] == f"belilovsky_k2_{res['mode']}"
        assert row["model.width"] == str(widths[run_id])  # the one config key that varies
        assert float(row["final_test_acc"]) == res["final_test_acc"]
        assert float(row["test_acc_stage1"]) == res["stages"][0]["test_acc"]
        assert float(row["best_val_acc"]) == max(s["val_acc"] for s in res["stages"])
        assert row["git_revision"] == res["git_revision"] and row["seed"] in ("0", "1")
    assert "train_subset" not in rows[0]  # the same for every run: not a column
    groups = list(csv.DictReader((tmp_path / "results" / "tiny_mean.csv").open()))
    assert [(g["experiment"], g["model.width"], g["n"], g["seeds"]) for g in groups] == [
        (f"belilovsky_k2_{m}", w, "2", "0 1") for m in ("e2e", "greedy") for w in ("4", "8")]
    t1 = 12.706205  # t_{0.975} with 1 degree of freedom: two seeds
    for g in groups:
        accs = [results[i]["final_test_acc"] for i, w in widths.items()
                if str(w) == g["model.width"] and i.startswith(g["experiment"] + "/")]
        mean, sd = statistics.mean(accs), statistics.stdev(accs)
        assert float(g["final_test_acc_mean"]) == pytest.approx(mean, abs=1e-6)
        assert float(g["final_test_acc_std"]) == pytest.approx(sd, abs=1e-6)
        assert g["final_test_acc_n"] == "2"
        half = t1 * sd / math.sqrt(2)
        assert float(g["final_test_acc_ci95_lo"]) == pytest.approx(mean - half, abs=1e-5)
        assert float(g["final_test_acc_ci95_hi"]) == pytest.approx(mean + half, abs=1e-5)
        assert f"{100 * mean:.2f} ± {100 * half:.2f}" in markdown
        assert "critical_layer_mean" not in g  # depths are listed per seed, never averaged

    # the paired table: E2E - greedy of the same width, seed by seed, from the runs' own result.json
    pairs = list(csv.DictReader((tmp_path / "results" / "tiny_paired.csv").open()))
    assert {(p["model.width"], p["metric"]) for p in pairs if p["metric"] == "final_test_acc"} == {
        ("4", "final_test_acc"), ("8", "final_test_acc")}
    for p in pairs:  # final_test_acc; selected_test_acc too where the runs record it
        diffs = [results[f"belilovsky_k2_e2e/width-{p['model.width']}_seed{s}"][p["metric"]]
                 - results[f"belilovsky_k2_greedy/width-{p['model.width']}_seed{s}"][p["metric"]] for s in (0, 1)]
        mean, half = statistics.mean(diffs), t1 * statistics.stdev(diffs) / math.sqrt(2)
        assert (p["n_pairs"], p["seeds"], p["greedy_experiment"], p["e2e_experiment"]) == (
            "2", "0 1", "belilovsky_k2_greedy", "belilovsky_k2_e2e")
        assert float(p["diff_mean"]) == pytest.approx(mean, abs=1e-6)
        assert float(p["diff_ci95_lo"]) == pytest.approx(mean - half, abs=1e-5)
        assert float(p["diff_ci95_hi"]) == pytest.approx(mean + half, abs=1e-5)
        assert f"{100 * mean:.2f} ± {100 * half:.2f}" in markdown

    # the archive beside the tables rebuilds them when the run folders are gone (another machine) ...
    archive = tmp_path / "results" / "tiny_runs.jsonl"
    assert len(archive.read_text().splitlines()) == 8
    tables = [table, tmp_path / "results" / "tiny_mean.csv", tmp_path / "results" / "tiny_paired.csv"]
    before = [t.read_bytes() for t in tables]
    moved = tmp_path / "elsewhere"
    (tmp_path / "runs").rename(moved)
    (tmp_path / "runs").mkdir()
    assert main(["results", str(tmp_path / "runs"), "--sweep", "tiny", "--out", str(table), "--update"]) == 0
    assert "0 runs found" in capsys.readouterr().out
    assert [t.read_bytes() for t in tables] == before
    # ... and the sweep run again skips the runs its archive holds instead of training them anew
    assert main([*args, "--archive", str(archive), "--dry-run"]) == 0
    assert capsys.readouterr().out.count(" archived ") == 8
    assert main([*args, "--archive", "none", "--dry-run"]) == 0  # none: the archive is not read, all to train
    assert capsys.readouterr().out.count(" todo ") == 8
    assert main([*args, "--archive", str(archive)]) == 0
    assert "8 finished (skipped; 8 of them in the run archive), 0 to train" in capsys.readouterr().out
    assert not any((tmp_path / "runs").iterdir())
    # (an archived run trained with another config is refused like a finished folder)
    assert main([*args, "--archive", str(archive), "data.train_subset=256"]) == 2
    assert "the run archive's line for belilovsky_k2_greedy/width-4_seed0 holds a finished run trained with " \
           "another config (data.train_subset" in capsys.readouterr().err
    # ... and a rerun found on disk replaces the archived run of the same name, the others stay
    rerun = tmp_path / "runs" / "rerun"
    shutil.copytree(moved / first.run_dir.relative_to(tmp_path / "runs"), rerun)
    result = json.loads((rerun / "result.json").read_text())
    result["final_test_acc"] = 0.875
    (rerun / "result.json").write_text(json.dumps(result))
    assert main(["results", str(tmp_path / "runs"), "--sweep", "tiny", "--out", str(table), "--update"]) == 0
    assert "1 runs found" in capsys.readouterr().out
    updated = {(r["experiment"], r["run_name"]): r for r in csv.DictReader(table.open())}
    assert len(updated) == 8
    for row in rows:
        key = (row["experiment"], row["run_name"])
        new = "0.875" if f"{key[0]}/{key[1]}" == first.id else row["final_test_acc"]
        assert updated[key]["final_test_acc"] == new
    # without --update the tables hold only the runs found; --update without an archive says so
    assert main(["results", str(tmp_path / "runs"), "--sweep", "tiny", "--out", str(table)]) == 0
    assert len(list(csv.DictReader(table.open()))) == 1
    assert main(["results", str(moved), "--sweep", "tiny", "--out", str(tmp_path / "other.csv"), "--update"]) == 2
    assert "--update: no archive" in capsys.readouterr().err


def test_a_worker_log_goes_to_the_sweep_folder_never_into_a_run_folder(tmp_path, monkeypatch, capsys):
    """A --workers subprocess writes its output under the sweep's own logs/ folder, not into the run folder
    (another process may own it), and a failure names that log."""
    from lwt.sweep import runner

    path = tmp_path / "w.yaml"
    path.write_text(f"base: {GREEDY}\nseeds: [0, 1]\n")
    sweep = load_sweep(path, overrides=[f"logging.out_dir={tmp_path / 'runs'}"])

    def child(argv, stdout, **kw):  # the child fails before it has taken the run's lock
        stdout.write("child output\n")
        return subprocess.CompletedProcess(argv, 3)

    monkeypatch.setattr(runner.subprocess, "run", child)
    logs = []
    for r in sweep.runs:
        assert runner._train_subprocess(r, dict(os.environ)) is False
        assert not r.run_dir.exists()  # nothing was written into (or created as) the run folder
        log = runner.worker_log(r)
        assert log.parent == sweep.out_dir / "logs" and log.read_text() == "child output\n"
        assert f"lwt: {r.id} exited with status 3; see {log}" in capsys.readouterr().err
        logs.append(log)
    assert len(set(logs)) == 2


def test_workers_auto_is_one_single_thread_worker_per_core_without_a_gpu(capsys):
    """--workers auto (the default): the measured CPU winner (docs/scaling.md), never more workers than runs."""
    import torch

    from lwt.sweep import parse_workers
    from lwt.sweep.runner import auto_workers

    assert parse_workers("auto") is None and parse_workers("3") == 3
    assert auto_workers(1) == 1
    if torch.cuda.is_available():
        assert auto_workers(64) == 1
    else:  # one per core, unless memory (4 GiB a worker) allows fewer
        from lwt.training.prefix import GB, available_bytes

        n = auto_workers(64)
        assert 1 <= n <= os.cpu_count()
        assert n == os.cpu_count() or available_bytes(torch.device("cpu")) < 4 * GB * (n + 1)
    assert main(["sweep", str(ROOT / "experiments" / "sweeps" / "gap.yaml"), "--workers", "0"]) == 2
    assert "--workers 0: give a count of at least 1, or auto" in capsys.readouterr().err


def test_cpu_sweeps_default_to_channels_last_without_renaming_or_clashing():
    """The measured CPU winner (docs/scaling.md): runs that do not set trainer.channels_last get it, their
    folders keep their names, and the key is a "how" key (a finished run made without it is the same run)."""
    from lwt.config import is_identity
    from lwt.sweep.runner import cpu_defaults

    runs = load_sweep(ROOT / "experiments" / "sweeps" / "gap.yaml", variant="cpu").runs
    folders = [r.run_dir for r in runs]
    runs[0].overrides.append("trainer.channels_last=false")  # a run that says otherwise keeps its choice
    assert cpu_defaults(runs) == ["trainer.channels_last=true"]
    assert [r.run_dir for r in runs] == folders
    assert not runs[0].cfg.trainer.channels_last
    assert load_config(runs[0].base.path, runs[0].overrides).trainer.channels_last is False
    for r in runs[1:]:
        assert r.cfg.trainer.channels_last and load_config(r.base.path, r.overrides).trainer.channels_last
    assert not is_identity("trainer.channels_last")


def test_select_with_a_key_given_twice_matches_either_value(tmp_path):
    sweep = load_sweep(write(tmp_path, SWEEP), overrides=[f"logging.out_dir={tmp_path / 'runs'}"])
    both = select(sweep.runs, sweep, ["optim.lr=0.05", "optim.lr=0.1", "seed=0"])
    assert len(both) == len(sweep.runs) // 2 and {r.axes["seed"] for r in both} == {0}
    one = select(sweep.runs, sweep, ["model.name+model.aux.k=[belilovsky_k3, 3]", "model.width=8", "seed=1"])
    assert len(one) == 2 * 2 and all(r.axes["model.aux.k"] == 3 and r.axes["model.width"] == 8 for r in one)
    pair = select(sweep.runs, sweep, ["model.name+model.aux.k=[belilovsky_k3, 3]",
                                      "model.name+model.aux.k=[belilovsky_k2, 2]"])
    assert len(pair) == len(sweep.runs)
    for bad, message in ((["optim.lr=0.3"], "matches no run"), (["depth=3"], "not an axis"),
                         (["model.name+model.aux.k=belilovsky_k3"], "give a list of 2 values")):
        with pytest.raises(LwtError, match=message):
            select(sweep.runs, sweep, bad)
