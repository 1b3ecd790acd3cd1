"""Figure 5: remedies for the early layers against plain greedy and plain E2E: final test accuracy per
experiment (the last stage for greedy runs, after fine-tuning where there is one): mean, 95 % t-interval
over seeds (none for one seed) and the seeds as dots (n <= 5)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from lwt.analysis.style import COLUMN_IN, MODES, arch_label, experiment_label, method_of
from lwt.report.figures.common import SHOW_SEEDS, group, save, summarize

TABLES = ["remedies.csv", "remedies_cpu.csv"]
SWEEP = "remedies"


def make(rows: list[dict], out_dir: Path, source: str) -> list[Path]:
    runs = group(rows, "experiment")
    fig, ax = plt.subplots(figsize=(COLUMN_IN, 2.4), layout="constrained")
    names = sorted(runs, key=lambda key: method_of(runs[key][0]) != "greedy")  # plain greedy first
    for i, (experiment,) in enumerate(names):
        members = runs[(experiment,)]
        values = [100 * r["final_test_acc"] for r in members if r.get("final_test_acc") is not None]
        s = summarize(values)
        color = MODES[method_of(members[0])]["color"]  # one colour per method, as in every figure
        ax.barh(i, s.mean, xerr=s.half, color=color, capsize=2)
        if len(values) <= SHOW_SEEDS:
            ax.scatter(values, [i] * len(values), s=4, color="black", zorder=3, linewidths=0)
        ax.text(max([s.mean + (s.half or 0), *values]) + 0.3, i, f"{s.mean:.1f} (n={s.n})", va="center", fontsize=5)
    ax.set_yticks(range(len(names)), [experiment_label(runs[key][0]) for key in names])
    ax.set_xlabel("test accuracy (%), last stage")
    archs = ", ".join(dict.fromkeys(arch_label(r) for r in rows))
    ax.set_title(f"Remedies vs plain greedy, {archs}\nmean, 95 % t-interval, dots: seeds", fontsize=6)
    ax.invert_yaxis()  # the first experiment (plain greedy) on top
    ax.margins(x=0.3)  # room for the value labels right of the bars
    return save(fig, out_dir, "fig5_remedies", source)
