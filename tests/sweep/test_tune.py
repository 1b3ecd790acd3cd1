"""`lwt tune`: every experiment gets the same grid, each grid point is a real run, and the choice follows
validation accuracy only: changing a point's test accuracy never changes it, changing its val accuracy does."""

from __future__ import annotations

import csv
import json

import pytest

from lwt.cli import main
from lwt.errors import LwtError
from lwt.run.result import FineTune, RunResult, StageRow
from lwt.sweep.tune import choose, parse_grid, selection_val_acc

from conftest import EXPERIMENTS

GREEDY = EXPERIMENTS / "cifar10" / "belilovsky_k2_greedy.yaml"
E2E = EXPERIMENTS / "cifar10" / "belilovsky_k2_e2e.yaml"


def test_choice_follows_validation_not_test():
    points = [{"lr": 0.01, "val_acc": 0.50, "final_test_acc": 0.70},  # the best test accuracy: not chosen
              {"lr": 0.03, "val_acc": 0.61, "final_test_acc": 0.40},
              {"lr": 0.1, "val_acc": 0.61, "final_test_acc": 0.65},  # ties with 0.03 on val: the first one wins
              {"lr": 0.3, "val_acc": None, "final_test_acc": 0.99}]
    assert choose(points)["lr"] == 0.03
    with pytest.raises(LwtError, match="no grid point has a validation accuracy"):
        choose([{"val_acc": None}])


def test_selection_reads_the_right_validation_accuracy():
    stages = [StageRow(depth=1, val_acc=0.40, test_acc=0.10), StageRow(depth=2, val_acc=0.55, test_acc=0.20),
              StageRow(depth=3, val_acc=0.50, test_acc=0.90)]
    # greedy: its val-selected depth (stage 2), not its last stage and never a test accuracy
    assert selection_val_acc(RunResult(mode="greedy", stages=stages)) == 0.55
    assert selection_val_acc(RunResult(mode="dgl", stages=stages)) == 0.55
    # greedy + fine-tuning: the fine-tuned network's
    tuned = FineTune(epochs=1, lr=0.1, depth=3, test_acc_before=0.9, test_acc_after=0.9, val_acc_after=0.58, depths=[])
    assert selection_val_acc(RunResult(mode="greedy", stages=stages, finetune=tuned)) == 0.58
    # E2E: the network's own classifier (last depth), not the best auxiliary readout
    assert selection_val_acc(RunResult(mode="e2e", stages=stages)) == 0.50


def test_grid_parsing():
    assert parse_grid(["optim.lr=0.01,0.03", "model.widths=[32,64],[64,128]", "finetune.lr=null,0.1"]) == {
        "optim.lr": [0.01, 0.03], "model.widths": [[32, 64], [64, 128]], "finetune.lr": [None, 0.1]}
    for bad, fragment in ([[], "at least one --grid"], [["optim.lr"], "must look like key=v1,v2"],
                          [["optim.lr=0.1", "optim.lr=0.2"], "given twice"]):
        with pytest.raises(LwtError, match=fragment):
            parse_grid(bad)


@pytest.mark.slow
def test_real_tiny_tune_chooses_by_val_and_skips_finished_points(tiny, tmp_path, capsys):
    out = tmp_path / "tune.csv"
    args = ["tune", str(GREEDY), str(E2E), "--grid", "optim.lr=0.01,0.1", "--out", str(out), "--name", "t", *tiny,
            "curriculum.max_stages=2", "curriculum.epochs_per_stage=1", "trainer.max_epochs=1", "model.width=8"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader(out.open()))
    assert [(r["experiment"], r["optim.lr"]) for r in rows] == [
        ("belilovsky_k2_greedy", "0.01"), ("belilovsky_k2_greedy", "0.1"),
        ("belilovsky_k2_e2e", "0.01"), ("belilovsky_k2_e2e", "0.1")]  # the same grid for both experiments
    folder = tmp_path / "runs" / "sweeps" / "tune_t"

    def result(row: dict) -> dict:
        return json.loads((folder / row["experiment"] / f"lr-{row['optim.lr']}_seed0" / "result.json").read_text())

    for row in rows:
        res = result(row)
        assert len(res["stages"]) == (2 if res["mode"] == "greedy" else 4) and res["sweep"] == "tune_t"
        assert float(row["val_acc"]) == pytest.approx(selection_val_acc(RunResult.from_json(res)))
        assert float(row["final_test_acc"]) == pytest.approx(res["final_test_acc"])
    for experiment in ("belilovsky_k2_greedy", "belilovsky_k2_e2e"):
        mine = [r for r in rows if r["experiment"] == experiment]
        best = max(float(r["val_acc"]) for r in mine)
        (chosen,) = [r for r in mine if r["chosen"] == "*"]
        assert chosen is next(r for r in mine if float(r["val_acc"]) == best)  # the highest val, the first on a tie
        assert f"chosen for {experiment}: optim.lr={chosen['optim.lr']} (val {100 * best:.1f} %" in printed

    # rerun: every point is finished and skipped; --print-choice prints only the overrides
    assert main([*args, "--print-choice"]) == 0
    captured = capsys.readouterr()
    assert "4 finished (skipped), 0 to train" in captured.err
    choice = {r["experiment"]: r["optim.lr"] for r in rows if r["chosen"]}
    assert captured.out.splitlines() == [f"{GREEDY} optim.lr={choice['belilovsky_k2_greedy']}",
                                         f"{E2E} optim.lr={choice['belilovsky_k2_e2e']}"]

    # the E2E point not chosen gets a perfect test accuracy: the choice stays; a perfect val accuracy: it moves
    other = next(r for r in rows if r["experiment"] == "belilovsky_k2_e2e" and not r["chosen"])
    path = folder / other["experiment"] / f"lr-{other['optim.lr']}_seed0" / "result.json"
    res = json.loads(path.read_text())
    res["final_test_acc"] = 1.0
    for stage in res["stages"]:
        stage["test_acc"] = 1.0
    path.write_text(json.dumps(res))
    assert main([*args, "--print-choice"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == f"{E2E} optim.lr={choice['belilovsky_k2_e2e']}"
    res["stages"][-1]["val_acc"] = 1.0
    path.write_text(json.dumps(res))
    assert main([*args, "--print-choice"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == f"{E2E} optim.lr={other['optim.lr']}"
