"""Figure 2: how much final test accuracy layerwise training gives up against end to end, per architecture
and dataset: E2E minus greedy, paired by seed, mean +- std over seeds."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from lwt.figures.common import COLUMN_IN, arch_label, dataset_label, group, mean_std, save

TABLES = ["gap.csv", "gap_cpu.csv"]
SWEEP = "gap"


def paired_gaps(rows: list[dict]) -> dict[tuple[str, str], list[float]]:
    """(architecture, dataset) -> [E2E - greedy final test accuracy, in points, one per seed with both]."""
    out: dict[tuple[str, str], list[float]] = {}
    for (_model, _dataset), members in group(rows, "model", "dataset").items():
        by_seed = {(r["mode"], r["seed"]): r["final_test_acc"] for r in members}
        seeds = sorted({s for m, s in by_seed if m == "greedy"} & {s for m, s in by_seed if m == "e2e"})
        key = (arch_label(members[0]), dataset_label(members[0]))
        out[key] = [100 * (by_seed[("e2e", s)] - by_seed[("greedy", s)]) for s in seeds]
    return out


def make(rows: list[dict], out_dir: Path, source: str) -> list[Path]:
    gaps = {k: v for k, v in paired_gaps(rows).items() if v}
    gaps = dict(sorted(gaps.items(), key=lambda kv: list(dict.fromkeys(d for _, d in gaps)).index(kv[0][1])))
    datasets = list(dict.fromkeys(d for _, d in gaps))
    fig, ax = plt.subplots(figsize=(2 * COLUMN_IN, 2.0))
    colors = ["#4c72b0", "#dd8452", "#55a868"]
    labels = []
    for i, (key, values) in enumerate(gaps.items()):
        m, s, n = mean_std(values)
        c = colors[datasets.index(key[1]) % len(colors)]
        first = key[1] not in ax.get_legend_handles_labels()[1]  # one legend entry per dataset
        ax.bar(i, m, yerr=s, color=c, capsize=2, label=key[1] if first else None)
        ax.text(i, m + s + 0.3 if m >= 0 else m - s - 0.3, f"{m:.1f}", ha="center",
                va="bottom" if m >= 0 else "top", fontsize=5)
        labels.append(f"{key[0]}\n(n={n})")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.margins(y=0.15)  # room for the value labels above (or below) the bars
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("E2E - greedy test acc. (points)")
    ax.legend(frameon=False)
    ax.set_title(f"Greedy-vs-E2E gap per architecture and dataset ({source})")
    return save(fig, out_dir, "fig2_gap")
