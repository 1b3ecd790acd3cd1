"""Figure 1: test accuracy vs depth, layerwise vs end-to-end, one panel per architecture (CIFAR-10).

Greedy at depth k: the network after stage k, read out by aux head k. E2E at depth k: block k's auxiliary
readout on detached features (the last depth: the network's classifier). Seeds are drawn as common.py says.
"""

from __future__ import annotations

from pathlib import Path

from lwt.analysis.style import DEPTH_LABEL, arch_label
from lwt.report.figures.common import CI_NOTE, figure_legend, full_scale, group, images_note, mode_curves, panels, save

TABLES = ["gap.csv", "gap_cpu.csv"]  # the first present is used
SWEEP = "gap"
C1_MODELS = {"vgg11", "resnet20", "simple_cnn"}  # the full-scale C1 cell (experiments/sweeps/full_scale.yaml)


def full_rows(rows: list[dict]) -> list[dict]:
    return full_scale(rows, C1_MODELS, aux_k=2)


def make(rows: list[dict], out_dir: Path, source: str, name: str = "fig1_depth") -> list[Path]:
    cifar = [r for r in rows if r.get("dataset") == "cifar10"]
    models = group(cifar, "model")
    fig, axes = panels(len(models))
    for ax, ((_model,), members) in zip(axes, models.items()):
        mode_curves(ax, members)
        ax.set_title(arch_label(members[0]))
        ax.set_xlabel(DEPTH_LABEL)
        ax.set_ylabel("test accuracy (%)")
    figure_legend(fig, axes)
    fig.suptitle(f"Test accuracy vs depth on CIFAR-10, {images_note(cifar)}\n({CI_NOTE}; greedy at depth k: after "
                 "stage k)", fontsize=7)  # two lines: one overflows a figure of one or two panels
    return save(fig, out_dir, name, source)
