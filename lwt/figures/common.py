"""What every paper figure shares: reading result tables, averaging over seeds, one style, PNG + PDF out.

A mean over seeds is drawn with its 95 % Student-t interval (lwt.stats; none for a single seed), never
+-1 SD, and with the seeds themselves as small points when there are at most ``SHOW_SEEDS`` of them:
with 2-5 seeds the points say more than any band.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from lwt.stats import Summary, summarize  # noqa: E402

COLUMN_IN = 3.4  # a paper column, inches; full width is 2 columns
MODES = {"greedy": dict(color="#1f77b4", marker="o", label="layerwise (greedy)"),
         "e2e": dict(color="#d62728", marker="s", label="end-to-end")}
STYLE = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "legend.fontsize": 6, "xtick.labelsize": 6,
         "ytick.labelsize": 6, "lines.linewidth": 1.2, "lines.markersize": 3, "axes.grid": True, "grid.alpha": 0.3,
         "savefig.dpi": 200, "figure.dpi": 200, "pdf.fonttype": 42}


SHOW_SEEDS = 5  # draw the per-seed points when n is at most this
CI_NOTE = "mean, 95 % t-interval over seeds, dots: seeds"


class MissingTable(Exception):
    """A figure's result table is not there: the figure is skipped with the command that makes it."""


def read_table(path: Path) -> list[dict]:
    """A ``lwt results`` CSV: numbers as floats, empty cells as None."""
    if not path.is_file():
        raise MissingTable(str(path))
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    missing = [c for c in ("experiment", "mode", "model", "dataset") if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"no {', '.join(missing)} column")
    if not rows:
        raise ValueError("no rows")
    for n, row in enumerate(rows, 2):  # DictReader fills a short row with None, files a long one under None
        if None in row or None in row.values():
            raise ValueError(f"line {n} has {'more' if None in row else 'fewer'} cells than the header")
    return [{k: _number(v) for k, v in row.items()} for row in rows]


def read_reports(folder: Path) -> list[dict]:
    """The JSON reports in ``folder`` (``lwt cka`` / ``lwt probe`` output), in file-name order."""
    paths = sorted(folder.glob("*.json"))
    if not paths:
        raise MissingTable(str(folder / "*.json"))
    return [json.loads(p.read_text()) for p in paths]


def _number(text: str):
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def depth_columns(rows: list[dict], prefix: str) -> list[int]:
    """The depths k that have a column ``{prefix}{k}`` (e.g. test_acc_stage3), in order."""
    found = {int(m.group(1)) for r in rows for c in r for m in [re.fullmatch(re.escape(prefix) + r"(\d+)", c)] if m}
    return sorted(found)


def mean_ci(values: list[float | None]) -> Summary:
    """Mean, SD, n and 95 % t-interval of the values present (``lwt.stats.summarize``)."""
    return summarize(values)


def curve(rows: list[dict], prefix: str) -> tuple[list[int], list[Summary], list[list[float]]]:
    """Per depth k (those some run reached): the summary over ``rows`` (seeds) of ``{prefix}{k}`` in %, and
    the per-seed values in %."""
    depths, stats, seeds = [], [], []
    for k in depth_columns(rows, prefix):
        xs = [100 * r[f"{prefix}{k}"] for r in rows if r.get(f"{prefix}{k}") is not None]
        if xs:
            depths.append(k)
            stats.append(summarize(xs))
            seeds.append(xs)
    return depths, stats, seeds


def group(rows: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    """Rows grouped by the values of ``keys``, in first-seen order."""
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return out


def arch_label(row: dict) -> str:
    """The architecture as a reader names it: the model and, for the plain CNN, its widths."""
    return str(row.get("model"))


def dataset_label(row: dict) -> str:
    if row.get("dataset") == "imagefolder":
        return "Tiny-ImageNet subset"
    return {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}.get(str(row.get("dataset")), str(row.get("dataset")))


def errorband(ax, depths, stats: list[Summary], mode: str, linestyle: str = "-", label: str | None = None,
              seeds: list[list[float]] | None = None) -> None:
    """The mean curve, its 95 % t-interval as a band (where n >= 2) and, for n <= SHOW_SEEDS, the seeds."""
    style = MODES[mode]
    means = [s.mean for s in stats]
    ax.plot(depths, means, color=style["color"], marker=style["marker"], linestyle=linestyle,
            label=style["label"] if label is None else label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # depths are whole blocks
    lo = [math.nan if s.lo is None else s.lo for s in stats]  # nan: no band where there is no interval
    hi = [math.nan if s.hi is None else s.hi for s in stats]
    ax.fill_between(depths, lo, hi, color=style["color"], alpha=0.15, linewidth=0)
    if seeds and max(len(xs) for xs in seeds) <= SHOW_SEEDS:
        for k, xs in zip(depths, seeds):
            ax.scatter([k] * len(xs), xs, s=5, color=style["color"], alpha=0.6, linewidths=0, zorder=3)


def mode_curves(ax, members: list[dict], prefix: str = "test_acc_stage", linestyle: str = "-",
                suffix: str | None = None) -> None:
    """One mean curve (95 % interval, seeds) of ``{prefix}{k}`` per training mode present among ``members``
    (seeds), labelled by the mode and n (and ``suffix``, e.g. "train", when several curves share a panel)."""
    for mode in MODES:
        runs = [r for r in members if r["mode"] == mode]
        if runs:
            label = f"{MODES[mode]['label']}{'' if suffix is None else ': ' + suffix} (n={len(runs)})"
            depths, stats, seeds = curve(runs, prefix)
            errorband(ax, depths, stats, mode, linestyle=linestyle, label=label, seeds=seeds)


def panels(n: int, width_in: float = 2 * COLUMN_IN, per_row: int = 4, height_in: float = 1.7):
    """A grid of n panels, ``per_row`` wide; returns the figure and a flat list of n axes (extras removed)."""
    cols = min(n, per_row)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width_in, height_in * rows + 0.3), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.remove()
    return fig, flat[:n]


def save(fig, out_dir: Path, name: str) -> list[Path]:
    """``out_dir/name.png`` and ``.pdf``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    for p in paths:
        fig.savefig(p, metadata={"CreationDate": None} if p.suffix == ".pdf" else None)
    plt.close(fig)
    return paths
