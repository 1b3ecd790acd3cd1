"""What every paper figure shares: reading result tables, averaging over seeds, one style, PNG + PDF out.

A mean over seeds is drawn with its 95 % Student-t interval (lwt.report.stats), never +-1 SD, and with the
seeds themselves as small points when there are at most ``SHOW_SEEDS`` of them: with 2-5 seeds the points
say more than any band. No interval is drawn from fewer than ``MIN_INTERVAL`` seeds (with two, the t
quantile is 12.7 and the band says nothing the two points do not): those get their points only.

A per-depth mean is taken only at the depths every seed reached (``Curve``). A greedy run that stopped at its
critical layer has no value deeper down; a mean over the seeds that went on would be a mean over survivors,
which the eye reads as the method's curve. Past the last depth all seeds share, each seed that went on is
drawn as its own thin line (``PARTIAL_NOTE`` in the legend), never averaged.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
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
from lwt.config.files import read_data
from lwt.report.stats import Summary, summarize  # noqa: E402

SHOW_SEEDS = 5  # draw the per-seed points when n is at most this
MIN_INTERVAL = 3  # draw an interval from at least this many seeds (or pairs); fewer: the points only
CI_NOTE = "mean over all seeds, 95 % t-interval where n >= 3, dots: seeds"
PARTIAL_NOTE = "thin: single seeds, at depths not every seed reached"
PARTIAL_COLOR = "0.45"  # the legend's sample of a per-seed line: a grey, no method's colour
_N_LABEL = re.compile(r"(.*) \(n=(\d+)\)")  # a legend label ending in its curve's n


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
    return [read_data(p, "json", what="a report of lwt cka or lwt probe") for p in paths]


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


@dataclass
class Curve:
    """Per-depth values of one group of seeds (in %), split where the seeds stop sharing depths."""

    series: list[dict[int, float]]  # one per seed: depth -> value

    @property
    def n(self) -> int:
        return len(self.series)

    @property
    def complete(self) -> list[int]:
        """The depths every seed has a value at: the mean is drawn there and only there."""
        return sorted(set.intersection(*(set(s) for s in self.series))) if self.series else []

    def seeds_at(self, k: int) -> list[float]:
        return [s[k] for s in self.series if k in s]

    @property
    def stats(self) -> list[Summary]:
        return [summarize(self.seeds_at(k)) for k in self.complete]

    @property
    def partial(self) -> list[dict[int, float]]:
        """Each seed's values past the last depth all seeds share (from that depth, so the line joins it), for
        the seeds that go further."""
        last = self.complete[-1] if self.complete else 0
        return [tail for s in self.series if len(tail := {k: v for k, v in sorted(s.items()) if k >= last}) > 1
                or (not self.complete and tail)]


def curve(rows: list[dict], prefix: str) -> Curve:
    """``{prefix}{k}`` per depth k, in %, one series per row (seed); rows with no such value are left out."""
    depths = depth_columns(rows, prefix)
    series = [{k: 100 * r[f"{prefix}{k}"] for k in depths if r.get(f"{prefix}{k}") is not None} for r in rows]
    return Curve([s for s in series if s])


def interval(s: Summary) -> float | None:
    """The half-width to draw: the 95 % t-interval's, None for fewer than ``MIN_INTERVAL`` values."""
    return s.half if s.n >= MIN_INTERVAL else None


def group(rows: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    """Rows grouped by the values of ``keys``, in first-seen order."""
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return out


def images_note(rows: list[dict]) -> str:
    """The training-set sizes the rows hold, for a title: "2,000 training images", "500-2,000 training images"."""
    sizes = sorted({int(float(r["data.train_subset"])) for r in rows if r.get("data.train_subset") is not None})
    if not sizes:
        return "training-set size not recorded"
    return f"{sizes[0]:,}{'' if len(sizes) == 1 else f'-{sizes[-1]:,}'} training images"


def full_scale(rows: list[dict], models: set[str], aux_k: int | None = None) -> list[dict]:
    """The full-scale table's rows of ``models`` (at auxiliary depth ``aux_k`` and the largest training set, where
    given; a table without the column holds one value of it): the rows one full-scale figure draws. Runs built
    on another run's frozen blocks (``curriculum.init_from``: the swap test's arms) are figure 10's, not these."""
    kept = [r for r in rows if r.get("model") in models and not r.get("curriculum.init_from")]
    if aux_k is None:
        return kept
    kept = [r for r in kept if r.get("model.aux.k") is None or int(float(r["model.aux.k"])) == aux_k]
    largest = max((float(r["data.train_subset"]) for r in kept if r.get("data.train_subset") is not None), default=None)
    return [r for r in kept if r.get("data.train_subset") is None or float(r["data.train_subset"]) == largest]


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
    """One legend for all panels, below them (outside every axes; needs a constrained layout). A curve whose n
    differs between panels gets one entry naming the range, ``(n=3-4)``."""
    seen: dict[str, object] = {}
    ns: dict[str, set[int]] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            m = _N_LABEL.fullmatch(label)
            base = m.group(1) if m else label
            seen.setdefault(base, handle)
            if m:
                ns.setdefault(base, set()).add(int(m.group(2)))
    labels = [f"{b} (n={min(ns[b])}{'' if len(ns[b]) == 1 else f'-{max(ns[b])}'})" if b in ns else b for b in seen]
    if seen:
        fig.legend(list(seen.values()), labels, loc="outside lower center", frameon=False,
                   ncol=ncol or min(len(seen), 4))


def errorband(ax, c: Curve, style: dict, linestyle: str = "-", label: str | None = None) -> None:
    """The mean curve over the depths every seed reached, its 95 % t-interval as a band (n >= MIN_INTERVAL),
    the seeds as dots (n <= SHOW_SEEDS), and a thin line per seed past those depths. ``style``: colour and
    marker (a method's, an arm's, a k's)."""
    full = c.complete
    ax.plot(full, [s.mean for s in c.stats], color=style["color"], marker=style["marker"], linestyle=linestyle,
            label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # depths are whole blocks
    if c.n >= MIN_INTERVAL:
        ax.fill_between(full, [s.lo for s in c.stats], [s.hi for s in c.stats], color=style["color"], alpha=0.15,
                        linewidth=0)
    if c.n <= SHOW_SEEDS:
        for k in full:
            xs = c.seeds_at(k)
            ax.scatter([k] * len(xs), xs, s=5, color=style["color"], alpha=0.6, linewidths=0, zorder=3)
    for tail in c.partial:
        ax.plot(list(tail), list(tail.values()), color=style["color"], linestyle=linestyle, linewidth=0.6,
                marker=style["marker"], markersize=1.8, alpha=0.85)
    if c.partial and PARTIAL_NOTE not in ax.get_legend_handles_labels()[1]:
        ax.plot([], [], color=PARTIAL_COLOR, linewidth=0.6, marker="o", markersize=1.8, label=PARTIAL_NOTE)


def mode_curves(ax, members: list[dict], prefix: str = "test_acc_stage", linestyle: str = "-",
                suffix: str | None = None) -> None:
    """One mean curve (95 % interval, seeds) of ``{prefix}{k}`` per training mode present among ``members``
    (seeds), labelled by the mode and n (and ``suffix``, e.g. "train", when several curves share a panel)."""
    for mode in MODES:
        runs = [r for r in members if method_of(r) == mode]
        if runs:
            c = curve(runs, prefix)
            label = f"{MODES[mode]['label']}{'' if suffix is None else ': ' + suffix} (n={c.n})"
            errorband(ax, c, MODES[mode], linestyle=linestyle, label=label)


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
