"""Figure 3: early-layer overfitting: per depth, accuracy on the (un-augmented) training images vs on test
images, greedy vs E2E, one panel per architecture (and per training-set size and aux depth k where the table
varies them). Seeds are drawn as common.py says."""

from __future__ import annotations

from pathlib import Path

from lwt.analysis.style import DEPTH_LABEL
from lwt.report.figures.common import (
    CI_NOTE,
    figure_legend,
    full_scale,
    images_note,
    mode_curves,
    panel_groups,
    panel_title,
    panels,
    save,
)

TABLES = ["early_overfitting.csv", "early_overfitting_all_stages_cpu.csv"]
SWEEP = "early_overfitting"


def full_rows(rows: list[dict]) -> list[dict]:
    return full_scale(rows, {"simple_cnn"})


def make(rows: list[dict], out_dir: Path, source: str, name: str = "fig3_overfitting") -> list[Path]:
    keys, groups = panel_groups(rows)
    fig, axes = panels(len(groups), per_row=4, height_in=1.9)
    for ax, members in zip(axes, groups.values()):
        mode_curves(ax, members, "train_acc_depth", linestyle="--", suffix="train")
        mode_curves(ax, members, "test_acc_stage", suffix="test")
        ax.set_title(panel_title(members[0], keys, sep="\n"))
        ax.set_xlabel(DEPTH_LABEL)
        ax.set_ylabel("accuracy (%)")
    figure_legend(fig, axes, ncol=2)
    fig.suptitle(f"Train (dashed, no augmentation) vs test accuracy per depth, {images_note(rows)}\n({CI_NOTE})",
                 fontsize=7)
    return save(fig, out_dir, name, source)
