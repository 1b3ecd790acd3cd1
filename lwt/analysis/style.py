"""The house style of every lwt figure: one palette for every quantity a figure tells apart by colour, the
paper's names for architectures, one font size and one PNG/PDF resolution. Run-level plots (analysis.plots) and
the paper figures (report.figures) both draw with it.

The palette: one colour and marker per training method (``MODES``, Okabe & Ito's colour-blind-safe colours),
one per arm of the intervention that is not itself a method (``ARMS``), one per auxiliary depth k (``AUX_K``, a
light-to-dark ramp of a hue no method wears, so the order of k reads in lightness too), greys for datasets.
No colour stands for two quantities: a method's colour is never an arm's, a k's or a dataset's."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import matplotlib

COLUMN_IN = 3.4  # a paper column, inches; full width is 2 columns

# Okabe & Ito's colour-blind-safe palette: each training method has ONE colour in every figure
OKABE_ITO = {"orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7", "black": "#000000"}
MODES = {  # method -> how it is drawn and named
    "greedy": dict(color=OKABE_ITO["blue"], marker="o", label="layerwise (greedy)"),
    "e2e": dict(color=OKABE_ITO["vermillion"], marker="s", label="end-to-end"),
    "e2e_matched": dict(color=OKABE_ITO["black"], marker="X", label="compute-matched end-to-end (greedy's FLOPs)"),
    "dgl": dict(color=OKABE_ITO["bluish green"], marker="^", label="decoupled greedy (DGL)"),
    "greedy+finetune": dict(color=OKABE_ITO["reddish purple"], marker="D", label="greedy + fine-tune"),
    "remedy": dict(color=OKABE_ITO["orange"], marker="v", label="greedy with a remedy"),
}
# the intervention's arms (figure 8) that are not a method: greedy started on E2E's frozen blocks. Plain greedy is
# drawn as the method it is, greedy with its early blocks stopped early as the remedy it is (fewer early epochs).
ARMS = {"from_e2e": dict(color=OKABE_ITO["sky blue"], marker="P", label="greedy on E2E's blocks (frozen)")}
# auxiliary depth k (Belilovsky's networks, figure 9): ColorBrewer's Purples, light (k=1) to dark (k=3)
AUX_K = {1: dict(color="#9E9AC8", marker="v"), 2: dict(color="#6A51A3", marker="o"),
         3: dict(color="#3F007D", marker="s")}


def aux_k_style(k: int) -> dict:
    """k's colour and marker; a k beyond ``AUX_K`` gets a darker step of the same ramp, never another's colour."""
    if k in AUX_K:
        return AUX_K[k]
    return dict(color=matplotlib.colors.to_hex(matplotlib.colormaps["Purples"](min(0.55 + 0.1 * k, 1.0))), marker="D")


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
# name -> (the network a run of that name trained when its git_revision predates the commit, the commit): two
# networks have been run as belilovsky_k2 (the authors' and what s2d_cnn builds), told apart by revision
RENAMED = {"belilovsky_k2": ("s2d_cnn", "2114e6b")}
REMEDIES = {"_lr_gamma": "layer-wise lr", "_stage_epochs": "fewer early epochs", "_stage_wd": "early weight decay",
            "_stage_dropout": "early dropout", "_dgl": "DGL", "_finetune": "greedy + fine-tune",
            "_segprop": "SegProp-style stages", "_early_downsample": "early downsampling"}
STYLE = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "legend.fontsize": 6, "xtick.labelsize": 6,
         "ytick.labelsize": 6, "lines.linewidth": 1.2, "lines.markersize": 3, "axes.grid": True, "grid.alpha": 0.3,
         "savefig.dpi": 200, "figure.dpi": 200, "pdf.fonttype": 42,
         "axes.prop_cycle": matplotlib.cycler(color=list(OKABE_ITO.values()))}


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
    """The registry name of the network a row (or report) was trained with: a name in ``RENAMED`` whose
    ``git_revision`` predates the commit listed there means the other network (``belilovsky_k2`` -> ``s2d_cnn``);
    a row with no revision (an ``lwt cka`` / ``lwt probe`` report that records none) counts as predating it."""
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
    """The key of ``MODES`` a run is drawn with: its mode; for an E2E run trained for another run's FLOPs
    (``trainer.match_flops_of``), the compute-matched arm; for a greedy run, a fine-tune or another remedy (its
    experiment name is not the plain ``<model>_greedy``)."""
    mode, experiment = str(row.get("mode")), str(row.get("experiment", ""))
    if mode == "e2e" and (row.get("trainer.match_flops_of") or experiment.endswith("_flops_matched")):
        return "e2e_matched"
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


def dataset_label(row: dict) -> str:
    dataset = str(row.get("dataset"))
    return {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagefolder": "Tiny-ImageNet subset"}.get(dataset, dataset)
