"""`lwt wandb` refuses bad input with one error line and writes nothing; the W&B group rule puts greedy, E2E and DGL
of one experiment family, dataset and seed together (the runs themselves: tests/integration/test_wandb_dashboard.py)."""

from __future__ import annotations

import json

import pytest

from lwt.config import load_config
from lwt.training.loggers import family, identity

from conftest import EXPERIMENTS, lwt_error


def test_group_is_the_config_without_its_mode():
    assert family("s2d_cnn_greedy") == family("s2d_cnn_e2e") == family("s2d_cnn_dgl") == "s2d_cnn"
    greedy = identity(load_config(EXPERIMENTS / "cifar10" / "resnet20_greedy.yaml", ["seed=1"]))
    e2e = identity(load_config(EXPERIMENTS / "cifar10" / "resnet20_e2e.yaml", ["seed=1"]))
    other_seed = identity(load_config(EXPERIMENTS / "cifar10" / "resnet20_e2e.yaml", ["seed=2"]))
    tiny = identity(load_config(EXPERIMENTS / "tiny_imagenet" / "belilovsky_k2_greedy.yaml"))
    assert greedy["group"] == e2e["group"] == "cifar10/resnet20/seed1" != other_seed["group"]
    assert tiny["group"].startswith("imagefolder/belilovsky_k2/") and tiny["notes"]  # its own file's comment
    first = (EXPERIMENTS / "cifar10" / "resnet20_e2e.yaml").read_text().splitlines()[0].lstrip("# ")
    assert greedy["job_type"] == "train" and e2e["notes"] == first
    tune = identity(load_config(EXPERIMENTS / "cifar10" / "resnet20_e2e.yaml", ["sweep=tune_x"]))
    assert tune["job_type"] == "tune" and tune["group"].startswith("tune_x/") and "sweep:tune_x" in tune["tags"]
    own = identity(load_config(EXPERIMENTS / "cifar10" / "resnet20_e2e.yaml", ["logging.notes=my purpose"]))
    assert own["notes"] == "my purpose"


def test_export_refuses_a_folder_without_finished_runs_and_writes_nothing(capsys, tmp_path):
    assert "is not a folder" in lwt_error(capsys, ["wandb", "export", tmp_path / "nope"])
    assert "no finished run under" in lwt_error(capsys, ["wandb", "export", tmp_path])
    bad = tmp_path / "exp" / "seed0"
    bad.mkdir(parents=True)
    (bad / "config.yaml").write_text("mode: greedy\nmodel: {name: belilovsky_k2}\n")
    (bad / "result.json").write_text("{not json")
    line = lwt_error(capsys, ["wandb", "export", tmp_path])
    assert str(bad) in line and "result.json" in line
    assert not (tmp_path / "wandb_export").exists()


@pytest.mark.slow
def test_artifact_refuses_a_folder_that_is_not_an_offline_run(capsys, tmp_path):
    assert "wandb cannot read" in lwt_error(capsys, ["wandb", "artifact", tmp_path, "--out", tmp_path / "m"])
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_a_results_table_exports_as_a_dataset_artifact(tmp_path):
    import shutil

    from lwt.cli import main
    from lwt.report.wandb_runs import records

    results = EXPERIMENTS.parent / "results"
    for name in ("gap_cpu.csv", "gap_cpu_mean.csv", "gap_cpu_paired.csv", "gap_cpu_runs.jsonl"):
        shutil.copy(results / name, tmp_path / name)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("WANDB_MODE", raising=False)
        assert main(["wandb", "export", str(tmp_path / "gap_cpu.csv"), "--out", str(tmp_path / "out")]) == 0
    (folder,) = (tmp_path / "out" / "wandb").glob("offline-run-*")
    found = records(folder)
    (run,) = [r["run"] for r in found if r["type"] == "run"]
    assert run["job_type"] == "results" and run["display_name"] == "results/gap_cpu"
    (artifact,) = [r["artifact"] for r in found if r["type"] == "artifact" and r["artifact"]["type"] == "dataset"]
    assert artifact["name"] == "results-gap_cpu" and {c["path"] for c in artifact["manifest"]["contents"]} == {
        "gap_cpu.csv", "gap_cpu_mean.csv", "gap_cpu_paired.csv", "gap_cpu_runs.jsonl"}
    rows = (results / "gap_cpu.csv").read_text().splitlines()
    assert artifact["metadata"] and json.loads(artifact["metadata"])["runs"] == len(rows) - 1
