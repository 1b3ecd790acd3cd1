"""What every paper figure shares: reading result tables, averaging over seeds, one style, PNG + PDF out.

A mean over seeds is drawn with its 95 % Student-t interval (lwt.stats; none for a single seed), never
+-1 SD, and with the seeds themselves as small points when there are at most ``SHOW_SEEDS`` of them:
with 2-5 seeds the points say more than any band.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import re
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from lwt.stats import Summary, summarize  # noqa: E402

COLUMN_IN = 3.4  # a paper column, inches; full width is 2 columns

# One style for every figure (issue 16, item 8). Okabe & Ito's colour-blind-safe palette; each training method
# has ONE colour in every figure, and no other quantity (dataset, architecture) is ever drawn in those colours.
OKABE_ITO = {"orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7", "black": "#000000"}
MODES = {  # method -> how it is drawn and named
    "greedy": dict(color=OKABE_ITO["blue"], marker="o", label="layerwise (greedy)"),
    "e2e": dict(color=OKABE_ITO["vermillion"], marker="s", label="end-to-end"),
    "dgl": dict(color=OKABE_ITO["bluish green"], marker="^", label="decoupled greedy (DGL)"),
    "greedy+finetune": dict(color=OKABE_ITO["reddish purple"], marker="D", label="greedy + fine-tune"),
    "remedy": dict(color=OKABE_ITO["orange"], marker="v", label="greedy with a remedy"),
}
# datasets (and any other category that is not a method): greys, told apart by shade and hatch, never a mode colour
DATASET_STYLES = [dict(color="#4D4D4D", hatch=None), dict(color="#9A9A9A", hatch=None),
                  dict(color="#C8C8C8", hatch="..")]
DEPTH_LABEL = "depth (blocks trained)"  # the x label of every per-depth axis

# architectures as papers write them
ARCH_NAMES = {"vgg11": "VGG-11", "vgg13": "VGG-13", "vgg16": "VGG-16", "vgg19": "VGG-19",
              "resnet18": "ResNet-18", "resnet20": "ResNet-20", "resnet32": "ResNet-32", "resnet34": "ResNet-34",
              "resnet56": "ResNet-56", "resnet110": "ResNet-110", "simple_cnn": "simple CNN",
              "belilovsky_k1": "Belilovsky k=1", "belilovsky_k2": "Belilovsky k=2", "belilovsky_k3": "Belilovsky k=3",
              "s2d_cnn": "space-to-depth CNN (lwt)"}
# 2114e6b gave belilovsky_k2 the authors' network; runs of earlier revisions named so trained what is now s2d_cnn
RENAMED = {"belilovsky_k2": ("s2d_cnn", "2114e6b")}
REMEDIES = {"_lr_gamma": "layer-wise lr", "_stage_epochs": "fewer early epochs", "_stage_wd": "early weight decay",
            "_stage_dropout": "early dropout", "_dgl": "DGL", "_finetune": "greedy + fine-tune"}
STYLE = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "legend.fontsize": 6, "xtick.labelsize": 6,
         "ytick.labelsize": 6, "lines.linewidth": 1.2, "lines.markersize": 3, "axes.grid": True, "grid.alpha": 0.3,
         "savefig.dpi": 200, "figure.dpi": 200, "pdf.fonttype": 42,
         "axes.prop_cycle": matplotlib.cycler(color=list(OKABE_ITO.values()))}


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


@functools.lru_cache(maxsize=64)
def _predates(revision: str, commit: str) -> bool | None:
    """Whether ``revision`` is an ancestor of ``commit`` (and not it), in the checkout lwt runs from; None when
    that cannot be told (no git, not a checkout, an unknown revision)."""
    revision = revision.removesuffix("-dirty")
    if revision.startswith(commit) or commit.startswith(revision):
        return False
    try:
        out = subprocess.run(["git", "--no-optional-locks", "merge-base", "--is-ancestor", revision, commit],
                             cwd=Path(__file__).resolve().parent, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return {0: True, 1: False}.get(out.returncode)


def model_name(row: dict, model_key: str = "model") -> str:
    """The registry name of the network a row (or report) was trained with. A ``belilovsky_k2`` run made before
    2114e6b trained what is now ``s2d_cnn`` (``RENAMED``): told by its ``git_revision``, and for ``lwt cka`` /
    ``lwt probe`` reports, which carry a revision only since after that commit, by its absence."""
    name = str(row.get(model_key))
    if name in RENAMED:
        new_name, commit = RENAMED[name]
        revision = row.get("git_revision")
        if not revision or _predates(str(revision), commit):
            return new_name
    return name


def arch_label(row: dict, model_key: str = "model") -> str:
    """The architecture as a paper writes it ("VGG-11", "ResNet-20", "simple CNN", "Belilovsky k=2")."""
    name = model_name(row, model_key)
    return ARCH_NAMES.get(name, name)


def method_of(row: dict) -> str:
    """The key of ``MODES`` a run is drawn with: its mode, or for a greedy run, a fine-tune or another remedy
    (its experiment name is not the plain ``<model>_greedy``)."""
    mode, experiment = str(row.get("mode")), str(row.get("experiment", ""))
    if mode != "greedy":
        return mode if mode in MODES else "remedy"
    if (row.get("finetune.epochs") or 0) > 0 or experiment.endswith("_finetune"):
        return "greedy+finetune"
    return "remedy" if any(experiment.endswith(suffix) for suffix in REMEDIES) else "greedy"


def experiment_label(row: dict) -> str:
    """An experiment as a reader names it: the method, and the remedy when there is one."""
    experiment, method = str(row.get("experiment", "")), method_of(row)
    remedy = next((label for suffix, label in REMEDIES.items() if experiment.endswith(suffix)), None)
    if method in ("dgl", "greedy+finetune"):
        return MODES[method]["label"]
    base = MODES["e2e" if row.get("mode") == "e2e" else "greedy"]["label"]
    return f"{base}: {remedy}" if remedy else base


def legend_outside(ax, **kwargs) -> None:
    """The legend to the right of ``ax``, outside it: never on the data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False,
                  **kwargs)


def figure_legend(fig, axes, ncol: int | None = None) -> None:
    """One legend for all panels, below them (outside every axes; needs a constrained layout)."""
    seen: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", frameon=False,
                   ncol=ncol or min(len(seen), 4))


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
