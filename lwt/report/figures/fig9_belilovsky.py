"""Figure 9: claim K, Belilovsky, Eickenberg & Oyallon's ranking on their own networks: greedy test accuracy
after each stage for the auxiliary depths k = 1, 2, 3 (experiments/sweeps/belilovsky_cifar10.yaml), each k in
its own colour (``style.AUX_K``, light to dark) and dash, seeds drawn as common.py says; the legend gives n,
the last stage's mean and the mean accuracy of the ensemble of the stages' heads. The paper's numbers (full
width and data, 50 epochs per stage) are in the title, not drawn: a run at another scale is not on their axis."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from lwt.analysis.style import COLUMN_IN, DEPTH_LABEL, arch_label, aux_k_style
from lwt.report.figures.common import CI_NOTE, curve, errorband, figure_legend, full_scale, group, images_note, save
from lwt.report.stats import summarize

TABLES = ["belilovsky_cifar10.csv", "belilovsky_cifar10_cpu.csv"]
SWEEP = "belilovsky_cifar10"
PAPER = {1: 88.3, 2: 90.4, 3: 91.7}  # Belilovsky et al. (ICML 2019), CIFAR-10 test accuracy, Sec. 4.1
STYLES = {1: ":", 2: "--", 3: "-"}




def full_rows(rows: list[dict]) -> list[dict]:
    return full_scale(rows, {"belilovsky_k1", "belilovsky_k2", "belilovsky_k3"})


def _mean(members: list[dict], column: str) -> float | None:
    """The mean over seeds of ``column`` in %, None where no row has it (an older run: no ensemble)."""
    return summarize([None if r.get(column) is None else 100 * r[column] for r in members]).mean


def make(rows: list[dict], out_dir: Path, source: str, name: str = "fig9_belilovsky") -> list[Path]:
    fig, ax = plt.subplots(figsize=(2 * COLUMN_IN, 3.0), layout="constrained")
    for (_model,), members in sorted(group(rows, "model").items()):
        k = int(members[0].get("model.aux.k") or 0)
        c = curve(members, "test_acc_stage")
        last, ensemble = _mean(members, "final_test_acc"), _mean(members, "ensemble_test_acc")
        summary = f"last stage {last:.1f} %" + (f", ensemble {ensemble:.1f} %" if ensemble is not None else "")
        errorband(ax, c, aux_k_style(k), linestyle=STYLES.get(k, "-"),
                  label=f"{arch_label(members[0])}, greedy (n={c.n}; {summary})")
    ax.set_xlabel(DEPTH_LABEL)
    ax.set_ylabel("test accuracy (%)")
    figure_legend(fig, [ax], ncol=1)
    scale = f", {images_note(rows)}" + (", narrower than the paper's" if "_cpu" in str(source) else "")
    paper = " / ".join(f"{v}" for v in PAPER.values())
    fig.suptitle(f"Belilovsky et al.'s networks on CIFAR-10{scale}:\ngreedy accuracy by depth, k = auxiliary "
                 f"depth ({CI_NOTE})\nThe paper (full width and data, 50 epochs per stage): k=1/2/3 {paper} %",
                 fontsize=7)
    return save(fig, out_dir, name, source)
