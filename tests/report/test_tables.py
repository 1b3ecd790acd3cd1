"""`lwt results` over real tiny runs: provenance and FLOPs columns, runs of different precision never pooled
without being told, and the per-image predictions archived beside NAME_runs.jsonl (readable once the run
folders are gone)."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from lwt.cli import main
from lwt.config import load_config
from lwt.errors import LwtError
from lwt.report.tables import check_precision
from lwt.run.per_image import read_archive, read_per_image, to_bytes
from lwt.training.train import run

from conftest import GREEDY, lwt_error

ONE_STAGE = ["model.width=16", "curriculum.max_stages=1", "curriculum.epochs_per_stage=1", "analysis.per_layer=false",
             "data.train_subset=256", "data.val_size=128", "data.test_subset=200", "logging.wandb=disabled",
             "trainer.progress_bar=false"]


@pytest.fixture(scope="module")
def runs(data_root, tmp_path_factory):
    """Two seeds of one config (trainer.precision=auto), trained as auto resolves on a CPU without native bf16
    (fp32) and on one with AVX512-BF16 (bf16 autocast): as if they had run on two machines."""
    out = tmp_path_factory.mktemp("runs")
    base = [f"data.root={data_root}", f"logging.out_dir={out}", *ONE_STAGE]
    with pytest.MonkeyPatch.context() as mp:
        for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
            mp.setattr(torch.cpu, name, lambda: False, raising=False)
        first = run(load_config(GREEDY, base + ["seed=0"]))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
        second = run(load_config(GREEDY, base + ["seed=1"]))
    assert (first.precision, second.precision) == ("32-true", "bf16-mixed")
    return out, [first, second]




@pytest.mark.slow
def test_runs_of_different_precision_are_pooled_only_when_allowed(runs, tmp_path, capsys):
    out, results = runs
    table = tmp_path / "results" / "mixed.csv"
    line = lwt_error(capsys, ["results", str(out), "--out", str(table)])
    assert "the cell experiment=belilovsky_k2_greedy mode=greedy model=belilovsky_k2 dataset=cifar10" in line
    assert "32-true (greedy seed 0); bf16-mixed (greedy seed 1)" in line and "--allow-mixed-precision" in line
    assert not table.parent.exists()  # nothing written

    assert main(["results", str(out), "--out", str(table), "--allow-mixed-precision"]) == 0
    rows = list(csv.DictReader(table.open()))
    assert [r["precision"] for r in rows] == ["32-true", "bf16-mixed"]
    assert all(r["device"].startswith("cpu: ") and r["cpu_isa"] and r["torch_version"] and r["threads"] for r in rows)
    assert [int(r["train_flops"]) for r in rows] == [res.train_flops for res in results]
    (mean,) = list(csv.DictReader((tmp_path / "results" / "mixed_mean.csv").open()))
    assert float(mean["train_flops_mean"]) == np.mean([res.train_flops for res in results])


@pytest.mark.slow
def test_runs_group_by_the_precision_they_computed_in_not_the_one_they_asked_for(data_root, tmp_path):
    """trainer.precision=auto that resolved to fp32 and an explicit 32-true computed the same thing: one cell."""
    out = tmp_path / "runs"
    base = [f"data.root={data_root}", f"logging.out_dir={out}", *ONE_STAGE]
    with pytest.MonkeyPatch.context() as mp:
        for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
            mp.setattr(torch.cpu, name, lambda: False, raising=False)
        run(load_config(GREEDY, base + ["seed=0"]))
    run(load_config(GREEDY, base + ["seed=1", "trainer.precision=32-true"]))
    table = tmp_path / "results" / "asked.csv"
    assert main(["results", str(out), "--out", str(table)]) == 0
    rows = list(csv.DictReader(table.open()))
    assert [r["precision"] for r in rows] == ["32-true", "32-true"] and "trainer.precision" not in rows[0]
    (mean,) = list(csv.DictReader((tmp_path / "results" / "asked_mean.csv").open()))
    assert mean["n"] == "2"


@pytest.mark.slow
def test_per_image_predictions_are_archived_and_outlive_the_run_folders(runs, tmp_path, capsys):
    out, results = runs
    runs_copy = tmp_path / "runs"
    shutil.copytree(out, runs_copy)
    table = tmp_path / "results" / "tiny.csv"
    assert main(["results", str(runs_copy), "--out", str(table), "--allow-mixed-precision"]) == 0
    archive = tmp_path / "results" / "tiny_runs.jsonl"
    lines = [json.loads(line) for line in archive.read_text().splitlines()]
    assert all(line["per_image"].startswith("tiny_per_image/") for line in lines)
    files = sorted((tmp_path / "results" / "tiny_per_image").iterdir())
    assert len(files) == 2 and all(f.stat().st_size < 10_000 for f in files)  # 128 + 200 images, one depth
    by_key = read_archive(archive)
    for res in results:
        kept = by_key[(res.sweep, res.experiment, res.run_name)]
        assert to_bytes(kept) == to_bytes(read_per_image(res.run_dir))

    tables = {p.name: p.read_bytes() for p in table.parent.glob("*.csv")}
    shutil.rmtree(runs_copy)  # the run folders are gone: the archive alone rebuilds tables and keeps the files
    (tmp_path / "empty").mkdir()
    capsys.readouterr()
    assert main(["results", str(tmp_path / "empty"), "--out", str(table), "--update", "--allow-mixed-precision"]) == 0
    assert {p.name: p.read_bytes() for p in table.parent.glob("*.csv")} == tables
    assert sorted((tmp_path / "results" / "tiny_per_image").iterdir()) == files
    assert all(v is not None for v in read_archive(archive).values())


def test_a_paired_difference_across_precisions_is_refused():
    """A greedy group in one precision against an E2E group in another (the mean cells are each uniform)."""
    def row(mode, seed, precision):
        return {"experiment": f"x_{mode}", "mode": mode, "model": "m", "dataset": "d", "seed": seed,
                "_precision": precision}

    columns = ["experiment", "mode", "model", "dataset", "seed"]
    greedy, e2e = [row("greedy", 0, "bf16-mixed")], [row("e2e", 0, "unknown")]
    pair = {"_groups": (greedy, e2e), "e2e_experiment": "x_e2e", "greedy_experiment": "x_greedy",
            "metric": "final_test_acc", "model": "m", "dataset": "d"}
    check_precision(columns, greedy + e2e, [])
    with pytest.raises(LwtError, match="the paired difference x_e2e - x_greedy .* bf16-mixed .* unknown"):
        check_precision(columns, greedy + e2e, [pair])
