"""Figure 5: remedies for the early layers as a forest plot: per remedy, its final test accuracy minus plain
greedy's, paired by seed (``report.paired.by_seed``: the same seed shares data, subset and initial weights, so
the difference varies less than either accuracy). One row per remedy: the mean difference, its 95 % t-interval
(from 3 pairs on; fewer: the pairs only) and the pairs as dots; a vertical line at zero (plain greedy). E2E of
the same cell, where the table has it, is a last row set apart: the gap a remedy would have to close. Final
test accuracy: the last stage for greedy runs, after fine-tuning where there is one."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt

from lwt.analysis.style import COLUMN_IN, MODES, arch_label, experiment_label, method_of
from lwt.report.figures.common import SHOW_SEEDS, group, interval, save
from lwt.report.paired import by_seed

TABLES = ["remedies.csv", "remedies_cpu.csv"]
SWEEP = "remedies"
METRIC = "final_test_acc"


def paired_rows(rows: list[dict]) -> list[dict]:
    """One entry per (architecture, remedy), E2E last: label, method, the seeds, the differences to plain greedy
    in points and their summary. A table without plain greedy runs of an architecture has nothing to pair."""
    out = []
    for (_model,), members in group(rows, "model").items():
        experiments = group(members, "experiment")
        plain = [r for (_,), runs in experiments.items() for r in runs if method_of(r) == "greedy"]
        if not plain:
            raise ValueError(f"no plain greedy runs of {arch_label(members[0])} to pair the remedies with")
        others = [runs for runs in experiments.values() if method_of(runs[0]) != "greedy"]
        others.sort(key=lambda runs: runs[0]["mode"] == "e2e")  # E2E last, the remedies in table order
        for runs in others:
            seeds, diffs, s = by_seed(runs, plain, lambda r: None if r.get(METRIC) is None else 100 * r[METRIC])
            label = experiment_label(runs[0]).removeprefix(MODES["greedy"]["label"] + ": ")
            out.append({"label": label + (" (for scale)" if runs[0]["mode"] == "e2e" else ""), "model": _model,
                        "arch": arch_label(runs[0]), "method": method_of(runs[0]), "seeds": seeds, "diffs": diffs,
                        "summary": s})
    return [p for p in out if p["seeds"]]


def make(rows: list[dict], out_dir: Path, source: str) -> list[Path]:
    pairs = paired_rows(rows)
    several = len({p["model"] for p in pairs}) > 1
    fig, ax = plt.subplots(figsize=(COLUMN_IN, 0.9 + 0.32 * len(pairs)), layout="constrained")
    for i, p in enumerate(pairs):
        s, style = p["summary"], MODES[p["method"]]
        half = interval(s)
        if half is not None:
            ax.errorbar(s.mean, i, xerr=half, fmt=style["marker"], color=style["color"], capsize=2, markersize=4,
                        elinewidth=1.2)
        else:
            ax.plot(s.mean, i, style["marker"], color=style["color"], markersize=4)
        if len(p["diffs"]) <= SHOW_SEEDS:
            ax.scatter(p["diffs"], [i + 0.18] * len(p["diffs"]), s=5, color="black", linewidths=0, zorder=3)
        text = (f"{s.mean:+.1f} [{s.mean - half:+.1f}, {s.mean + half:+.1f}]" if half is not None
                else f"{s.mean:+.1f}, no interval") + f" (n={s.n})"
        ax.annotate(text, xy=(1.02, i), xycoords=("axes fraction", "data"), va="center", fontsize=5,
                    annotation_clip=False)
        if p["method"] == "e2e" and i:
            ax.axhline(i - 0.5, color="0.6", linewidth=0.5, linestyle=":")
    ax.axvline(0, color="black", linewidth=0.8, zorder=1)
    labels = [f"{p['arch']}: {p['label']}" if several else p["label"] for p in pairs]
    ax.set_yticks(range(len(pairs)), [textwrap.fill(label, 22) for label in labels])  # long ones squeeze the axes
    ax.set_ylim(len(pairs) - 0.5, -0.5)  # the first remedy on top
    ax.set_xlabel("test acc. minus plain greedy's\n(points, paired by seed)")
    archs = ", ".join(dict.fromkeys(p["arch"] for p in pairs))
    ax.set_title(f"Remedies vs plain greedy (line at 0), {archs}\nmean difference, 95 % t-interval (n >= 3), "
                 "dots: seed pairs", fontsize=6)
    return save(fig, out_dir, "fig5_remedies", source)
