"""Figure 3: early-layer overfitting: per depth, accuracy on the (un-augmented) training images vs on test
images, greedy vs E2E, one panel per architecture and training-set size. Mean and 95 % t-interval over seeds,
the seeds as dots (n <= 5)."""

from __future__ import annotations

from pathlib import Path

from lwt.figures.common import CI_NOTE, DEPTH_LABEL, arch_label, figure_legend, group, mode_curves, panels, save

TABLES = ["early_overfitting.csv", "early_overfitting_cpu.csv"]
SWEEP = "early_overfitting"


def make(rows: list[dict], out_dir: Path, source: str) -> list[Path]:
    size_key = "data.train_subset" if any("data.train_subset" in r for r in rows) else None
    groups = group(rows, "model", size_key) if size_key else group(rows, "model")
    fig, axes = panels(len(groups), per_row=4, height_in=1.9)
    for ax, (key, members) in zip(axes, groups.items()):
        mode_curves(ax, members, "train_acc_depth", linestyle="--", suffix="train")
        mode_curves(ax, members, "test_acc_stage", suffix="test")
        size = f", {int(key[1]):,} train images" if size_key and key[1] is not None else ""
        ax.set_title(f"{arch_label(members[0])}{size}")
        ax.set_xlabel(DEPTH_LABEL)
        ax.set_ylabel("accuracy (%)")
    figure_legend(fig, axes, ncol=2)
    fig.suptitle(f"Train (dashed, no augmentation) vs test accuracy per depth ({CI_NOTE})", fontsize=7)
    return save(fig, out_dir, "fig3_overfitting", source)
