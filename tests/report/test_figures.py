"""`lwt figures` rebuilds the paper figures from the committed result tables (and from tables with the newer
columns), drawing 95 % t-intervals from 3 seeds on, means only over seeds that all reached a depth, remedies as
a forest plot of paired differences, and one palette; the notebook runs headless."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

import pytest

from lwt.analysis.style import arch_label
from lwt.cli import main
from lwt.report.figures import fig1_depth, fig2_gap, fig4_critical, fig5_remedies, fig8_intervention, fig9_belilovsky
from lwt.report.figures.common import PARTIAL_NOTE, Curve, curve, panel_groups, read_table

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"


@pytest.mark.slow
def test_figures_rebuild_from_the_committed_tables(tmp_path, capsys):
    assert main(["figures", "--results", str(RESULTS), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    # the CPU sweeps' tables and the probe/CKA reports are committed: these figures must all come back
    for name in ["fig1_depth", "fig2_gap", "fig3_overfitting", "fig4_critical", "fig6_cka", "fig7_probes"]:
        for suffix in (".png", ".pdf"):
            path = tmp_path / f"{name}{suffix}"
            assert path.is_file() and path.stat().st_size > 5000, f"{path} missing or empty\n{out}"
    assert (tmp_path / "fig5_remedies.png").is_file() == (RESULTS / "remedies_cpu.csv").is_file()
    assert (tmp_path / "fig8_intervention.png").is_file() == (RESULTS / "intervention_cpu.csv").is_file()
    assert (tmp_path / "fig9_belilovsky.png").is_file() == (RESULTS / "belilovsky_cifar10_cpu.csv").is_file()
    assert (tmp_path / "fig10_swap.png").is_file() == (RESULTS / "swap_cpu.csv").is_file()


def test_gap_figure_pairs_runs_by_seed():
    """E2E - greedy per seed, from the raw CSV cells, equals what figure 2 plots."""
    with (RESULTS / "gap_cpu.csv").open(newline="") as f:
        raw = [r for r in csv.DictReader(f) if r["model"] == "vgg11" and not r["experiment"].endswith("_matched")]
    acc = {(r["mode"], r["seed"]): float(r["final_test_acc"]) for r in raw}
    seeds = sorted({s for _, s in acc})
    expected = [100 * (acc[("e2e", s)] - acc[("greedy", s)]) for s in seeds]
    gaps = fig2_gap.paired_gaps(read_table(RESULTS / "gap_cpu.csv"))
    assert len(expected) >= 2
    assert gaps[("VGG-11", "CIFAR-10")] == pytest.approx(expected)


def test_gap_figure_keeps_the_compute_matched_arm_apart(tmp_path):
    """E2E runs trained for greedy's FLOPs pair with greedy on their own bar, never pooled into the
    epoch-matched E2E's."""
    rows = [r for r in read_table(RESULTS / "gap_cpu.csv") if not str(r["experiment"]).endswith("_matched")]
    epoch_matched = fig2_gap.paired_gaps(rows)
    matched = [{**r, "experiment": f"{r['experiment']}_flops_matched", "final_test_acc": r["final_test_acc"] - 0.03}
               for r in rows if r["mode"] == "e2e"]
    both = rows + matched
    assert fig2_gap.paired_gaps(both) == epoch_matched
    gaps = fig2_gap.paired_gaps(both, arm="e2e_matched")
    assert gaps.keys() == epoch_matched.keys()
    assert all(gaps[k] == pytest.approx([g - 3 for g in epoch_matched[k]]) for k in gaps)
    bars = _draw(fig2_gap, both, tmp_path).axes[0]
    labels = [t.get_text() for t in bars.get_legend().get_texts()]
    assert any("compute-matched" in label for label in labels)


def test_a_missing_table_is_named_with_the_command_that_makes_it(tmp_path, capsys):
    assert main(["figures", "--results", str(tmp_path), "--out", str(tmp_path / "figs"), "--only", "1"]) == 1
    out = capsys.readouterr().out
    assert "skipped fig1_depth: no table" in out
    assert "lwt sweep experiments/sweeps/gap.yaml" in out
    assert main(["figures", "--only", "11"]) == 2
    assert "figures are numbered 1-10" in capsys.readouterr().err


@pytest.mark.slow
def test_notebook_executes_headless():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(ROOT / "notebooks" / "explore_results.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                      for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", []))
    with open(RESULTS / "belilovsky_cifar10_cpu.csv") as f:
        table = list(csv.DictReader(f))
    acc = {(int(r["model.aux.k"]), int(r["seed"])): float(r["final_test_acc"]) for r in table}
    assert f"{len(table)} runs:" in outputs and "fig9_belilovsky.png" in outputs
    # claim K's differences paired by seed, from the runs archive, equal those of the committed CSV table
    for a, b in [(2, 1), (3, 2), (3, 1)]:
        diffs = [acc[(a, s)] - acc[(b, s)] for k, s in acc if k == a and (b, s) in acc]
        assert len(diffs) >= 3 and f"k={a} - k={b}: {100 * statistics.mean(diffs):.2f} " in outputs
    assert "W&B not queried" in outputs or "W&B, k=3 - k=2" in outputs  # offline: the guarded cell says so


def test_curves_carry_the_t_interval_and_the_seeds():
    """Figures 1, 3, 4 draw mean +- t_{0.975, n-1} SD / sqrt(n) (not +-1 SD) and the seeds themselves."""
    rows = [r for r in read_table(RESULTS / "gap_cpu.csv") if r["model"] == "vgg11" and r["mode"] == "greedy"]
    c = curve(rows, "test_acc_stage")
    n = len(rows)
    assert c.complete[0] == 1 and c.n == n >= 2
    xs = [100 * r["test_acc_stage1"] for r in rows]
    assert c.seeds_at(1) == xs
    t = {2: 12.706205, 3: 4.302653}[n]  # t_{0.975, n-1}
    assert c.stats[0].half == pytest.approx(t * statistics.stdev(xs) / math.sqrt(n), abs=1e-4)


def test_a_mean_is_taken_only_where_every_seed_has_a_value():
    """Seeds that stopped at depth 3, 5 and 7 (critical layers): the mean covers depths 1-3, the two seeds that
    went on are their own lines from depth 3, never averaged into a mean of survivors."""
    c = Curve([{1: 10.0, 2: 20.0, 3: 30.0}, {1: 12.0, 2: 22.0, 3: 32.0, 4: 40.0, 5: 45.0},
               {1: 14.0, 2: 24.0, 3: 34.0, 4: 50.0, 5: 55.0, 6: 60.0, 7: 65.0}])
    assert c.complete == [1, 2, 3] and [s.mean for s in c.stats] == pytest.approx([12.0, 22.0, 32.0])
    assert c.partial == [{3: 32.0, 4: 40.0, 5: 45.0}, {3: 34.0, 4: 50.0, 5: 55.0, 6: 60.0, 7: 65.0}]
    assert Curve([{1: 1.0, 2: 2.0}, {1: 3.0, 2: 4.0}]).partial == []  # all complete: no single-seed lines


def _draw(module, rows: list[dict], tmp_path: Path):
    """The figure ``module.make`` draws from ``rows``, kept open to inspect its artists (not written: the
    rebuild tests write every figure)."""
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from lwt.analysis.style import STYLE

    kept = []
    with pytest.MonkeyPatch.context() as mp, plt.rc_context(STYLE):
        mp.setattr(plt, "close", lambda fig=None: kept.append(fig))
        mp.setattr(Figure, "savefig", lambda *args, **kwargs: None)
        module.make(rows, tmp_path, "test")
    return kept[0]


def _bands(ax) -> list:
    from matplotlib.collections import FillBetweenPolyCollection, PolyCollection

    return [c for c in ax.collections if isinstance(c, (FillBetweenPolyCollection, PolyCollection))]


def test_no_interval_is_drawn_from_fewer_than_three_seeds(tmp_path):
    """The same table with 3 seeds and cut to 2: the bands and error bars go, the points stay."""
    from matplotlib.collections import PathCollection
    from matplotlib.container import ErrorbarContainer

    rows = [r for r in read_table(RESULTS / "gap_cpu.csv") if not r["experiment"].endswith("_matched")]
    two = [r for r in rows if r["seed"] in (0, 1)]
    three = _draw(fig1_depth, rows, tmp_path)
    assert all(len(_bands(ax)) == 2 for ax in three.axes)  # greedy and E2E, n=3 each
    cut = _draw(fig1_depth, two, tmp_path)
    assert all(not _bands(ax) for ax in cut.axes)
    assert all(any(isinstance(c, PathCollection) for c in ax.collections) for ax in cut.axes)  # the seed dots
    assert any("(n=2)" in t.get_text() for t in cut.legends[0].get_texts())
    bars = _draw(fig2_gap, two, tmp_path).axes[0]
    assert not [c for c in bars.containers if isinstance(c, ErrorbarContainer)]
    bars = _draw(fig2_gap, rows, tmp_path).axes[0]
    assert len([c for c in bars.containers if isinstance(c, ErrorbarContainer)]) == len(
        [p for p in bars.patches if p.get_height() != 0])  # one error bar per bar, from 3 pairs


def test_the_mean_stops_where_the_first_seed_stopped(tmp_path):
    """Figure 4 from the committed every-stage table with greedy seeds cut as the opt-in online stop would cut
    them (seed s after stage 4 + s, 8 at most): per panel the greedy mean runs to the shallowest last stage and
    averages all seeds there; each seed that went on is a thin line of its own, and the legend says so."""
    from lwt.analysis.style import MODES

    rows = read_table(RESULTS / "early_overfitting_all_stages_cpu.csv")
    for r in rows:
        if r["mode"] == "greedy":
            r.update({f"test_acc_stage{k}": None for k in range(5 + int(r["seed"]), 9)})
    fig = _draw(fig4_critical, rows, tmp_path)
    _, groups = panel_groups(rows)
    panels_with_thin_lines = 0
    for ax, members in zip(fig.axes, groups.values()):
        greedy = [r for r in members if r["mode"] == "greedy"]
        lasts = [max(k for k in range(1, 9) if r.get(f"test_acc_stage{k}") is not None) for r in greedy]
        (mean,) = [line for line in ax.get_lines() if line.get_label().startswith(MODES["greedy"]["label"])]
        assert list(mean.get_xdata()) == list(range(1, min(lasts) + 1))
        assert list(mean.get_ydata()) == pytest.approx(
            [statistics.mean(100 * r[f"test_acc_stage{k}"] for r in greedy) for k in range(1, min(lasts) + 1)])
        assert f"(n={len(greedy)})" in mean.get_label()
        thin = [line for line in ax.get_lines() if line.get_label().startswith("_") and line.get_linewidth() < 1]
        assert len(thin) == sum(last > min(lasts) for last in lasts)
        assert sorted(max(line.get_xdata()) for line in thin) == sorted(x for x in lasts if x > min(lasts))
        assert (PARTIAL_NOTE in ax.get_legend_handles_labels()[1]) == bool(thin)
        panels_with_thin_lines += bool(thin)
        assert len(_bands(ax)) == 3  # greedy, E2E and E2E at greedy's FLOPs, 3 seeds each
    assert panels_with_thin_lines >= 4


def test_the_swap_figure_pairs_the_two_sources_by_seed_at_each_dose(tmp_path):
    """Figure 10 (C3's swap test) from a constructed table: per j, the right panel's point is the mean of E2E's
    blocks minus greedy's paired by seed, the seeds are dots, zero is a line; the left panel's lines take the
    sources' colours."""
    from matplotlib.colors import to_hex

    from lwt.analysis.style import MODES
    from lwt.report.figures import fig10_swap

    acc = {("e2e", 1): [0.50, 0.52, 0.51], ("greedy", 1): [0.49, 0.50, 0.50], ("e2e", 2): [0.52, 0.53, 0.52],
           ("greedy", 2): [0.48, 0.50, 0.49], ("e2e", 3): [0.53, 0.54, 0.55], ("greedy", 3): [0.47, 0.49, 0.48]}
    rows = [{"experiment": f"simple_cnn_swap_from_{src}{j}", "mode": "e2e", "model": "simple_cnn",
             "dataset": "cifar10", "seed": seed, "curriculum.init_blocks": float(j), "final_test_acc": a}
            for (src, j), accs in acc.items() for seed, a in enumerate(accs)]
    rows.append({**rows[-1], "experiment": "simple_cnn_e2e"})  # a row of another experiment is left out
    fig = _draw(fig10_swap, rows, tmp_path)
    left, right = fig.axes
    for j in (1, 2, 3):
        diffs = [100 * (e - g) for e, g in zip(acc[("e2e", j)], acc[("greedy", j)])]
        (mean,) = [line.get_ydata()[0] for line in right.get_lines()
                   if list(line.get_xdata()) == [j] and line.get_marker() == MODES["e2e"]["marker"]]
        assert mean == pytest.approx(statistics.mean(diffs))
        assert any(sorted(c.get_offsets()[:, 1]) == pytest.approx(sorted(diffs)) for c in right.collections)
    assert any(list(line.get_ydata()) == [0, 0] for line in right.get_lines())  # the zero line
    colours = {to_hex(line.get_color()) for line in left.get_lines() if len(line.get_xdata()) == 3}
    assert colours == {to_hex(MODES["e2e"]["color"]), to_hex(MODES["greedy"]["color"])}
    with pytest.raises(ValueError, match="curriculum.init_blocks differs"):
        fig10_swap.arms([{**rows[0], "curriculum.init_blocks": 2.0}, *rows[1:]])


def test_one_palette_for_arms_and_auxiliary_depths(tmp_path):
    """Figure 8: plain greedy in greedy's colour, early-stopped blocks in the remedy's, greedy on E2E's blocks in
    an arm colour of its own (never E2E's: those are greedy runs). Figure 9: each k its own colour, none a
    method's or an arm's."""
    from matplotlib.colors import to_hex

    from lwt.analysis.style import ARMS, AUX_K, MODES

    methods = {v["color"].lower() for v in MODES.values()}
    arms = {v["color"].lower() for v in ARMS.values()}
    ax = _draw(fig8_intervention, read_table(RESULTS / "intervention_cpu.csv"), tmp_path).axes[0]
    colour = {line.get_label().split("\n")[0]: to_hex(line.get_color()) for line in ax.get_lines()
              if not line.get_label().startswith("_") and line.get_label() != PARTIAL_NOTE}
    assert colour.pop("plain greedy") == MODES["greedy"]["color"].lower()
    assert {c for label, c in colour.items() if "stopped early" in label} == {MODES["remedy"]["color"].lower()}
    assert {c for label, c in colour.items() if "E2E's blocks" in label} == {ARMS["from_e2e"]["color"].lower()}
    assert fig8_intervention.arm_label({"experiment": "simple_cnn_greedy_early_short3"}) == (
        "greedy, blocks 1-3 trained less (same total)", "remedy")  # I2's remedy arm: never plain greedy's colour
    assert not arms & methods
    rows = read_table(RESULTS / "belilovsky_cifar10_cpu.csv")
    ax = _draw(fig9_belilovsky, rows, tmp_path).axes[0]
    ks = {int(r["model.aux.k"]) for r in rows}
    drawn = {to_hex(line.get_color()) for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert drawn == {AUX_K[k]["color"].lower() for k in ks} and len(drawn) == len(ks) == 3
    assert not drawn & methods and not drawn & arms


def _points_at(ax, row: int) -> list:
    """The marker of forest-plot row ``row`` (its mean), not the caps of its interval."""
    return [line for line in ax.get_lines() if list(line.get_ydata()) == [row] and line.get_marker() != "|"]


def _remedy_rows() -> list[dict]:
    return read_table(RESULTS / "remedies_cpu.csv")


def test_remedies_are_a_forest_plot_of_differences_paired_by_seed(tmp_path):
    from matplotlib.colors import to_hex
    from matplotlib.container import ErrorbarContainer

    from lwt.analysis.style import MODES, REMEDIES, method_of

    rows = _remedy_rows()
    ax = _draw(fig5_remedies, rows, tmp_path).axes[0]
    remedies = [e for e in dict.fromkeys(r["experiment"] for r in rows) if method_of(
        next(r for r in rows if r["experiment"] == e)) != "greedy"]
    remedies.sort(key=lambda e: next(r for r in rows if r["experiment"] == e)["mode"] == "e2e")  # the figure's order
    labels = [t.get_text().replace("\n", " ") for t in ax.get_yticklabels()]  # long labels are wrapped
    assert len(labels) == len(remedies) >= 4 and "layerwise (greedy)" not in labels  # plain greedy is the zero
    greedy_arms = [label for label in labels if not label.startswith(MODES["e2e"]["label"])]
    assert {"layer-wise lr", "early weight decay"} <= set(greedy_arms) <= {*REMEDIES.values(), "decoupled greedy (DGL)"}
    assert all(label.endswith("(for scale)") for label in labels[len(greedy_arms):])  # E2E rows last, set apart
    zero = [line for line in ax.get_lines() if list(line.get_xdata()) == [0, 0]]
    assert len(zero) == 1  # the vertical line at 0: plain greedy
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == len(remedies)  # every remedy has 3 pairs: an interval each
    plain = {r["seed"]: r["final_test_acc"] for r in rows if r["experiment"] == "simple_cnn_greedy"}
    for i, experiment in enumerate(remedies):
        mine = {r["seed"]: r["final_test_acc"] for r in rows if r["experiment"] == experiment}
        diffs = [100 * (mine[s] - plain[s]) for s in sorted(mine.keys() & plain.keys())]
        (point,) = _points_at(ax, i)
        assert point.get_xdata()[0] == pytest.approx(statistics.mean(diffs))  # paired by seed, not two means
        run = next(r for r in rows if r["experiment"] == experiment)
        assert to_hex(point.get_color()) == MODES[method_of(run)]["color"].lower()
    # two pairs per remedy: the points only, no interval
    two = _draw(fig5_remedies, [r for r in rows if r["seed"] in (0, 1)], tmp_path).axes[0]
    assert not [c for c in two.containers if isinstance(c, ErrorbarContainer)]
    assert all("no interval (n=2)" in t.get_text() for t in two.texts)


@pytest.mark.slow
def test_figures_rebuild_from_tables_with_the_val_selected_columns(tmp_path, capsys):
    """Tables written after result.json gained selected_depth / selected_test_acc / ensemble_test_acc: figures
    1, 2 and 4 still build, and figure 2 pairs the val-selected accuracy by seed too."""
    for name in ("gap_cpu.csv", "early_overfitting_all_stages_cpu.csv"):
        with (RESULTS / name).open(newline="") as f:
            raw = list(csv.DictReader(f))
        columns = list(dict.fromkeys([*raw[0], "selected_depth", "selected_test_acc", "ensemble_test_acc"]))
        for r in raw:  # stand-in values: the stage-2 accuracy as if validation had picked depth 2
            r.update(selected_depth="2", selected_test_acc=r["test_acc_stage2"], ensemble_test_acc="")
        with (tmp_path / name).open("w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(raw)
    out = tmp_path / "figs"
    assert main(["figures", "--results", str(tmp_path), "--out", str(out), "--only", "1,2,4"]) == 0
    assert all((out / f"{n}.png").stat().st_size > 5000 for n in ("fig1_depth", "fig2_gap", "fig4_critical"))
    rows = read_table(tmp_path / "gap_cpu.csv")
    acc = {(r["mode"], r["seed"]): r["test_acc_stage2"] for r in rows
           if r["model"] == "vgg11" and not r["experiment"].endswith("_matched")}
    expected = [100 * (acc[("e2e", s)] - acc[("greedy", s)]) for s in sorted({s for _, s in acc})]
    assert fig2_gap.paired_gaps(rows, "selected_test_acc")[("VGG-11", "CIFAR-10")] == pytest.approx(expected)


# ---------------------------------------------------------------- one style

CODE_NAMES = ("simple_cnn", "belilovsky_k", "s2d_cnn", "vgg11", "resnet20", "_greedy", "_e2e", "imagefolder")


def _remedies_table(path: Path) -> None:
    """A remedies-shaped table from the committed gap rows (one architecture), one experiment per method."""
    with (RESULTS / "gap_cpu.csv").open(newline="") as f:
        raw = [r for r in csv.DictReader(f) if r["model"] == "vgg11" and not r["experiment"].endswith("_matched")]
    rows = []
    for experiment, mode, source in [("vgg11_greedy", "greedy", "greedy"), ("vgg11_e2e", "e2e", "e2e"),
                                     ("vgg11_greedy_lr_gamma", "greedy", "greedy"), ("vgg11_dgl", "dgl", "greedy"),
                                     ("vgg11_greedy_finetune", "greedy", "e2e")]:
        rows += [{**r, "experiment": experiment, "mode": mode} for r in raw if r["mode"] == source]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """Every figure lwt figures draws from the committed tables (and a remedies table), kept open: name -> Figure."""
    import shutil

    import matplotlib.pyplot as plt

    results = tmp_path_factory.mktemp("results")
    for item in RESULTS.iterdir():
        (shutil.copytree if item.is_dir() else shutil.copy)(item, results / item.name)
    _remedies_table(results / "remedies_cpu.csv")
    from matplotlib.figure import Figure

    figures, close, savefig = {}, plt.close, Figure.savefig

    def keep(fig, path, **kwargs):  # figN_<slug>.png -> N; figN_<slug>_full.png (the full-scale table's) -> "N_full"
        number = Path(path).stem.split("_")[0].removeprefix("fig")
        figures[int(number) if not Path(path).stem.endswith("_full") else f"{number}_full"] = fig
        return savefig(fig, path, **kwargs)

    with pytest.MonkeyPatch.context() as mp:  # keep each figure open once saved, to inspect its artists
        mp.setattr(plt, "close", lambda fig=None: None)
        mp.setattr(Figure, "savefig", keep)
        assert main(["figures", "--results", str(results), "--out", str(tmp_path_factory.mktemp("figs"))]) == 0
    yield figures
    for fig in figures.values():
        close(fig)


def _base(number: int | str) -> int:
    """A figure's number, the full-scale version ("4_full") under its subset figure's (4)."""
    return int(str(number).split("_")[0])


def _texts(fig) -> list[str]:
    texts = [t.get_text() for t in fig.texts]
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    texts += [t.get_text() for lg in legends for t in lg.get_texts()]
    for ax in fig.axes:
        texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        texts += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels() + ax.texts]
    return [t for t in texts if t]


@pytest.mark.slow
def test_every_figure_is_drawn_and_names_things_as_a_reader_does(drawn):
    from lwt.analysis.style import DEPTH_LABEL

    optional = ("intervention_cpu.csv", "belilovsky_cifar10_cpu.csv", "swap_cpu.csv")  # figures 8, 9 and 10
    assert len([n for n in drawn if isinstance(n, int)]) == 7 + sum((RESULTS / name).is_file() for name in optional)
    full = {n for n in drawn if not isinstance(n, int)}  # figures 1-4, 9 and 10 again, from the full-scale table
    assert full <= {"1_full", "2_full", "3_full", "4_full", "9_full", "10_full"}
    assert bool(full) == (RESULTS / "full_scale_cpu.csv").is_file()
    for number, fig in drawn.items():
        texts = _texts(fig)
        assert texts, number
        bad = [t for t in texts if ".csv" in t or "_cpu" in t or any(c in t for c in CODE_NAMES)]
        assert not bad, f"figure {number}: file or code names on the figure: {bad}"
        depth_axes = [ax.get_xlabel() for ax in fig.axes if "depth" in ax.get_xlabel() or "block" in ax.get_xlabel()]
        if _base(number) in (1, 3, 4, 7):  # accuracy against depth: one wording everywhere
            assert depth_axes and set(depth_axes) == {DEPTH_LABEL}, (number, depth_axes)
    # figure 1's Belilovsky panel: the authors' k=2 network; rows named belilovsky_k2 whose git_revision predates
    # the rename in lwt.analysis.style.RENAMED trained the space-to-depth CNN, and are labelled so
    assert "Belilovsky k=2" in _texts(drawn[1]) and "VGG-11" in _texts(drawn[1])
    assert arch_label({"model": "belilovsky_k2", "git_revision": "3537f2f"}) == "space-to-depth CNN (lwt)"


@pytest.mark.slow
def test_each_method_has_one_colour_in_every_figure_and_nothing_else_wears_it(drawn):
    from matplotlib.colors import to_hex

    from lwt.analysis.style import MODES

    seen = {mode: set() for mode in MODES}
    for number, fig in drawn.items():
        for ax in fig.axes:
            for line in ax.get_lines():
                for mode, style in MODES.items():
                    if line.get_label().startswith(style["label"]):
                        seen[mode].add((_base(number), to_hex(line.get_color())))
    assert {n for n, _ in seen["greedy"]} == {1, 3, 4, 7} and {n for n, _ in seen["e2e"]} == {1, 3, 4, 7}
    for mode in ("greedy", "e2e"):
        assert {c for _, c in seen[mode]} == {MODES[mode]["color"].lower()}, mode
    # figure 5: one row per experiment but plain greedy (the zero line), in its method's colour, E2E last;
    # figure 2's dataset bars wear no method's colour
    ax = drawn[5].axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    colours = [to_hex(_points_at(ax, i)[0].get_color()) for i in range(len(labels))]
    expected = ["remedy", "dgl", "greedy+finetune", "e2e"]
    assert colours == [MODES[m]["color"].lower() for m in expected], labels
    # no hue at all (greys), so a dataset can never be mistaken for a method (blue was greedy and CIFAR-10 once)
    from matplotlib.colors import rgb_to_hsv, to_rgb

    assert drawn[2].axes[0].patches
    assert all(rgb_to_hsv(to_rgb(p.get_facecolor()))[1] < 0.05 for p in drawn[2].axes[0].patches)


@pytest.mark.slow
def test_legends_sit_off_the_data(drawn):
    for number, fig in drawn.items():
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
        if _base(number) in (1, 2, 3, 4, 7):
            assert legends, f"figure {number} has no legend"
        for legend in legends:
            box = legend.get_window_extent(renderer)
            for ax in fig.axes:
                if ax.get_label() == "<colorbar>":
                    continue
                assert not box.overlaps(ax.get_window_extent(renderer)), f"figure {number}: legend over an axes"


def test_belilovsky_figure_draws_each_k_from_its_rows(tmp_path):
    """Figure 9 (claim K): one greedy curve per auxiliary depth in the table, its points the per-stage means of
    that network's rows, and the legend's last-stage number their final accuracy."""
    with (RESULTS / "belilovsky_cifar10_cpu.csv").open(newline="") as f:
        raw = list(csv.DictReader(f))
    fig = _draw(fig9_belilovsky, read_table(RESULTS / "belilovsky_cifar10_cpu.csv"), tmp_path)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")}
    assert len(lines) == len({r["model"] for r in raw}) >= 2
    for model in sorted({r["model"] for r in raw}):
        members = [r for r in raw if r["model"] == model]
        label = next(lb for lb in lines if lb.startswith(arch_label(members[0]) + ","))
        stages = sorted(int(c.removeprefix("test_acc_stage")) for c in members[0]
                        if c.startswith("test_acc_stage") and members[0][c])
        expected = [100 * statistics.mean(float(r[f"test_acc_stage{k}"]) for r in members) for k in stages]
        assert list(lines[label].get_ydata()) == pytest.approx(expected)
        assert f"n={len(members)}" in label
        assert f"last stage {100 * statistics.mean(float(r['final_test_acc']) for r in members):.1f} %" in label
    assert "88.3 / 90.4 / 91.7" in fig.texts[0].get_text()


def test_probe_panels_split_by_the_sweep_cell_of_the_run_name():
    """Figure 7: reports of one architecture at two aux depths are two panels, named by the run's axes."""
    from lwt.report.figures.fig7_probes import cell_title

    report = {"model": "simple_cnn", "protocol": {"train_images": 1000}}
    assert cell_title({**report, "run": "simple_cnn_greedy/train_subset-1000_k-2_seed0"}) == \
        "simple CNN, 1,000 train images, aux k=2"
    assert cell_title({**report, "run": "simple_cnn_e2e/train_subset-500_k-1_seed2"}) == \
        "simple CNN, 500 train images, aux k=1"
    assert cell_title({**report, "run": "simple_cnn_greedy/seed0"}) == "simple CNN, 1,000 train images"


def _table(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(c for r in rows for c in r))
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)


def _raw(name: str) -> list[dict]:
    with (RESULTS / name).open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("sources, drawn_from", [
    (["gap_cpu.csv", "belilovsky_cifar10_cpu.csv"], {"fig1_depth": {"vgg11", "resnet20", "simple_cnn"},
                                                     "fig2_gap": {"vgg11", "resnet20", "simple_cnn"},
                                                     "fig9_belilovsky": {"belilovsky_k1", "belilovsky_k2",
                                                                         "belilovsky_k3"}}),
    (["early_overfitting_all_stages_cpu.csv"], {"fig3_overfitting": {"simple_cnn"}, "fig4_critical": {"simple_cnn"}}),
    (["swap_cpu.csv"], {"fig10_swap": {"simple_cnn"}}),
])
def test_the_full_scale_table_gets_its_own_figures_of_its_own_rows(tmp_path, sources, drawn_from):
    """A full-scale table beside the CPU ones: figures 1-4, 9 and 10 are drawn again from it as figN_<slug>_full,
    each from the rows of its own claim (C1's architectures at aux k=2 and the largest training set, the 8-block
    CNN, the authors' networks, the swap arms), and the CPU-subset figures stay."""
    import importlib

    results = tmp_path / "results"
    results.mkdir()
    rows = [r for name in sources for r in _raw(name)]
    _table(results / "full_scale_cpu.csv", rows)
    for name in sources:
        (results / name).write_bytes((RESULTS / name).read_bytes())
    assert main(["figures", "--results", str(results), "--out", str(tmp_path / "figs"), "--only", "1,2,3,4,9,10"]) == 0
    for name, models in drawn_from.items():
        assert (tmp_path / "figs" / f"{name}_full.png").is_file()
        assert (tmp_path / "figs" / f"{name}.png").is_file()
        module = importlib.import_module(f"lwt.report.figures.{name}")
        kept = module.full_rows(read_table(results / "full_scale_cpu.csv"))
        assert {r["model"] for r in kept} == models
        if name in ("fig1_depth", "fig2_gap"):  # every gap_cpu row of those (all at aux k=2, 2,000 images)
            assert len(kept) == sum(r["model"] in models for r in _raw("gap_cpu.csv"))
    for name in {"fig9_belilovsky", "fig10_swap"} - set(drawn_from):  # none of its rows: no full-scale figure
        assert not (tmp_path / "figs" / f"{name}_full.png").exists()


def test_the_full_scale_c1_cell_is_aux_k2_at_the_largest_training_set():
    from lwt.report.figures.common import full_scale

    rows = [{"model": m, "model.aux.k": k, "data.train_subset": n}
            for m in ("simple_cnn", "vgg11", "belilovsky_k1") for k in (1.0, 2.0) for n in (2500.0, 45000.0)]
    kept = full_scale(rows, {"simple_cnn", "vgg11"}, aux_k=2)
    assert {(r["model"], r["model.aux.k"], r["data.train_subset"]) for r in kept} == {
        ("simple_cnn", 2.0, 45000.0), ("vgg11", 2.0, 45000.0)}
    assert len(full_scale(rows, {"belilovsky_k1"})) == 4  # no aux k given: every row of the model
    swap = {"model": "simple_cnn", "model.aux.k": 2.0, "data.train_subset": 45000.0, "mode": "e2e",
            "curriculum.init_from": "results/networks/full_scale_cpu/simple_cnn_greedy/train_subset-45000_k-2_seed0"}
    assert full_scale([*rows, swap], {"simple_cnn"}, aux_k=2) == full_scale(rows, {"simple_cnn"}, aux_k=2)


def test_one_legend_entry_per_curve_naming_the_range_of_n_over_panels():
    import matplotlib.pyplot as plt

    from lwt.report.figures.common import figure_legend

    fig, axes = plt.subplots(1, 3, layout="constrained")
    for ax, n in zip(axes, [3, 4, 3]):
        ax.plot([1, 2], [1, 2], label=f"layerwise (greedy) (n={n})")
        ax.plot([1, 2], [2, 1], label="end-to-end (n=3)")
        ax.plot([1, 2], [0, 0], label="critical layer")
    figure_legend(fig, list(axes))
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    plt.close(fig)
    assert labels == ["layerwise (greedy) (n=3-4)", "end-to-end (n=3)", "critical layer"]
