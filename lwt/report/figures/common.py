"""What every paper figure shares: reading result tables, averaging over seeds, one style, PNG + PDF out.

A mean over seeds is drawn with its 95 % Student-t interval (lwt.report.stats; none for a single seed), never
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

from lwt.analysis.style import (  # noqa: E402  (the house style; re-exported for the figures)
    COLUMN_IN,
    MODES,
    arch_label,
    method_of,
)
from lwt.report.stats import Summary, summarize  # noqa: E402

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


CELL_KEYS = ("data.train_subset", "model.aux.k")  # split into panels where a table varies them


def panel_groups(rows: list[dict]) -> tuple[list[str], dict[tuple, list[dict]]]:
    """Rows grouped into panels: by architecture, and by training-set size and auxiliary depth k where the
    table holds more than one of them (a panel never mixes runs of different cells)."""
    keys = ["model", *[k for k in CELL_KEYS if len({r.get(k) for r in rows}) > 1]]
    groups = group(rows, *keys)
    order = sorted(groups, key=lambda cell: [(0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))
                                             for v in cell])  # 500 before 1,000 images
    return keys, {cell: groups[cell] for cell in order}


def panel_title(row: dict, keys: list[str], sep: str = ", ") -> str:
    """"simple CNN, 1,000 images, aux k=2": the architecture, then (after ``sep``) the cell's varying axes (the
    training-set size, the auxiliary depth)."""
    parts = []
    if "data.train_subset" in keys and row.get("data.train_subset") is not None:
        parts.append(f"{int(float(row['data.train_subset'])):,} images")
    if "model.aux.k" in keys and row.get("model.aux.k") is not None:
        parts.append(f"aux k={int(float(row['model.aux.k']))}")
    return sep.join([arch_label(row), ", ".join(parts)]) if parts else arch_label(row)


def figure_legend(fig, axes, ncol: int | None = None) -> None:
    """One legend for all panels, below them (outside every axes; needs a constrained layout)."""
    seen: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", frameon=False,
                   ncol=ncol or min(len(seen), 4))


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
        runs = [r for r in members if method_of(r) == mode]
        if runs:
            label = f"{MODES[mode]['label']}{'' if suffix is None else ': ' + suffix} (n={len(runs)})"
            depths, stats, seeds = curve(runs, prefix)
            errorband(ax, depths, stats, mode, linestyle=linestyle, label=label, seeds=seeds)


def panels(n: int, width_in: float = 2 * COLUMN_IN, per_row: int = 4, height_in: float = 1.7):
    """A grid of n panels, ``per_row`` wide; returns the figure and a flat list of n axes (extras removed)."""
    cols = min(n, per_row)
    rows = math.ceil(n / cols)
    # constrained: room for the suptitle and a figure legend below the panels (``figure_legend``)
    fig, axes = plt.subplots(rows, cols, figsize=(width_in, height_in * rows + 0.6), squeeze=False,
                             layout="constrained")
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.remove()
    return fig, flat[:n]


def save(fig, out_dir: Path, name: str, source: str | None = None) -> list[Path]:
    """``out_dir/name.png`` and ``.pdf``. ``source`` (the table read) goes into the files' metadata, not on the
    figure: titles and axes carry what a reader needs, never file names."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    for p in paths:
        meta = {"CreationDate": None, "Subject": source} if p.suffix == ".pdf" else {"Source": source}
        fig.savefig(p, metadata={k: v for k, v in meta.items() if v is not None or k == "CreationDate"})
    plt.close(fig)
    return paths
