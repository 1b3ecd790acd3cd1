"""Figure 6: linear CKA between the blocks of two networks of the same architecture (greedy vs E2E, and two E2E
seeds as the noise floor), from the JSON reports `lwt cka` writes (one heatmap per report, one colour scale). Each
heatmap is one pair of runs (n=1, said in its title): no interval."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from lwt.analysis.plots import draw_cka
from lwt.analysis.style import ARCH_NAMES, COLUMN_IN, MODES, arch_label
from lwt.report.figures.common import read_reports, save

FOLDER = "cka"  # results/cka/*.json, copied from the run directories `lwt cka` wrote them into


def load(results: Path) -> list[dict]:
    return read_reports(results / FOLDER)


def report_arch(report: dict) -> str:
    """The architecture of a report's first network: its ``model_a`` where the report records it, else the
    registry name its experiment starts with (``vgg11_greedy`` -> vgg11)."""
    if report.get("model_a"):
        return arch_label({"model": report["model_a"], "git_revision": report.get("git_revision_a")})
    experiment = report["a"].split("/")[0]
    name = max((n for n in ARCH_NAMES if experiment.startswith(n + "_")), key=len, default=experiment)
    return arch_label({"model": name})  # no revision: a name in RENAMED reads as its first network


def make(reports: list[dict], out_dir: Path, source: str) -> list[Path]:
    # panel widths follow the matrices' columns, so equal-aspect heatmaps leave no gap between them
    widths = [len(r["depths_b"]) for r in reports]
    height = max(len(r["depths_a"]) for r in reports)
    fig, axes = plt.subplots(1, len(reports), figsize=(min(2 * COLUMN_IN, 1.2 + 0.3 * sum(widths)),
                                                       0.9 + 0.27 * height),
                             squeeze=False, width_ratios=widths, layout="constrained")
    image = None
    for ax, r in zip(axes[0], reports):
        image = draw_cka(ax, r["cka"], r["depths_a"], r["depths_b"], fontsize=4.5, colorbar=False)
        ax.set_xlabel(f"{MODES[r['mode_b']]['label']}: block")
        ax.set_ylabel(f"{MODES[r['mode_a']]['label']}: block")
        floor = ", two seeds: noise floor" if r["mode_a"] == r["mode_b"] else ""
        ax.set_title(f"{report_arch(r)}, {r['samples']:,} test images\none pair of runs (n=1){floor}", fontsize=6)
    fig.colorbar(image, ax=list(axes[0]), fraction=0.03, pad=0.02, label="linear CKA")
    fig.suptitle("Linear CKA between the blocks of two networks of one architecture (axes: their methods)",
                 fontsize=7)
    return save(fig, out_dir, "fig6_cka", source)
