"""Figure 8: the intervention (experiments/sweeps/intervention.yaml), a causal test of C3: greedy test
accuracy vs depth for plain greedy, greedy started on E2E's blocks 1..j (copied and frozen: its depths 1..j are
E2E's own read-outs) and greedy with blocks 1..j stopped early. Mean and 95 %
t-interval over seeds, the seeds as dots; each arm's critical layer per seed in the legend."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt

from lwt.analysis.style import COLUMN_IN, DEPTH_LABEL, arch_label, legend_outside
from lwt.report.figures.common import curve, errorband, group, save

TABLES = ["intervention.csv", "intervention_cpu.csv"]
SWEEP = "intervention"
STYLES = ["--", ":", (0, (5, 1, 1, 1))]  # the j-th arm of a kind: another dash, same method colour


def arm_label(row: dict) -> tuple[str, str]:
    """(label, MODES key of its colour) of a run of the intervention sweep, from its experiment name."""
    experiment = str(row["experiment"])
    j = m.group(1) if (m := re.search(r"(\d+)$", experiment)) else "j"
    if "_from_e2e" in experiment:
        return f"greedy on E2E's blocks 1-{j} (frozen)", "e2e"
    if "_early_stop" in experiment:
        return f"greedy, blocks 1-{j} stopped early", "remedy"
    return "plain greedy", "greedy"


def make(rows: list[dict], out_dir: Path, source: str) -> list[Path]:
    fig, ax = plt.subplots(figsize=(2 * COLUMN_IN, 2.4), layout="constrained")
    drawn: dict[str, int] = {}
    for (_experiment,), members in group(rows, "experiment").items():
        label, mode = arm_label(members[0])
        style = "-" if mode == "greedy" else STYLES[drawn.get(mode, 0) % len(STYLES)]
        drawn[mode] = drawn.get(mode, 0) + 1
        critical = ", ".join(str(int(r["critical_layer"])) if r.get("critical_layer") else "-" for r in members)
        depths, stats, seeds = curve(members, "test_acc_stage")
        errorband(ax, depths, stats, mode, linestyle=style, seeds=seeds,
                  label=f"{label}\n(n={len(members)}; critical layer per seed: {critical})")
    ax.set_xlabel(DEPTH_LABEL)
    ax.set_ylabel("test accuracy (%)")
    legend_outside(ax)
    ax.set_title(f"Intervention on the early blocks, {arch_label(rows[0])}: does greedy still saturate?\n"
                 "mean, 95 % t-interval, dots: seeds")
    return save(fig, out_dir, "fig8_intervention", source)
