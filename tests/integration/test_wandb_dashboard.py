"""Runs a W&B dashboard can group, offline: a tiny real greedy + E2E pair of one comparison and an analysis of the
greedy run, each read back with wandb's own reader (``wandb leet inspect --json``): tags, notes, the shared group,
the job types, the summary's best val accuracy (define_metric), the model artifacts (loaded back with
``lwt.load_run``), the lr of every short stage, the analysis as its own run; then ``lwt wandb export`` of the same
folders, and the dashboard spec checked against the keys the runs logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lwt.analysis.pipeline import run
from lwt.config import load_config

from conftest import EXPERIMENTS

WANDB_TESTS = Path(__file__).resolve().parents[1] / "run"


def records_of(folder: Path) -> list[dict]:
    import time

    from lwt.report.wandb_runs import records

    (log,) = folder.glob("*.wandb")
    deadline = time.monotonic() + 60
    while True:  # wandb-core may write the file out just after run.finish() returned
        found = records(log)
        if any(r["type"] == "exit" for r in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def run_record(records: list[dict]) -> dict:
    (record,) = [r["run"] for r in records if r["type"] == "run"]
    return record


def history(records: list[dict]) -> list[dict]:
    return [r["history"]["item"] for r in records if r["type"] == "history"]


def summary(records: list[dict]) -> dict:
    out = {}
    for r in records:
        if r["type"] == "summary":
            out.update(r["summary"].get("update", {}))
    return out


def artifacts(records: list[dict]) -> list[dict]:
    """The model artifacts (wandb also logs each table as an artifact of type run_table)."""
    return [r["artifact"] for r in records if r["type"] == "artifact" and r["artifact"]["type"] == "model"]


def offline_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))


@pytest.fixture(scope="module")
def pair(data_root, tmp_path_factory):
    """Greedy (2 stages of 1 epoch, log_model=all) and E2E (1 epoch, log_model=true) of belilovsky_k2 at 2 blocks on
    a few hundred CIFAR-10 images, in sweep gap_cpu (claim C1's table), W&B offline; then `lwt gap` of the greedy run.
    The stages are 4 steps, shorter than trainer.log_every_n_steps (20, the default)."""
    from lwt.cli import main

    out = tmp_path_factory.mktemp("wbdash") / "runs"
    common = [f"data.root={data_root}", "data.train_subset=512", "data.val_size=256", "data.test_subset=500",
              "trainer.progress_bar=false", f"logging.out_dir={out}", "logging.wandb=offline", "model.width=16",
              "model.num_blocks=2", "sweep=gap_cpu"]
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("WANDB_MODE", raising=False)
        greedy = run(load_config(EXPERIMENTS / "cifar10" / "belilovsky_k2_greedy.yaml", common + [
            "curriculum.epochs_per_stage=1", "logging.log_model=all"]))
        e2e = run(load_config(EXPERIMENTS / "cifar10" / "belilovsky_k2_e2e.yaml", common + [
            "trainer.max_epochs=1", "logging.log_model=true"]))
        g_dir, e_dir = Path(greedy.run_dir), Path(e2e.run_dir)
        (g_train,) = offline_runs(g_dir)
        assert main(["gap", str(g_dir), "analysis.train_eval_size=100"]) == 0
    (analysis,) = set(offline_runs(g_dir)) - {g_train}
    (e_train,) = offline_runs(e_dir)
    return {"out": out, "greedy": (greedy, records_of(g_train), g_train), "e2e": (e2e, records_of(e_train), e_train),
            "analysis": records_of(analysis)}


@pytest.mark.slow
def test_greedy_and_e2e_share_a_group_with_tags_notes_and_job_types_and_the_analysis_is_its_own_run(pair):
    (greedy, g, _), (_, e, _), a = pair["greedy"], pair["e2e"], pair["analysis"]
    rg, re_, ra = run_record(g), run_record(e), run_record(a)
    claims = {"claim:C1", "claim:C1-compute"}  # the claims that read gap_cpu's table
    assert set(rg["tags"]) == {"mode:greedy", "model:belilovsky_k2", "dataset:cifar10", "sweep:gap_cpu", *claims}
    assert set(re_["tags"]) == {"mode:e2e", "model:belilovsky_k2", "dataset:cifar10", "sweep:gap_cpu", *claims}
    first = (EXPERIMENTS / "cifar10" / "belilovsky_k2_greedy.yaml").read_text().splitlines()[0].lstrip("# ")
    assert rg["notes"] == first and re_["notes"] != first and re_["notes"]
    # one comparison: greedy and E2E of one family, dataset and seed; the analysis joins it
    assert rg["run_group"] == re_["run_group"] == ra["run_group"] == "gap_cpu/cifar10/belilovsky_k2/seed0"
    assert (rg["job_type"], re_["job_type"], ra["job_type"]) == ("train", "train", "analysis")
    # the analysis is a run of its own: a new id (never the training run's, resumed), naming it in its config
    g_id = (Path(greedy.run_dir) / "wandb_id.txt").read_text().strip()
    assert rg["run_id"] == g_id and ra["run_id"] != g_id and not ra.get("resume")
    config = ra["config"]["update"]
    assert config["train_run_id"] == g_id and config["train_run_dir"] == str(Path(greedy.run_dir).resolve())
    assert config["model_artifact"] == f"model-{g_id}" and config["analysis.kind"] == "gap"
    assert "analysis:gap" in ra["tags"] and {"analysis/gap", "figures/gap"} <= {
        k.split(".")[0] for row in history(a) for k in row}


@pytest.mark.slow
def test_summary_keeps_the_best_val_accuracy_the_selected_depths_test_accuracy_critical_layer_and_flops(pair):
    for result, records, _ in (pair["greedy"], pair["e2e"]):
        vals = [row["val/acc"] for row in history(records) if "val/acc" in row]
        s = summary(records)
        assert len(vals) >= 1 and s["val/acc"] == {"max": pytest.approx(max(vals))}  # define_metric(summary=max)
        assert s["best_val_acc"] == pytest.approx(max(r.val_acc for r in result.stages))
        assert s["selected_test_acc"] == pytest.approx(result.selected_test_acc)
        assert s["train_flops"] == result.train_flops > 0 and "critical_layer" in s
    metric = {r["metric"]["name"]: r["metric"] for r in pair["greedy"][1] if r["type"] == "metric"
              and "name" in r["metric"]}
    assert metric["val/acc"]["summary"] == {"max": True} and metric["val/acc"]["step_metric"] == "global_step"


@pytest.mark.slow
def test_every_short_stage_logs_its_lr_at_its_first_and_last_step(pair):
    result, records, _ = pair["greedy"]
    rows = [r for r in history(records) if "lr-SGD" in r]
    assert all(r["lr"] == r["lr-SGD"] for r in rows)  # the optimizer-independent key the dashboard reads
    for stage in result.stages:
        steps = sorted(r["trainer/global_step"] for r in rows if r.get("stage") == stage.depth)
        assert stage.steps < 20 and steps == [0, stage.steps - 1], stage  # log_every_n_steps=20 alone: none


@pytest.mark.slow
def test_model_artifacts_are_logged_and_load_back_as_a_run(pair, tmp_path):
    import lwt
    from lwt.report.wandb_runs import offline_artifact

    greedy, g, g_folder = pair["greedy"]
    g_id = run_record(g)["run_id"]
    names = [(x["name"], sorted(x["aliases"])) for x in artifacts(g)]
    assert names == [(f"checkpoint-{g_id}", ["latest", "stage1"]), (f"checkpoint-{g_id}", ["latest", "stage2"]),
                     (f"model-{g_id}", ["final", "latest"])]
    (final,) = [x for x in artifacts(g) if x["name"] == f"model-{g_id}"]
    assert {c["path"] for c in final["manifest"]["contents"]} == {"model.pt", "config.yaml", "result.json"}
    e_names = [x["name"] for x in artifacts(pair["e2e"][1])]
    assert e_names == [f"model-{run_record(pair['e2e'][1])['run_id']}"]  # log_model=true: the final model only
    # offline: the artifact's files, copied from wandb's staging, load as a run with the trained weights
    loaded = lwt.load_run(offline_artifact(g_folder, tmp_path / "model"))
    saved = torch.load(Path(greedy.run_dir) / "model.pt", weights_only=True)
    assert loaded.result.final_test_acc == greedy.final_test_acc
    assert all(torch.equal(v, saved[k]) for k, v in loaded.net.state_dict().items())


@pytest.mark.slow
def test_export_of_the_run_folders_files_them_as_live_logging_did(pair, tmp_path):
    from lwt.cli import main

    out = tmp_path / "export"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("WANDB_MODE", raising=False)
        assert main(["wandb", "export", str(pair["out"] / "belilovsky_k2_greedy"), "--out", str(out)]) == 0
        assert main(["wandb", "export", str(pair["out"] / "belilovsky_k2_greedy"), "--out", str(out)]) == 0
    (folder,) = sorted((out / "wandb").glob("offline-run-*"))  # the second export skipped the exported run
    exported, live = records_of(folder), pair["greedy"][1]
    for key in ("run_id", "run_group", "job_type", "tags", "notes", "display_name"):
        assert run_record(exported)[key] == run_record(live)[key], key
    assert run_record(exported)["config"]["update"]["model.num_blocks"] == 2

    def keys(records):
        return {k for row in history(records) for k in row if not k.startswith("_") and "." not in k}

    assert keys(exported) == keys(live)  # metrics.jsonl holds every row the live run logged
    s_live, s_exp = summary(live), summary(exported)
    for key in ("best_val_acc", "selected_test_acc", "train_flops", "final_test_acc", "val/acc"):
        assert s_exp[key] == s_live[key], key
    assert {x["name"] for x in artifacts(exported)} == {f"model-{run_record(live)['run_id']}"}


@pytest.mark.slow
def test_dashboard_spec_reads_only_keys_the_offline_runs_logged(pair, tmp_path, capsys):
    from lwt.cli import main
    from lwt.report.wandb_runs import referenced

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        assert main(["wandb", "dashboard", "--project", "lwt", "--out", str(tmp_path / "dash.json")]) == 0
    printed = capsys.readouterr().out
    assert "not created in W&B: " in printed and "lwt wandb dashboard --project lwt --entity" in printed
    spec = json.loads((tmp_path / "dash.json").read_text())
    used = referenced(spec)
    runs = [pair["greedy"][1], pair["e2e"][1]]
    logged = {k for r in runs for row in history(r) for k in row} | {k for r in runs for k in summary(r)}
    assert used["metrics"] and used["metrics"] <= logged, used["metrics"] - logged
    tables = {k.split(".")[0] for r in runs for row in history(r) for k in row if k.endswith("._type")}
    assert used["tables"] <= tables
    config = {k for r in runs for k in run_record(r)["config"]["update"]}
    assert used["config"] <= config
    titles = [p["title"] for s in spec["sections"] for p in s["panels"]]
    assert any("greedy vs E2E" in t for t in titles) and any("gap" in t for t in titles)
