"""W&B works offline by default: one offline run per lwt run, in the run directory, with flat config, one
curriculum-wide x-axis, the x-axes declared for per-stage and per-depth plots, the learning rate, and the
accuracy-vs-depth series, tables and figure; read back with wandb's own reader."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lwt.analysis.pipeline import run
from lwt.config import load_config
from lwt.training.loggers import read_metrics

from conftest import EXPERIMENTS

WANDB = [sys.executable, "-m", "wandb"]


def wandb_records(path: Path) -> list[dict]:
    """The records of an offline run's ``.wandb`` file (what `wandb sync` uploads), read by wandb's own reader:
    ``wandb leet inspect --json``, one JSON object per record (``{"num", "type", <type>: {...}}``)."""
    out = subprocess.run([*WANDB, "leet", "inspect", "--json", str(path)], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def finished_records(log: Path, timeout: float = 60) -> list[dict]:
    """The records once the run's final ``exit`` record is in the file. wandb-core buffers the file and may
    write it out just after ``run.finish()`` has returned (a small run: all of it), so wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        records = wandb_records(log)
        if any(r["type"] == "exit" for r in records):
            return records
        assert time.monotonic() < deadline, f"{log} has no exit record {timeout} s after the run finished"
        time.sleep(0.2)


def history_rows(records: list[dict]) -> list[dict]:
    return [r["history"]["item"] for r in records if r["type"] == "history"]


def axes(records: list[dict]) -> dict:
    """metric (or glob) -> its x-axis, the last definition winning (as in wandb-core)."""
    return {m.get("name") or m["glob_name"]: m.get("step_metric") for m in (
        r["metric"] for r in records if r["type"] == "metric")}


@pytest.fixture(scope="module")
def offline_run(data_root, tmp_path_factory):
    """One tiny real greedy run (2 stages of 1 epoch on a few hundred CIFAR-10 images, then 1 epoch of
    fine-tuning), W&B left at its default, shared by this file's tests. The overrides are the ``tiny``
    fixture's (function-scoped) minus logging.wandb."""
    out = tmp_path_factory.mktemp("wandb") / "runs"
    cfg = load_config(EXPERIMENTS / "cifar10" / "belilovsky_k2_greedy.yaml", [
        f"data.root={data_root}", "data.train_subset=512", "data.val_size=256", "data.test_subset=500",
        "trainer.progress_bar=false", f"logging.out_dir={out}", "trainer.log_every_n_steps=1",
        "curriculum.max_stages=2", "curriculum.epochs_per_stage=1", "model.width=16", "finetune.epochs=1",
    ])
    assert cfg.logging.wandb == "offline"  # the default, no account needed
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("WANDB_MODE", raising=False)
        result = run(cfg)
    runs = list((Path(result.run_dir) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    (log,) = runs[0].glob("*.wandb")  # the offline run's event log, which `wandb sync` uploads
    return result, log, finished_records(log)


@pytest.mark.slow
def test_offline_wandb_run_is_written_into_the_run_directory(offline_run):
    _, _, records = offline_run
    (run_record,) = [r["run"] for r in records if r["type"] == "run"]
    config = run_record["config"]["update"]
    # flat config keys, so the UI can filter/group on any of them
    assert config["data.train_subset"] == 512 and config["model.name"] == "belilovsky_k2"
    assert config["mode"] == "greedy" and run_record["job_type"] == "train"  # mode is a tag and a config key
    assert "mode:greedy" in run_record["tags"] and run_record["run_group"] == "cifar10/belilovsky_k2/seed0"


@pytest.mark.slow
def test_history_has_one_continuous_axis_across_stages_and_finetuning_with_stage_on_every_row(offline_run):
    result, _, records = offline_run
    # every row Lightning logged during training and testing (not the tables and figure logged at the end)
    rows = [r for r in history_rows(records) if any(k.startswith(("train/", "val/", "test/", "lr-")) for k in r)]
    x = axes(records)  # every metric is plotted against the curriculum-wide step (test/acc: against stage)
    plotted = {k for r in rows for k in r if not k.startswith(("_", "test/", "trainer/", "global_step", "stage"))}
    assert {k: x.get(k) for k in plotted} == {k: "global_step" for k in plotted}
    assert rows and all("global_step" in r and "global_epoch" in r for r in rows)
    for key in ("global_step", "global_epoch"):  # never go back, across both stages and the fine-tuning
        values = [r[key] for r in rows]
        assert values == sorted(values), key
    stages = result.stages
    steps = [s.steps for s in stages]
    assert all(steps)
    tuned = [r for r in rows if "stage" not in r]  # the fine-tuning: after the greedy stages, without a stage
    greedy = [r for r in rows if "stage" in r]
    assert tuned and len(tuned) + len(greedy) == len(rows) and rows[-len(tuned):] == tuned
    assert [r["stage"] for r in greedy] == sorted(r["stage"] for r in greedy) and {r["stage"] for r in greedy} == {1, 2}
    for r in greedy:  # the per-stage step is kept; global = the earlier stages' steps + it
        assert r["global_step"] == sum(steps[:r["stage"] - 1]) + r["trainer/global_step"]
    assert min(r["global_step"] for r in tuned) == sum(steps)
    assert {r["global_epoch"] for r in tuned if "train/acc" in r} == {sum(s.epochs for s in stages)}
    assert min(r["trainer/global_step"] for r in greedy if r["stage"] == 2) == 0  # Lightning's restarts
    keys = {k for r in history_rows(records) for k in r}
    assert not keys & {"stage_step", "stage_epoch"}  # `stage` is one column, not Lightning's _step/_epoch pair
    # the learning rate of the optimizer, every step: each stage starts at optim.lr and steps it down
    lrs = [(r["stage"], r["lr-SGD"]) for r in greedy if "lr-SGD" in r]
    assert [lr for s, lr in lrs if s == 1][0] == pytest.approx(0.1) and [lr for s, lr in lrs if s == 2][0] == 0.1
    assert len(lrs) == sum(steps) and any("lr-SGD" in r for r in tuned)
    header = {k for row in read_metrics(result.run_dir) for k in row}  # lwt's own log has the same columns
    assert {"global_step", "global_epoch", "stage", "lr-SGD"} <= header


def test_offline_run_holds_the_stage_and_depth_axes_the_depth_curve_and_the_end_of_run_media(offline_run):
    result, _, records = offline_run
    assert records[0]["type"] == "header"
    x = axes(records)
    assert {"stage", "depth"} <= x.keys()
    assert x["test/acc"] == x["test/loss"] == "stage"
    assert x["depth/test_acc"] == x["depth/val_acc"] == x["depth/train_acc"] == "depth"
    rows = history_rows(records)
    stages = result.stages
    assert result.depths == [1, 2]
    # each greedy stage's test row carries its stage (the x value of test/acc); the fine-tuned one has none
    assert [(r.get("stage"), r["test/acc"]) for r in rows if "test/acc" in r] == [
        *((s.depth, pytest.approx(s.test_acc)) for s in stages), (None, pytest.approx(result.final_test_acc))]
    # the end-of-run depth series: one row per depth, equal to result.json's stages
    assert [(r["depth"], r["depth/test_acc"], r["depth/val_acc"], r["depth/train_acc"]) for r in rows
            if "depth" in r] == [(s.depth, pytest.approx(s.test_acc), pytest.approx(s.val_acc),
                                  pytest.approx(s.train_acc)) for s in stages]
    # the tables and the depth figure reach the run's page
    logged = {k.split(".")[0]: r[k] for r in rows for k in r if k.endswith("._type")}
    assert logged == {"per_layer": "table-file", "stages": "table-file", "figures/depth_accuracy": "image-file"}
    assert (Path(result.run_dir) / "depth_accuracy.png").is_file()
    (summary,) = [r["summary"]["update"] for r in records if r["type"] == "summary" and
                  "final_test_acc" in r["summary"].get("update", {})]
    assert summary["final_test_acc"] == pytest.approx(result.final_test_acc)


SYNC = Path(__file__).resolve().parents[2] / "scripts" / "sync_wandb.sh"


def test_sync_script_uploads_every_offline_run_in_one_wandb_sync_call(tmp_path):
    runs = tmp_path / "runs"
    found = [runs / "exp" / "seed0" / "wandb" / "offline-run-20260101_000000-abcd1234",
             runs / "sweeps" / "gap" / "exp" / "seed1" / "wandb" / "offline-run-20260101_000001-efgh5678"]
    for d in found:
        d.mkdir(parents=True)
    (runs / "exp" / "seed0" / "wandb" / "run-20260101_000000-online").mkdir()  # an online run: not offline-run-*
    bin_dir = tmp_path / "bin"  # a stand-in `wandb` that prints the arguments it was given
    bin_dir.mkdir()
    (bin_dir / "wandb").write_text('#!/bin/sh\nfor a in "$@"; do echo "arg $a"; done\n')
    (bin_dir / "wandb").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    def sync(*args: str, path: str = env["PATH"]) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SYNC), *args], capture_output=True, text=True, env={**env, "PATH": path})

    out = sync(str(runs), "--", "--project", "lwt")
    assert out.returncode == 0, out.stderr
    assert "2 offline W&B run(s)" in out.stdout
    args = [line[4:] for line in out.stdout.splitlines() if line.startswith("arg ")]
    assert args[:3] == ["sync", "--project", "lwt"] and sorted(args[3:]) == sorted(map(str, found))
    dry = sync("--dry-run", str(runs))  # lists, calls nothing
    assert dry.returncode == 0 and "arg " not in dry.stdout and sorted(dry.stdout.splitlines()[1:]) == sorted(
        map(str, found))
    no_wandb = sync(str(runs), path="/nonexistent:/usr/bin:/bin")
    assert no_wandb.returncode == 1 and "'wandb' is not on PATH" in no_wandb.stderr
    empty = sync(str(tmp_path / "bin"))
    assert empty.returncode == 1 and "no offline W&B runs" in empty.stderr


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_analyses_log_their_tables_and_figures_as_runs_of_their_own_in_the_training_runs_group(offline_run, tmp_path):
    """lwt gap / probe / cka / critical each log a W&B run of their own (job type analysis, the training run's group,
    a new id; never the training run resumed), written into the run folder (nothing outside it), holding its table
    and figure and naming the training run in its config; --wandb disabled, and a run trained without W&B, get
    none."""
    from lwt.cli import main

    result, train_log, train_records = offline_run
    run_dir = Path(result.run_dir)
    run_id = (run_dir / "wandb_id.txt").read_text().strip()
    outside = _files(run_dir.parent.parent) - _files(run_dir)
    before = set((run_dir / "wandb").glob("offline-run-*"))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("WANDB_MODE", raising=False)
        assert main(["gap", str(run_dir), "analysis.train_eval_size=100"]) == 0
        assert main(["probe", str(run_dir), "analysis.probe_epochs=1"]) == 0
        assert main(["cka", str(run_dir), str(run_dir), "analysis.cka_samples=64"]) == 0
        assert main(["critical", str(run_dir)]) == 0
        assert main(["critical", str(run_dir), "--wandb", "disabled"]) == 0
    segments = sorted(set((run_dir / "wandb").glob("offline-run-*")) - before)
    assert len(segments) == 4 and not any(s.name.endswith(f"-{run_id}") for s in segments)
    (trained,) = [r["run"] for r in train_records if r["type"] == "run"]
    logged, ids = {}, set()
    for segment in segments:
        (log,) = segment.glob("*.wandb")
        records = finished_records(log)
        (run_record,) = [r["run"] for r in records if r["type"] == "run"]
        assert run_record["job_type"] == "analysis" and run_record["run_group"] == trained["run_group"]
        assert not run_record.get("resume") and run_record["config"]["update"]["train_run_id"] == run_id
        ids.add(run_record["run_id"])
        for row in history_rows(records):
            logged.update({k.split(".")[0]: v for k, v in row.items() if k.endswith("._type")})
    assert len(ids) == 4 and run_id not in ids  # four runs of their own
    assert logged == {"analysis/gap": "table-file", "figures/gap": "image-file",
                      "analysis/probes": "table-file", "figures/probes": "image-file",
                      "analysis/cka": "table-file", "figures/cka": "image-file",
                      "analysis/critical": "table-file", "figures/critical": "image-file"}
    assert wandb_records(train_log) == train_records  # the training run's own file is untouched
    # the table is the report's rows, as wandb stored it in the segment's files
    (gap_table,) = [p for s in segments for p in s.rglob("gap_*.table.json")]
    table = json.loads(gap_table.read_text())
    gap = json.loads((run_dir / "gap.json").read_text())["rows"]
    assert table["columns"] == list(gap[0]) and [row[1] for row in table["data"]] == [r["depth"] for r in gap]
    assert _files(run_dir.parent.parent) - _files(run_dir) == outside  # nothing written outside the run folder

    # a run trained with logging.wandb=disabled has no W&B run: nothing is made up for it
    plain = tmp_path / "plain"
    shutil.copytree(run_dir, plain, ignore=shutil.ignore_patterns("wandb", "wandb_id.txt", "checkpoints"))
    (plain / "config.yaml").write_text((plain / "config.yaml").read_text().replace("wandb: offline", "wandb: disabled"))
    assert main(["critical", str(plain)]) == 0
    assert not (plain / "wandb").exists() and not (plain / "wandb_id.txt").exists()


@pytest.mark.slow
def test_figures_wandb_run_goes_where_its_help_and_docs_say(tmp_path):
    from lwt.cli import main

    results = Path(__file__).resolve().parents[2] / "results"
    where = tmp_path / "wb"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("WANDB_MODE", raising=False)
        assert main(["figures", "--results", str(results / "gap_cpu.csv"), "--out", str(tmp_path / "figs"),
                     "--only", "2", "--wandb", "offline", "--wandb-dir", str(where), "--quiet"]) == 0
    (log,) = where.glob("wandb/offline-run-*/*.wandb")
    records = finished_records(log)
    (run_record,) = [r["run"] for r in records if r["type"] == "run"]
    assert run_record["job_type"] == "figures"
    keys = {k.split(".")[0] for row in history_rows(records) for k in row if k.endswith("._type")}
    assert keys == {"figures/fig2_gap", "tables/gap_cpu"}
    assert not list((tmp_path / "figs").rglob("wandb"))  # the figures folder holds only the figures
