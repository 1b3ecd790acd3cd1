"""Statistics over seeds: intervals against printed t-table values and intervals computed by hand, paired
differences, and the tables `lwt results` builds from them (groups of one run get no interval; depths are listed
per seed)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest

from lwt.report.paired import by_seed, paired_table
from lwt.report.stats import ci_text, summarize
from lwt.report.tables import aggregate, read_archive, run_rows, to_markdown
from lwt.run.result import RunResult

RESULTS = Path(__file__).resolve().parents[2] / "results"


@pytest.mark.parametrize("level, df, q", [(0.95, 1, 12.706205), (0.95, 2, 4.302653), (0.95, 3, 3.182446),
                                          (0.95, 4, 2.776445), (0.95, 9, 2.262157), (0.95, 30, 2.042272),
                                          (0.95, 1000, 1.962339), (0.99, 4, 4.604095), (0.90, 4, 2.131847)])
def test_interval_half_width_is_the_t_table_value_times_the_standard_error(level, df, q):
    """q: t_{(1 + level) / 2, df} as printed in a t table; n = df + 1 seeds, not the normal 1.96."""
    xs = [0.5 + 0.01 * ((3 * i) % 7) for i in range(df + 1)]
    s = summarize(xs, level=level)
    se = statistics.stdev(xs) / math.sqrt(len(xs))
    assert s.n == df + 1 and s.half == pytest.approx(q * se, rel=1e-6)
    assert (s.lo, s.hi) == (pytest.approx(s.mean - q * se, abs=1e-7), pytest.approx(s.mean + q * se, abs=1e-7))


def test_interval_by_hand():
    s = summarize([0.50, 0.54, 0.58, None])  # None: a missing value, not a zero
    assert (s.n, s.mean, s.std) == (3, pytest.approx(0.54), pytest.approx(0.04))
    half = 4.302653 * 0.04 / math.sqrt(3)  # t_{0.975, 2} * SD / sqrt(n) = 0.099366
    assert s.half == pytest.approx(half, abs=1e-6)
    assert (s.lo, s.hi) == (pytest.approx(0.54 - half, abs=1e-6), pytest.approx(0.54 + half, abs=1e-6))
    assert ci_text(s) == "54.00 ± 9.94"


def test_one_value_has_no_interval_and_says_so():
    s = summarize([0.42])
    assert (s.n, s.mean, s.std, s.half, s.lo, s.hi) == (1, 0.42, None, None, None, None)
    assert ci_text(s) == "42.00 (n=1, no CI)"
    assert summarize([None]).n == 0 and ci_text(summarize([])) == ""


def test_paired_differences_use_common_seeds_only():
    """A - B by seed over the seeds both sides have a value for (a missing value is no pair, never a zero)."""
    greedy = [{"seed": s, "acc": v} for s, v in {0: 0.30, 1: 0.32, 2: 0.28, 3: 0.50}.items()]
    e2e = [{"seed": s, "acc": v} for s, v in {0: 0.40, 1: 0.45, 2: 0.41, 4: 0.60, 3: None}.items()]
    seeds, diffs, s = by_seed(e2e, greedy, "acc")
    assert seeds == [0, 1, 2] and diffs == pytest.approx([0.10, 0.13, 0.13])
    assert s.mean == pytest.approx(0.12) and s.std == pytest.approx(math.sqrt(0.0003))
    assert s.half == pytest.approx(4.302653 * math.sqrt(0.0003) / math.sqrt(3), abs=1e-6)
    assert by_seed(e2e, greedy, lambda r: r["acc"] and 2 * r["acc"])[1] == pytest.approx([0.20, 0.26, 0.26])


def _run(experiment: str, mode: str, seed: int, final: float, lr: float = 0.1, **result) -> dict:
    stages = [{"stage": k, "val_acc": final - 0.01 * k, "test_acc": final - 0.01 * (3 - k)} for k in (1, 2, 3)]
    return {"dir": Path(f"runs/{experiment}/seed{seed}"), "config": {"optim.lr": lr, "seed": seed},
            "result": RunResult.from_json({"experiment": experiment, "mode": mode, "model": "m", "dataset": "cifar10",
                                           "seed": seed, "run_name": f"seed{seed}", "final_test_acc": final,
                                           "stages": stages, **result})}


def test_tables_from_runs_old_and_new():
    """Greedy runs with the val-selected fields (seeds 0-2, one written before they existed), E2E at another lr
    (a setting of the method, not an axis), and one lone run: intervals, per-seed depths, pairs."""
    runs = [_run("g", "greedy", 0, 0.30, critical={"critical_layer": 2}, selected_depth=2, selected_test_acc=0.33,
                 ensemble_test_acc=0.35),
            _run("g", "greedy", 1, 0.32, critical={"critical_layer": 3}, selected_depth=3, selected_test_acc=0.34,
                 ensemble_test_acc=None),
            _run("g", "greedy", 2, 0.28, critical=None),  # an old run: no selected_* fields
            _run("e", "e2e", 0, 0.40, lr=0.02, selected_depth=3, selected_test_acc=0.41),
            _run("e", "e2e", 1, 0.45, lr=0.02, selected_depth=3, selected_test_acc=0.44),
            _run("e", "e2e", 2, 0.41, lr=0.02, selected_depth=2, selected_test_acc=0.42),
            _run("lone", "greedy", 0, 0.25, lr=0.5)]
    columns, rows = run_rows(runs)
    assert {"selected_depth", "selected_test_acc", "ensemble_test_acc"} <= set(columns)
    old = next(r for r in rows if r["experiment"] == "g" and r["seed"] == 2)
    assert old["selected_test_acc"] is None and old["selected_depth"] is None  # missing, never zero
    agg_columns, agg = aggregate(columns, rows)
    by = {g["experiment"]: g for g in agg}
    g = by["g"]
    assert g["critical_layer_per_seed"] == "2, 3, -" and g["selected_depth_per_seed"] == "2, 3, -"
    assert "critical_layer_mean" not in agg_columns and "selected_depth_mean" not in agg_columns
    half = 4.302653 * 0.02 / math.sqrt(3)  # final 0.30, 0.32, 0.28: SD 0.02
    assert (g["final_test_acc_n"], g["final_test_acc_mean"]) == (3, pytest.approx(0.30))
    assert (g["final_test_acc_ci95_lo"], g["final_test_acc_ci95_hi"]) == (pytest.approx(0.30 - half, abs=1e-6),
                                                                          pytest.approx(0.30 + half, abs=1e-6))
    assert g["selected_test_acc_n"] == 2 and g["ensemble_test_acc_n"] == 1 and g["ensemble_test_acc_ci95_lo"] is None
    lone = by["lone"]
    assert lone["n"] == 1 and lone["final_test_acc_std"] is None and lone["final_test_acc_ci95_lo"] is None
    markdown = to_markdown(agg_columns, agg)
    assert "30.00 ± 4.97" in markdown and "25.00 (n=1, no CI)" in markdown
    assert "33.50 ± 6.35 (n=2)" in markdown  # selected: 2 of the 3 runs have it, and the cell says so
    assert "2, 3, -" in markdown

    pair_columns, pairs = paired_table(columns, rows)
    assert [(p["greedy_experiment"], p["e2e_experiment"], p["metric"]) for p in pairs] == [
        ("g", "e", "final_test_acc"), ("g", "e", "selected_test_acc"), ("lone", "e", "final_test_acc")]
    final, selected, single = pairs
    assert final["greedy_config"] == "optim.lr=0.1" and final["e2e_config"] == "optim.lr=0.02"
    assert (final["n_pairs"], final["seeds"]) == (3, "0 1 2")
    assert final["diff_mean"] == pytest.approx(0.12) and final["diff_per_seed"] == "0.1, 0.13, 0.13"
    h = 4.302653 * math.sqrt(0.0003) / math.sqrt(3)
    assert (final["diff_ci95_lo"], final["diff_ci95_hi"]) == (pytest.approx(0.12 - h, abs=1e-6),
                                                              pytest.approx(0.12 + h, abs=1e-6))
    assert (selected["n_pairs"], selected["seeds"]) == (2, "0 1")  # seed 2's greedy run predates the field
    assert selected["diff_mean"] == pytest.approx((0.08 + 0.10) / 2)
    assert single["n_pairs"] == 1 and single["diff_ci95_lo"] is None and single["diff_std"] is None


def test_committed_tables_list_critical_layers_per_seed():
    """From the committed C2/C3 archive (an 8-stage CNN, four cells of size x aux k), each greedy run given the
    critical layer the opt-in online rule would record (result.critical; claim runs train every stage and leave
    it empty): the per-seed list is each run's own critical layer, in the order of the seeds column, and no mean
    of them is written."""
    runs = read_archive(RESULTS / "early_overfitting_all_stages_cpu_runs.jsonl")
    for n, r in enumerate(runs):
        if r["config"]["mode"] == "greedy":
            r["result"].critical = {"critical_layer": 3 + n % 4}
    columns, rows = run_rows(runs)
    agg_columns, agg = aggregate(columns, rows)
    assert not any(c.startswith("critical_layer_") and c != "critical_layer_per_seed" for c in agg_columns)
    cell = ("experiment", "data.train_subset", "model.aux.k")
    checked = 0
    for g in agg:
        members = [r for r in rows if all(r[k] == g[k] for k in cell)]
        assert g["seeds"] == " ".join(str(r["seed"]) for r in members)
        if g["mode"] == "greedy":
            assert g["critical_layer_per_seed"] == ", ".join(str(r["critical_layer"]) for r in members)
            checked += 1
    assert checked == len({(r["data.train_subset"], r["model.aux.k"]) for r in rows if r["mode"] == "greedy"}) >= 4
    assert len({g["critical_layer_per_seed"] for g in agg if g["mode"] == "greedy"}) > 1


def test_pairs_of_a_half_done_sweep_match_axis_values():
    """A sweep still running: E2E has finished only at 1,000 images, greedy at 500 and 1,000 (the committed C2/C3
    archive with E2E's 500-image runs left out). Greedy at 500 images must not pair with E2E at 1,000: the
    sweep's run names make data.train_subset an axis though the two sides' value sets differ."""
    archive = [r for r in read_archive(RESULTS / "early_overfitting_all_stages_cpu_runs.jsonl")
               if r["config"]["experiment"] != "simple_cnn_e2e_flops_matched"]  # one E2E group per cell
    runs = [r for r in archive if r["config"]["data.train_subset"] in (500, 1000)
            and not (r["config"]["mode"] == "e2e" and r["config"]["data.train_subset"] == 500)]
    columns, rows = run_rows(runs)
    pair_columns, pairs = paired_table(columns, rows)
    finals = [p for p in pairs if p["metric"] == "final_test_acc"]
    assert {(p["data.train_subset"], p["model.aux.k"]) for p in finals} == {(1000, 1), (1000, 2)}
    assert len(finals) == 2 and "data.train_subset" in pair_columns
    finished = [r for r in archive if r["config"]["data.train_subset"] in (500, 1000)]
    full_columns, full = paired_table(*run_rows(finished))
    by_cell = {(p["data.train_subset"], p["model.aux.k"]): p for p in full if p["metric"] == "final_test_acc"}
    assert len(by_cell) == 4  # the finished sweep: each greedy cell with the E2E cell of the same axis values
    for p in finals:  # and the half-done one gives the same numbers for the cells it has
        assert p["diff_per_seed"] == by_cell[(p["data.train_subset"], p["model.aux.k"])]["diff_per_seed"]
