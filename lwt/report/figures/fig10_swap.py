"""Figure 10: the swap test of claim C3. Blocks j+1..N trained end to end on frozen blocks 1..j of an E2E network
vs on frozen blocks 1..j of a greedy network of the same seed, same budget, for each dose j. Left: final test
accuracy against j, one line per source (the source's colour: E2E's blocks in E2E's, greedy's in greedy's).
Right: E2E's blocks minus greedy's, paired by seed (``report.paired.by_seed``), per j, with a line at zero: if
greedy's early blocks are worse for what follows, the difference is above zero and grows with j."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt

from lwt.analysis.style import COLUMN_IN, MODES
from lwt.report.figures.common import SHOW_SEEDS, figure_legend, group, images_note, interval, save
from lwt.report.paired import by_seed
from lwt.report.stats import summarize

TABLES = ["swap.csv", "swap_cpu.csv"]
SWEEP = "swap"
METRIC = "final_test_acc"
SOURCES = {"e2e": "on frozen E2E blocks 1..j", "greedy": "on frozen greedy blocks 1..j"}
ARM = re.compile(r"swap_from_(e2e|greedy)(\d+)$")  # an arm's experiment name: its source and j


def arms(rows: list[dict]) -> dict[str, dict[int, list[dict]]]:
    """source (e2e / greedy) -> j -> its runs; the source and j from the experiment name
    (``*_swap_from_<source><j>``), j checked against ``curriculum.init_blocks`` where the table has the column."""
    out: dict[str, dict[int, list[dict]]] = {}
    for (experiment,), runs in group(rows, "experiment").items():
        m = ARM.search(str(experiment))
        if not m:
            continue
        j = int(m.group(2))
        if any(r.get("curriculum.init_blocks") not in (None, j) for r in runs):
            raise ValueError(f"{experiment}: curriculum.init_blocks differs from the j of its name")
        out.setdefault(m.group(1), {})[j] = runs
    if set(out) != set(SOURCES):
        raise ValueError("the table needs swap_from_e2e<j> and swap_from_greedy<j> experiments")
    return out


def full_rows(rows: list[dict]) -> list[dict]:
    """The full-scale table's swap arms (C3-full), none before they have run: fig10_swap_full."""
    return [r for r in rows if ARM.search(str(r.get("experiment")))]


def _point(ax, x: float, values: list[float], style: dict, label: str | None = None) -> None:
    s = summarize(values)
    half = interval(s)
    ax.errorbar(x, s.mean, yerr=half, fmt=style["marker"], color=style["color"], capsize=2, markersize=4,
                elinewidth=1.2, label=label)
    if len(values) <= SHOW_SEEDS:
        ax.scatter([x + 0.08] * len(values), values, s=5, color="black", linewidths=0, zorder=3)


def make(rows: list[dict], out_dir: Path, source: str, name: str = "fig10_swap") -> list[Path]:
    by_source = arms(rows)
    doses = sorted(set(by_source["e2e"]) & set(by_source["greedy"]))
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * COLUMN_IN, 2.1), layout="constrained")
    for src, label in SOURCES.items():
        style = MODES[src]
        means = []
        for j in doses:
            values = [100 * r[METRIC] for r in by_source[src][j] if r.get(METRIC) is not None]
            _point(left, j + (-0.1 if src == "e2e" else 0.1), values,
                   style, f"{label} (n={len(values)})" if j == doses[0] else None)
            means.append(summarize(values).mean)
        left.plot([j + (-0.1 if src == "e2e" else 0.1) for j in doses], means, color=style["color"], linewidth=1)
    left.set_xlabel("j (frozen blocks copied from the source)")
    left.set_ylabel("test accuracy (%)")
    left.set_xticks(doses)
    figure_legend(fig, [left], ncol=2)
    left.set_title(f"blocks j+1..N trained end to end, same budget, {images_note(rows)}", fontsize=6)
    for j in doses:
        seeds, diffs, s = by_seed(by_source["e2e"][j], by_source["greedy"][j],
                                  lambda r: None if r.get(METRIC) is None else 100 * r[METRIC])
        _point(right, j, diffs, MODES["e2e"])
        half = interval(s)
        text = (f"{s.mean:+.1f} [{s.mean - half:+.1f}, {s.mean + half:+.1f}]" if half is not None
                else f"{s.mean:+.1f}, no interval") + f"\n(n={s.n})"
        right.annotate(text, xy=(j, 1.02), xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=5)
    right.axhline(0, color="black", linewidth=0.8, zorder=1)
    right.set_xticks(doses)
    right.set_xlabel("j")
    right.set_ylabel("E2E's blocks - greedy's (points)")
    fig.suptitle("Swap test (C3): are greedy's early blocks worse for what follows? Paired by seed; 95 % "
                 "t-interval where n >= 3, dots: seeds", fontsize=7)
    return save(fig, out_dir, name, source)
