"""Figure 2: how much test accuracy layerwise training gives up against end to end, per architecture and
dataset: E2E minus greedy, paired by seed; bar = mean difference, error bar = its 95 % t-interval (from 3
pairs on; fewer: the pairs' dots only), dots = the seeds (n <= 5). Greedy's accuracy is its last stage;
where the table has ``selected_test_acc`` (the val-selected depth) a hatched bar beside it shows that gap
too, and where it has a compute-matched E2E arm (trained for greedy's FLOPs) a dotted bar shows its gap."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from lwt.analysis.style import COLUMN_IN, DATASET_STYLES, arch_label, dataset_label, legend_outside, method_of
from lwt.report.figures.common import SHOW_SEEDS, full_scale, group, images_note, interval, save, summarize
from lwt.report.figures.fig1_depth import C1_MODELS
from lwt.report.paired import by_seed

TABLES = ["gap.csv", "gap_cpu.csv"]
SWEEP = "gap"
# the bars per architecture: (E2E arm, greedy metric) -> how the legend names it, and the bar's hatch
BARS = {("e2e", "final_test_acc"): ("greedy last stage", ""),
        ("e2e", "selected_test_acc"): ("greedy val-selected depth", "////"),
        ("e2e_matched", "final_test_acc"): ("compute-matched E2E, greedy last stage", "....")}


def full_rows(rows: list[dict]) -> list[dict]:
    return full_scale(rows, C1_MODELS, aux_k=2)


def paired_gaps(rows: list[dict], metric: str = "final_test_acc",
                arm: str = "e2e") -> dict[tuple[str, str], list[float]]:
    """(architecture, dataset) -> [E2E - greedy ``metric``, in points, one per seed where both have it]; ``arm``:
    ``e2e`` (the epoch-matched E2E runs) or ``e2e_matched`` (those trained for greedy's FLOPs)."""
    out: dict[tuple[str, str], list[float]] = {}
    for members in group(rows, "model", "dataset").values():
        side = {method: [r for r in members if method_of(r) == method] for method in (arm, "greedy")}
        _, diffs, _ = by_seed(side[arm], side["greedy"], metric)
        out[(arch_label(members[0]), dataset_label(members[0]))] = [100 * d for d in diffs]
    return out


def make(rows: list[dict], out_dir: Path, source: str, name: str = "fig2_gap") -> list[Path]:
    per_bar = {bar: gaps for bar in BARS if any(r.get(bar[1]) is not None for r in rows)
               and any((gaps := paired_gaps(rows, bar[1], bar[0])).values())}
    bars = list(per_bar)
    keys = [k for k, v in per_bar[("e2e", "final_test_acc")].items() if v]
    datasets = list(dict.fromkeys(d for _, d in keys))
    keys.sort(key=lambda k: datasets.index(k[1]))
    fig, ax = plt.subplots(figsize=(2 * COLUMN_IN, 2.0))
    width = 0.8 / len(bars)
    labels, seen = [], set()
    for i, key in enumerate(keys):
        for j, bar in enumerate(bars):
            values = per_bar[bar].get(key) or []
            if not values:
                continue
            s = summarize(values)
            half = interval(s)
            x = i + (j - (len(bars) - 1) / 2) * width
            look = DATASET_STYLES[datasets.index(key[1]) % len(DATASET_STYLES)]  # greys: no method's colour
            what, bar_hatch = BARS[bar]
            legend = f"{key[1]}, {what}" if len(bars) > 1 else key[1]
            hatch = ((look["hatch"] or "") + bar_hatch) or None
            ax.bar(x, s.mean, width=width * 0.9, yerr=half, color=look["color"], capsize=2, hatch=hatch,
                   edgecolor="white" if hatch else None, label=legend if legend not in seen else None)
            seen.add(legend)
            if len(values) <= SHOW_SEEDS:
                ax.scatter([x] * len(values), values, s=6, color="black", edgecolors="white", linewidths=0.3,
                           zorder=3)
            top = max([s.mean + (half or 0), *values]) if s.mean >= 0 else min([s.mean - (half or 0), *values])
            ax.text(x, top + (0.3 if s.mean >= 0 else -0.3), f"{s.mean:.1f}", ha="center",
                    va="bottom" if s.mean >= 0 else "top", fontsize=5)
        n = len(per_bar[("e2e", "final_test_acc")][key])
        labels.append(f"{key[0]}\n(n={n})")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.margins(y=0.15)  # room for the value labels above (or below) the bars
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("E2E - greedy test acc. (points)")
    legend_outside(ax)
    ax.set_title(f"E2E - greedy, paired by seed, {images_note(rows)}:\nmean, 95 % t-interval (n >= 3), dots: "
                 "seeds, n = pairs;\n"
                 f"{' / '.join(BARS[b][0] for b in bars)}")
    return save(fig, out_dir, name, source)
