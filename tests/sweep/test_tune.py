"""`lwt tune`: every experiment gets the same grid, each grid point is a real run, and the choice follows
validation accuracy only: changing a point's test accuracy never changes it, changing its val accuracy does.
A choice on the edge of a numeric axis widens that experiment's grid (real runs of the same sweep) until it is
interior or the cap stops it, and --print-choice refuses a choice left on the edge."""

from __future__ import annotations

import csv
import json
import shutil
import statistics

import pytest

from lwt.cli import main
from lwt.errors import LwtError
from lwt.run.result import FineTune, RunResult, StageRow
from lwt.sweep.tune import Tuning, choose, edges, mark_choices, next_value, parse_grid, selection_val_acc

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


# ---------------------------------------------------------------- widening the grid past its edges


def _points(base: str, grid: dict, val) -> list[dict]:
    """A constructed tune table of one experiment: every grid point (cartesian), its val accuracy ``val(point)``."""
    import itertools

    return [{"base": base, **dict(zip(grid, combo)), "val_acc": val(dict(zip(grid, combo)))}
            for combo in itertools.product(*grid.values())]


def _grow(tuning: Tuning, val, max_extend: int) -> Tuning:
    """tune's loop with the table constructed from ``val``: widen while the choice sits on an edge."""
    while (grid := tuning.next_grid(_points(tuning.label, tuning.grid, val), max_extend)) is not None:
        tuning.grow(grid)
    return tuning


def test_the_value_beyond_an_edge_continues_the_grid():
    assert next_value([0.01, 0.02, 0.04], "top") == 0.08  # geometric: its own ratio
    assert next_value([0.01, 0.02, 0.04], "bottom") == 0.005
    assert next_value([0.1, 0.03, 0.01], "top") == 0.316  # 1-3-10 (any listed order): the mean ratio sqrt(10)
    assert next_value([0.1, 0.2, 0.3], "top") == 0.6 and next_value([0.1, 0.2, 0.3], "bottom") == 0.05  # x2, x0.5
    assert next_value([8, 16, 32], "top") == 64 and next_value([2, 3], "bottom") == 1  # integers stay integers
    assert next_value([1, 2, 3], "bottom") is None  # no integer below 1
    assert next_value([-0.1, 0.1], "bottom") is None  # a negative edge: no geometric value beyond it


def test_an_optimum_on_an_edge_widens_the_grid_and_an_interior_one_does_not():
    rising, falling = (lambda p: p["optim.lr"]), (lambda p: -p["optim.lr"])
    peaked = lambda p: -abs(p["optim.lr"] - 0.02)  # noqa: E731
    lrs = [0.01, 0.02, 0.04]
    assert Tuning("g", {"optim.lr": lrs}).next_grid(_points("g", {"optim.lr": lrs}, rising), 4) == {
        "optim.lr": [0.01, 0.02, 0.04, 0.08]}  # the top edge: one value more above
    assert Tuning("g", {"optim.lr": lrs}).next_grid(_points("g", {"optim.lr": lrs}, peaked), 4) is None
    # the bottom edge: the new value goes where the listed order puts it, so ties still prefer the same side
    assert Tuning("g", {"optim.lr": lrs}).next_grid(_points("g", {"optim.lr": lrs}, falling), 4) == {
        "optim.lr": [0.005, 0.01, 0.02, 0.04]}
    down = lrs[::-1]
    assert Tuning("g", {"optim.lr": down}).next_grid(_points("g", {"optim.lr": down}, falling), 4) == {
        "optim.lr": [0.04, 0.02, 0.01, 0.005]}
    # a peak beyond the grid: widened round by round until the optimum is inside, new points marked by round
    t = _grow(Tuning("g", {"optim.lr": lrs}), lambda p: -abs(p["optim.lr"] - 0.1), max_extend=4)
    assert t.grid == {"optim.lr": [0.01, 0.02, 0.04, 0.08, 0.16]} and t.rounds == 2
    assert t.added == {("optim.lr", "0.08"): 1, ("optim.lr", "0.16"): 2}
    rows = _points("g", t.grid, lambda p: -abs(p["optim.lr"] - 0.1))
    mark_choices(rows, ["optim.lr"], {"g": t})
    assert [(r["optim.lr"], r["optimum"]) for r in rows if r["chosen"]] == [(0.08, "interior")]


def test_the_cap_leaves_an_optimum_on_the_edge_and_says_so():
    rising = lambda p: p["optim.lr"]  # noqa: E731  (the optimum is always the largest value)
    t = _grow(Tuning("g", {"optim.lr": [0.01, 0.02]}), rising, max_extend=3)
    assert t.rounds == 3 and t.grid == {"optim.lr": [0.01, 0.02, 0.04, 0.08, 0.16]}
    rows = _points("g", t.grid, rising)
    mark_choices(rows, ["optim.lr"], {"g": t})
    (best,) = [r for r in rows if r["chosen"]]
    assert (best["optim.lr"], best["optimum"]) == (0.16, "edge")
    assert edges(best, t.grid) == [("optim.lr", "top")]
    no_extend = _grow(Tuning("g", {"optim.lr": [0.01, 0.02]}), rising, max_extend=0)  # --no-extend
    assert no_extend.rounds == 0 and no_extend.grid == {"optim.lr": [0.01, 0.02]}


def test_what_counts_as_an_edge():
    # two axes: lr inside, width on its top edge -> width alone is widened, the product with every lr trained
    grid = {"optim.lr": [0.01, 0.02, 0.04], "model.width": [8, 16]}
    val = lambda p: -abs(p["optim.lr"] - 0.02) + p["model.width"] / 1000  # noqa: E731
    assert Tuning("g", grid).next_grid(_points("g", grid, val), 4) == {**grid, "model.width": [8, 16, 32]}
    # weight decay 0 is the bound of a non-negative knob: an optimum there is not on an edge
    rows = _points("g", {"optim.weight_decay": [0, 1e-4, 5e-4]}, lambda p: -p["optim.weight_decay"])
    mark_choices(rows, ["optim.weight_decay"])
    assert [(r["optim.weight_decay"], r["optimum"]) for r in rows if r["chosen"]] == [(0, "interior")]
    # lists, names and one-value axes have no inside: nothing to widen, and the table says so
    rows = _points("g", {"model.widths": [[8, 16], [16, 32]], "optim.lr": [0.1]}, lambda p: p["model.widths"][0])
    assert Tuning("g", {"model.widths": [[8, 16], [16, 32]], "optim.lr": [0.1]}).next_grid(rows, 4) is None
    mark_choices(rows, ["model.widths", "optim.lr"])
    assert [r["optimum"] for r in rows if r["chosen"]] == ["categorical"]


@pytest.mark.slow
def test_seeds_and_the_order_of_an_axis_are_checked(tiny, capsys):
    base = ["tune", str(GREEDY), *tiny, "--dry-run"]
    assert main([*base, "--grid", "optim.lr=0.01,0.1"]) == 0  # default: two seeds per point, silently
    captured = capsys.readouterr()
    assert "lr-0.01_seed1" in captured.out and "warning" not in captured.err
    assert main([*base, "--grid", "optim.lr=0.01,0.1", "--seeds", "0"]) == 0  # fewer: allowed, with a warning
    assert "lwt: warning: --seeds 0 trains 1 seed per grid point" in capsys.readouterr().err
    assert main([*base, "--grid", "optim.lr=0.1,0.01,0.05"]) == 2  # an unordered numeric axis has no edges
    assert "list the values in order" in capsys.readouterr().err
    assert main([*base, "--grid", "optim.lr=0.1,0.01,0.05", "--no-extend"]) == 0


# ---------------------------------------------------------------- real tiny runs


def _set_acc(folder, experiment: str, lr: str, *, val: float | None = None, test: float | None = None) -> None:
    """Rewrite every seed's result.json of one grid point: its val (every stage) or test accuracy."""
    for path in (folder / experiment).glob(f"lr-{lr}_seed*/result.json"):
        res = json.loads(path.read_text())
        for stage in res["stages"]:
            stage.update({} if val is None else {"val_acc": val}, **({} if test is None else {"test_acc": test}))
        if test is not None:
            res["final_test_acc"] = test
        path.write_text(json.dumps(res))


def _chosen(out) -> dict[str, tuple[str, str]]:
    return {r["experiment"]: (r["optim.lr"], r["optimum"]) for r in csv.DictReader(out.open()) if r["chosen"]}


@pytest.mark.slow
def test_real_tiny_tune_chooses_by_val_and_skips_finished_points(tiny, tmp_path, capsys):
    out = tmp_path / "tune.csv"
    args = ["tune", str(GREEDY), str(E2E), "--grid", "optim.lr=0.01,0.1", "--no-extend", "--out", str(out),
            "--name", "t", *tiny, "curriculum.max_stages=2", "curriculum.epochs_per_stage=1", "trainer.max_epochs=1",
            "model.width=8"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader(out.open()))
    assert [(r["experiment"], r["optim.lr"], r["seeds"], r["n"]) for r in rows] == [
        ("belilovsky_k2_greedy", "0.01", "0 1", "2"), ("belilovsky_k2_greedy", "0.1", "0 1", "2"),
        ("belilovsky_k2_e2e", "0.01", "0 1", "2"), ("belilovsky_k2_e2e", "0.1", "0 1", "2")]  # same grid, 2 seeds
    folder = tmp_path / "runs" / "sweeps" / "tune_t"
    for row in rows:
        results = [json.loads((folder / row["experiment"] / f"lr-{row['optim.lr']}_seed{s}" / "result.json")
                              .read_text()) for s in (0, 1)]
        for res in results:
            assert len(res["stages"]) == (2 if res["mode"] == "greedy" else 4) and res["sweep"] == "tune_t"
        vals = [selection_val_acc(RunResult.from_json(res)) for res in results]
        assert float(row["val_acc"]) == pytest.approx(statistics.mean(vals))
        assert float(row["final_test_acc"]) == pytest.approx(statistics.mean(r["final_test_acc"] for r in results))
    for experiment in ("belilovsky_k2_greedy", "belilovsky_k2_e2e"):
        mine = [r for r in rows if r["experiment"] == experiment]
        best = max(float(r["val_acc"]) for r in mine)
        (chosen,) = [r for r in mine if r["chosen"] == "*"]
        assert chosen is next(r for r in mine if float(r["val_acc"]) == best)  # the highest val, the first on a tie
        assert chosen["optimum"] == "edge"  # two values: the choice is always one of the grid's ends
        assert f"chosen for {experiment}: optim.lr={chosen['optim.lr']} (val {100 * best:.1f} %" in printed
    assert "edge: belilovsky_k2_greedy's optimum sits at the edge of its grid" in printed

    # rerun: every point is finished and skipped; --print-choice refuses a choice on the edge in one error line
    assert main([*args, "--print-choice"]) == 2
    captured = capsys.readouterr()
    assert "8 finished (skipped), 0 to train" in captured.err and captured.out == ""
    error = [line for line in captured.err.splitlines() if line.startswith("lwt: error:")]
    assert len(error) == 1 and "no choice printed: the optimum sits at the edge of the grid" in error[0]
    assert "not extended (--no-extend or --max-extend 0)" in error[0]

    # the E2E point not chosen gets a perfect test accuracy: the choice stays; a perfect val accuracy: it moves
    choice = _chosen(out)
    other = next(r["optim.lr"] for r in rows if r["experiment"] == "belilovsky_k2_e2e" and not r["chosen"])
    _set_acc(folder, "belilovsky_k2_e2e", other, test=1.0)
    assert main(args) == 0
    assert _chosen(out) == choice
    _set_acc(folder, "belilovsky_k2_e2e", other, val=1.0)
    assert main(args) == 0
    assert _chosen(out)["belilovsky_k2_e2e"] == (other, "edge")
    assert _chosen(out)["belilovsky_k2_greedy"] == choice["belilovsky_k2_greedy"]


@pytest.mark.slow
def test_real_tiny_tune_extends_past_the_edge_and_resumes(tiny, tmp_path, capsys):
    out = tmp_path / "tune.csv"
    args = ["tune", str(GREEDY), "--grid", "optim.lr=0.01,0.02,0.04", "--out", str(out), "--name", "x", *tiny,
            "curriculum.max_stages=2", "curriculum.epochs_per_stage=1", "model.width=8"]
    folder = tmp_path / "runs" / "sweeps" / "tune_x"
    assert main([*args, "--no-extend"]) == 0  # the listed grid: 3 points x 2 seeds
    capsys.readouterr()
    # an interior optimum (constructed: lr 0.02 at val 0.9): nothing is added, the choice is printed
    _set_acc(folder, "belilovsky_k2_greedy", "0.02", val=0.9)
    assert main([*args, "--print-choice"]) == 0
    captured = capsys.readouterr()
    assert "6 finished (skipped), 0 to train" in captured.err and captured.out == "optim.lr=0.02\n"
    # the top edge best: one more point, 0.08 (the grid's ratio 2), trained for real as a run of the same sweep
    _set_acc(folder, "belilovsky_k2_greedy", "0.04", val=0.95)
    assert main([*args, "--max-extend", "1", "--print-choice"]) == 0
    captured = capsys.readouterr()
    assert "6 finished (skipped), 2 to train" in captured.err
    new = [json.loads((folder / "belilovsky_k2_greedy" / f"lr-0.08_seed{s}" / "result.json").read_text())
           for s in (0, 1)]
    assert [r["sweep"] for r in new] == ["tune_x", "tune_x"] and [r["seed"] for r in new] == [0, 1]
    assert max(selection_val_acc(RunResult.from_json(r)) for r in new) < 0.95  # a real tiny run: 0.04 stays best
    assert captured.out == "optim.lr=0.04\n"
    rows = list(csv.DictReader(out.open()))
    assert [(r["optim.lr"], r["extension"], r["chosen"], r["optimum"]) for r in rows] == [
        ("0.01", "0", "", ""), ("0.02", "0", "", ""), ("0.04", "0", "*", "interior"), ("0.08", "1", "", "")]
    # the new point best too: the cap (1 round) is spent, so the optimum stays on the edge and is refused
    _set_acc(folder, "belilovsky_k2_greedy", "0.08", val=0.99)
    assert main([*args, "--max-extend", "1", "--print-choice"]) == 2
    captured = capsys.readouterr()
    assert "8 finished (skipped), 0 to train" in captured.err and captured.out == ""
    assert ("lwt: error: no choice printed: the optimum sits at the edge of the grid for belilovsky_k2_greedy "
            "(optim.lr=0.08 is its largest value; still after 1 extension(s), the cap (--max-extend 1))"
            in captured.err)
    assert _chosen(out) == {"belilovsky_k2_greedy": ("0.08", "edge")}
    # a higher cap: the dry run lists the next point to train (0.16), nothing is trained
    assert main([*args, "--max-extend", "2", "--dry-run"]) == 0
    listed = capsys.readouterr().out
    assert "todo" in next(line for line in listed.splitlines() if "lr-0.16_seed0" in line)
    assert not (folder / "belilovsky_k2_greedy" / "lr-0.16_seed0" / "result.json").exists()
    # every finished point is archived beside the table: on another machine (no run folders) the tune goes on
    # from the archive, trains nothing it holds and makes the same table
    archive = tmp_path / "tune_runs.jsonl"
    assert len(archive.read_text().splitlines()) == 8
    table = out.read_bytes()
    shutil.rmtree(folder)
    assert main([*args, "--max-extend", "1"]) == 0
    assert "8 finished (skipped; 8 of them in the run archive), 0 to train" in capsys.readouterr().out
    assert out.read_bytes() == table and not folder.exists()
