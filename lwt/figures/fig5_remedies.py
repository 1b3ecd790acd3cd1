"""Figure 5: remedies for the early layers against plain greedy and plain E2E: final test accuracy per
experiment (mean +- std over seeds)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from lwt.figures.common import COLUMN_IN, MODES, group, mean_std, save

TABLES = ["remedies.csv", "remedies_cpu.csv"]
SWEEP = "remedies"


def make(rows: list[dict], out_dir: Path, source: str) -> list[Path]:
    runs = group(rows, "experiment")
    fig, ax = plt.subplots(figsize=(COLUMN_IN, 2.4))
    names = list(runs)
    for i, (experiment,) in enumerate(names):
        members = runs[(experiment,)]
        m, s, n = mean_std([r["final_test_acc"] for r in members])
        mode = members[0]["mode"]
        color = MODES.get(mode, {"color": "#55a868"})["color"]
        ax.barh(i, 100 * m, xerr=100 * s, color=color, capsize=2)
        ax.text(100 * m + 0.3, i, f"{100 * m:.1f}", va="center", fontsize=5)
    ax.set_yticks(range(len(names)), [str(e).replace("belilovsky_k2_", "") for (e,) in names])
    ax.set_xlabel("final test accuracy (%)")
    ax.set_title(f"Remedies vs greedy and E2E ({source})")
    return save(fig, out_dir, "fig5_remedies")
