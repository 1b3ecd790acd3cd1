"""Figure 6: linear CKA between the blocks of a greedy and an E2E network of the same architecture, from the
JSON reports `lwt cka` writes (one heatmap per report found, side by side)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from lwt.figures.common import COLUMN_IN, read_reports, save
from lwt.plots import draw_cka

FOLDER = "cka"  # results/cka/*.json, copied from the run directories `lwt cka` wrote them into


def load(results: Path) -> list[dict]:
    return read_reports(results / FOLDER)


def make(reports: list[dict], out_dir: Path, source: str) -> list[Path]:
    fig, axes = plt.subplots(1, len(reports), figsize=(COLUMN_IN * min(len(reports), 2), 2.6), squeeze=False)
    for ax, r in zip(axes[0], reports):
        draw_cka(ax, r["cka"], r["depths_a"], r["depths_b"], fontsize=5)
        ax.set_xlabel(f"{r['mode_b']} block")
        ax.set_ylabel(f"{r['mode_a']} block")
        ax.set_title(f"{r['a'].split('/')[0]}\nvs {r['b'].split('/')[0]}, {r['samples']} test images", fontsize=6)
    fig.suptitle(f"Linear CKA between blocks ({source})", fontsize=7)
    return save(fig, out_dir, "fig6_cka")
