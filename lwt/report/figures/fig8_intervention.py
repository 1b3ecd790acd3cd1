"""Figure 8: the intervention (experiments/sweeps/intervention.yaml), a causal test of C3: greedy test
accuracy vs depth for plain greedy, greedy started on E2E's blocks 1..j (copied and frozen: its depths 1..j are
E2E's own read-outs), greedy with blocks 1..j stopped early and greedy with blocks 1..j trained less at the same
total budget, seeds drawn as common.py says; each arm's n and L* per seed (the paired test on its archived
validation outputs, as figure 4) in the legend. Colours: plain greedy is the greedy method, blocks stopped early the
remedy it is (fewer early epochs), greedy on E2E's blocks an arm of its own (``style.ARMS``), never E2E's colour:
those runs are greedy runs."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt

from lwt.analysis.style import ARMS, COLUMN_IN, DEPTH_LABEL, MODES, arch_label, legend_outside
from lwt.report.figures.common import CI_NOTE, curve, errorband, group, save
from lwt.report.figures.fig4_critical import read  # noqa: F401 -- the table with each run's paired-test L*

TABLES = ["intervention.csv", "intervention_cpu.csv"]
SWEEP = "intervention"
STYLES = ["--", ":", (0, (5, 1, 1, 1))]  # the j-th arm of a kind: another dash, same colour


def arm_label(row: dict) -> tuple[str, str]:
    """(label, kind) of a run of the intervention sweep, from its experiment name; kind: ``greedy``,
    ``remedy`` (a MODES key) or ``from_e2e`` (an ARMS key)."""
    experiment = str(row["experiment"])
    j = m.group(1) if (m := re.search(r"(\d+)$", experiment)) else "j"
    if "_from_e2e" in experiment:
        return f"greedy on E2E's blocks 1-{j} (frozen)", "from_e2e"
    if "_early_stop" in experiment:
        return f"greedy, blocks 1-{j} stopped early", "remedy"
    if "_early_short" in experiment:
        return f"greedy, blocks 1-{j} trained less (same total)", "remedy"
    return "plain greedy", "greedy"


def make(rows: list[dict], out_dir: Path, source: str) -> list[Path]:
    fig, ax = plt.subplots(figsize=(2 * COLUMN_IN, 2.4), layout="constrained")
    drawn: dict[str, int] = {}
    for (_experiment,), members in group(rows, "experiment").items():
        label, kind = arm_label(members[0])
        style = "-" if kind == "greedy" else STYLES[drawn.get(kind, 0) % len(STYLES)]
        drawn[kind] = drawn.get(kind, 0) + 1
        critical = ", ".join(str(int(r["critical_layer"])) if r.get("critical_layer") else "-" for r in members)
        c = curve(members, "test_acc_stage")
        errorband(ax, c, ARMS.get(kind) or MODES[kind], linestyle=style,
                  label=f"{label}\n(n={c.n}; L* per seed: {critical})")
    ax.set_xlabel(DEPTH_LABEL)
    ax.set_ylabel("test accuracy (%)")
    legend_outside(ax)
    ax.set_title(f"Intervention on the early blocks, {arch_label(rows[0])}: does greedy still saturate?\n{CI_NOTE}")
    return save(fig, out_dir, "fig8_intervention", source)
