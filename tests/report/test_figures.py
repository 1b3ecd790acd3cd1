"""`lwt figures` rebuilds the paper figures from the committed result tables (and from tables with the newer
columns), drawing 95 % t-intervals; the notebook runs headless."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

import pytest

from lwt.analysis.style import arch_label
from lwt.cli import main
from lwt.report.figures import fig2_gap
from lwt.report.figures.common import curve, read_table

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


def test_gap_figure_pairs_runs_by_seed():
    """E2E - greedy per seed, from the raw CSV cells, equals what figure 2 plots."""
    with (RESULTS / "gap_cpu.csv").open(newline="") as f:
        raw = [r for r in csv.DictReader(f) if r["model"] == "vgg11"]
    acc = {(r["mode"], r["seed"]): float(r["final_test_acc"]) for r in raw}
    seeds = sorted({s for _, s in acc})
    expected = [100 * (acc[("e2e", s)] - acc[("greedy", s)]) for s in seeds]
    gaps = fig2_gap.paired_gaps(read_table(RESULTS / "gap_cpu.csv"))
    assert len(expected) >= 2
    assert gaps[("VGG-11", "CIFAR-10")] == pytest.approx(expected)


def test_a_missing_table_is_named_with_the_command_that_makes_it(tmp_path, capsys):
    assert main(["figures", "--results", str(tmp_path), "--out", str(tmp_path / "figs"), "--only", "1"]) == 1
    out = capsys.readouterr().out
    assert "skipped fig1_depth: no table" in out
    assert "lwt sweep experiments/sweeps/gap.yaml" in out
    assert main(["figures", "--only", "10"]) == 2
    assert "figures are numbered 1-9" in capsys.readouterr().err


@pytest.mark.slow
def test_notebook_executes_headless():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(ROOT / "notebooks" / "explore_results.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                      for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", []))
    assert "runs:" in outputs and "fig1_depth.png" in outputs and "CIFAR-10" in outputs


def test_curves_carry_the_t_interval_and_the_seeds():
    """Figures 1, 3, 4 draw mean +- t_{0.975, n-1} SD / sqrt(n) (not +-1 SD) and the seeds themselves."""
    rows = [r for r in read_table(RESULTS / "gap_cpu.csv") if r["model"] == "vgg11" and r["mode"] == "greedy"]
    depths, stats, seeds = curve(rows, "test_acc_stage")
    n = len(rows)
    assert depths[0] == 1 and n >= 2
    xs = [100 * r["test_acc_stage1"] for r in rows]
    assert seeds[0] == xs
    t = {2: 12.706205, 3: 4.302653}[n]  # t_{0.975, n-1}
    assert stats[0].half == pytest.approx(t * statistics.stdev(xs) / math.sqrt(n), abs=1e-4)


@pytest.mark.slow
def test_figures_rebuild_from_tables_with_the_val_selected_columns(tmp_path, capsys):
    """Tables written after result.json gained selected_depth / selected_test_acc / ensemble_test_acc: figures
    1, 2 and 4 still build, and figure 2 pairs the val-selected accuracy by seed too."""
    for name in ("gap_cpu.csv", "early_overfitting_cpu.csv"):
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
    acc = {(r["mode"], r["seed"]): r["test_acc_stage2"] for r in rows if r["model"] == "vgg11"}
    expected = [100 * (acc[("e2e", s)] - acc[("greedy", s)]) for s in sorted({s for _, s in acc})]
    assert fig2_gap.paired_gaps(rows, "selected_test_acc")[("VGG-11", "CIFAR-10")] == pytest.approx(expected)


# ---------------------------------------------------------------- one style

CODE_NAMES = ("simple_cnn", "belilovsky_k", "s2d_cnn", "vgg11", "resnet20", "_greedy", "_e2e", "imagefolder")


def _remedies_table(path: Path) -> None:
    """A remedies-shaped table from the committed gap rows (one architecture), one experiment per method."""
    with (RESULTS / "gap_cpu.csv").open(newline="") as f:
        raw = [r for r in csv.DictReader(f) if r["model"] == "vgg11"]
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
    figures, close = {}, plt.close
    with pytest.MonkeyPatch.context() as mp:  # keep each figure open once saved, to inspect its artists
        mp.setattr(plt, "close", lambda fig=None: figures.setdefault(len(figures) + 1, fig))
        assert main(["figures", "--results", str(results), "--out", str(tmp_path_factory.mktemp("figs"))]) == 0
    yield figures
    for fig in figures.values():
        close(fig)


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

    optional = ("intervention_cpu.csv", "belilovsky_cifar10_cpu.csv")  # figures 8 and 9
    assert len(drawn) == 7 + sum((RESULTS / name).is_file() for name in optional)
    for number, fig in drawn.items():
        texts = _texts(fig)
        assert texts, number
        bad = [t for t in texts if ".csv" in t or "_cpu" in t or any(c in t for c in CODE_NAMES)]
        assert not bad, f"figure {number}: file or code names on the figure: {bad}"
        depth_axes = [ax.get_xlabel() for ax in fig.axes if "depth" in ax.get_xlabel() or "block" in ax.get_xlabel()]
        if number in (1, 3, 4, 7):  # accuracy against depth: one wording everywhere
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
                        seen[mode].add((number, to_hex(line.get_color())))
    assert {n for n, _ in seen["greedy"]} == {1, 3, 4, 7} and {n for n, _ in seen["e2e"]} == {1, 3, 4, 7}
    for mode in ("greedy", "e2e"):
        assert {c for _, c in seen[mode]} == {MODES[mode]["color"].lower()}, mode
    # figure 5: one bar per experiment, in its method's colour; figure 2's dataset bars wear no method's colour
    labels = [t.get_text() for t in drawn[5].axes[0].get_yticklabels()]
    colours = [to_hex(p.get_facecolor()) for p in drawn[5].axes[0].patches]
    expected = ["greedy", "e2e", "remedy", "dgl", "greedy+finetune"]
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
        if number in (1, 2, 3, 4, 7):
            assert legends, f"figure {number} has no legend"
        for legend in legends:
            box = legend.get_window_extent(renderer)
            for ax in fig.axes:
                if ax.get_label() == "<colorbar>":
                    continue
                assert not box.overlaps(ax.get_window_extent(renderer)), f"figure {number}: legend over an axes"


def test_belilovsky_figure_draws_each_k_from_its_rows(drawn):
    """Figure 9 (claim K): one greedy curve per auxiliary depth in the table, its points the per-stage means of
    that network's rows, and the legend's last-stage number their final accuracy."""
    with (RESULTS / "belilovsky_cifar10_cpu.csv").open(newline="") as f:
        raw = list(csv.DictReader(f))
    fig = drawn[9]
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
