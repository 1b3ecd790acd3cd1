"""Figure 7: linear-probe accuracy on every block's frozen output, greedy vs E2E, from the JSON reports
`lwt probe` writes: one panel per architecture and sweep cell (the run name without its seed: training-set
size, aux k, ...), a method's reports there (its seeds) drawn as common.py says; probe test solid, probe train
dashed."""

from __future__ import annotations

import re
from pathlib import Path

from lwt.analysis.style import DEPTH_LABEL, MODES, arch_label, model_name
from lwt.report.figures.common import CI_NOTE, Curve, errorband, figure_legend, panels, read_reports, save

FOLDER = "probes"  # results/probes/*.json, copied from the run directories `lwt probe` wrote them into


def load(results: Path) -> list[dict]:
    return read_reports(results / FOLDER)


def cell_title(report: dict) -> str:
    """The panel's title: the architecture and the sweep axes of the run name (``train_subset-1000_k-2_seed0``
    -> 1,000 train images, aux k=2); a run name without axes: the probe's training-set size."""
    axes = re.findall(r"(?:^|_)([a-z_]+?)-([^_]+)", re.sub(r"_?seed\d+$", "", report["run"].split("/")[-1]))
    names = {"train_subset": lambda v: f"{int(v):,} train images", "k": lambda v: f"aux k={v}"}
    parts = [names.get(key, lambda v, key=key: f"{key}={v}")(value) for key, value in axes]
    return ", ".join([arch_label(report), *(parts or [f"{report['protocol']['train_images']:,} train images"])])


def make(reports: list[dict], out_dir: Path, source: str) -> list[Path]:
    cells: dict[tuple, list[dict]] = {}
    for r in reports:
        cells.setdefault((model_name(r), cell_title(r)), []).append(r)
    fig, axes = panels(len(cells), width_in=3.4 * min(len(cells), 2), per_row=2, height_in=2.0)
    for ax, mine in zip(axes, cells.values()):
        for mode in (m for m in MODES if any(r["mode"] == m for r in mine)):
            seeds = [r for r in mine if r["mode"] == mode]
            for metric, linestyle, what in (("test_acc", "-", "probe test"), ("train_acc", "--", "probe train")):
                c = Curve([{row["depth"]: 100 * row[metric] for row in r["rows"]} for r in seeds])
                errorband(ax, c, MODES[mode], linestyle=linestyle, label=f"{MODES[mode]['label']}: {what} (n={c.n})")
        ax.set_title(cell_title(mine[0]))
        ax.set_xlabel(DEPTH_LABEL)
        ax.set_ylabel("probe accuracy (%)")
    pools = sorted({r["protocol"]["pool"] for r in reports})
    figure_legend(fig, axes, ncol=2 if len(cells) > 1 else 1)
    fig.suptitle(f"Linear probes on each block's frozen output, {'/'.join(f'{p}x{p}' for p in pools)}-pooled\n"
                 f"{CI_NOTE}", fontsize=6)
    return save(fig, out_dir, "fig7_probes", source)
