"""Figures drawn from result.json files (never from typed-in numbers)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lwt.analysis.style import DEPTH_LABEL, MODES, STYLE, legend_outside, method_of  # noqa: E402
from lwt.run.result import RunResult  # noqa: E402


def _save(fig, out_stem: Path, undated: bool = False) -> list[Path]:
    """``out_stem.png`` and ``.pdf`` (``undated``: no CreationDate in the PDF); the figure is closed. Run names hold
    dots (lr-0.1), so the suffixes are appended, not swapped in with with_suffix."""
    stem = out_stem.with_suffix("") if out_stem.suffix.lower() in (".png", ".pdf") else out_stem
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.pdf"]
    for p in paths:
        fig.savefig(p, metadata={"CreationDate": None} if undated and p.suffix == ".pdf" else None)
    plt.close(fig)
    return paths


def depth_figure(results: list[RunResult], out_stem: Path, title: str | None = None,
                 train: bool = False) -> list[Path]:
    """Test accuracy vs depth, a line per result (greedy: after each stage; E2E: per-block readouts); PNG + PDF.
    ``train``: also each result's un-augmented train accuracy per depth (``per_layer``), dashed, same colour."""
    fig, ax = plt.subplots(figsize=(5.4 if train else 3.4, 2.6), dpi=150)
    for r in results:
        style = MODES[method_of({"mode": r.mode, "experiment": r.experiment})]
        label = style["label"] + (" (aux readouts)" if r.mode == "e2e" else "")
        ax.plot(r.depths, [100 * row.test_acc for row in r.stages], label=label + (", test" if train else ""),
                color=style["color"], marker=style["marker"])
        if train and r.per_layer:
            ax.plot([row.depth for row in r.per_layer], [100 * row.train_acc for row in r.per_layer],
                    label=f"{style['label']}, train (un-augmented)", color=style["color"], linestyle="--",
                    marker=style["marker"], markerfacecolor="none")
    ax.set_xlabel(DEPTH_LABEL)
    ax.set_ylabel("accuracy (%)" if train else "test accuracy (%)")
    ax.set_xticks(sorted({d for r in results for d in r.depths}))
    ax.grid(alpha=0.3)
    if train:  # four lines: the legend goes beside the axes, off the data
        legend_outside(ax, fontsize=7)
    else:
        ax.legend(fontsize=7, frameon=False)
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return _save(fig, out_stem)


def cka_heatmap(matrix: list[list[float]], depths_a: list[int], depths_b: list[int], out_stem: Path,
                label_a: str = "network A", label_b: str = "network B", title: str | None = None) -> list[Path]:
    """Linear CKA between the blocks of two networks (rows: A's depths, columns: B's), on a fixed 0-1
    colour scale so heatmaps of different pairs compare. Writes ``out_stem.png`` and ``.pdf``."""
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * len(depths_b), 1.0 + 0.45 * len(depths_a)), dpi=150)
    draw_cka(ax, matrix, depths_a, depths_b, fontsize=6)
    ax.set_xlabel(f"{label_b}: block", fontsize=7)
    ax.set_ylabel(f"{label_a}: block", fontsize=7)
    if title:
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    return _save(fig, out_stem)


def draw_cka(ax, matrix: list[list[float]], depths_a: list[int], depths_b: list[int], fontsize: float = 6,
             colorbar: bool = True):
    """A CKA matrix (rows: A's depths, columns: B's) on ``ax``, fixed 0-1 colour scale, with its colour bar
    (unless ``colorbar=False``: several panels share one); returns the image."""
    values = np.asarray(matrix, dtype=float)  # (len(depths_a), len(depths_b))
    im = ax.imshow(values, vmin=0.0, vmax=1.0, cmap="magma", origin="lower")
    ax.grid(False)  # grid lines would cut through the cells
    if values.size <= 144:  # numbers stay legible up to about 12 x 12 blocks
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=fontsize,
                    color="white" if v < 0.6 else "black")
    ax.set_xticks(range(len(depths_b)), [str(d) for d in depths_b], fontsize=fontsize + 1)
    ax.set_yticks(range(len(depths_a)), [str(d) for d in depths_a], fontsize=fontsize + 1)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=fontsize)
    return im


def depth_series_figure(depths: list[int], series: dict[str, tuple[list[float | None], dict]], out_stem: Path,
                        title: str | None = None, ylabel: str = "accuracy (%)") -> list[Path]:
    """Per-depth series of one run (label -> (values in [0, 1] or None, matplotlib line style)) as lines in %, the
    x label the figures' (``DEPTH_LABEL``): ``lwt gap`` / ``probe`` / ``critical``'s figures. PNG + PDF."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.6, 2.4))
        for label, (values, style) in series.items():
            pts = [(d, 100 * v) for d, v in zip(depths, values) if v is not None]
            if pts:
                ax.plot(*zip(*pts), label=label, **style)
        ax.set_xlabel(DEPTH_LABEL)
        ax.set_ylabel(ylabel)
        ax.set_xticks(depths)
        if title:
            ax.set_title(title)
        legend_outside(ax)
        fig.tight_layout()
        return _save(fig, out_stem, undated=True)
