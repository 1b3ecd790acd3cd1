"""Figure 4: the critical layer: greedy test accuracy vs depth, each seed's critical layer (where the
curriculum's criterion fired) as a star on that seed's own accuracy at that depth, against E2E's per-depth
readouts of the same network. Critical layers are discrete: they are shown per seed, never averaged; so is the
accuracy past the shallowest one (thin lines, one per seed that went on), the mean stopping where the first
seed stopped."""

from __future__ import annotations

from pathlib import Path

from lwt.analysis.style import DEPTH_LABEL, MODES
from lwt.report.figures.common import CI_NOTE, figure_legend, mode_curves, panel_groups, panel_title, panels, save

TABLES = ["critical_layer.csv", "early_overfitting_cpu.csv"]  # on CPU, C2 is read from C3's 8-stage runs
SWEEP = "critical_layer"


def _depth(value) -> str:
    return "-" if value is None else str(int(value))


def make(rows: list[dict], out_dir: Path, source: str) -> list[Path]:
    keys, groups = panel_groups(rows)
    fig, axes = panels(len(groups), per_row=3, height_in=1.9)
    for ax, members in zip(axes, groups.values()):
        mode_curves(ax, members)
        greedy = [r for r in members if r["mode"] == "greedy"]
        fired = [r for r in greedy if r.get("critical_layer")]
        ks = [int(r["critical_layer"]) for r in fired]
        accs = [100 * (r.get(f"test_acc_stage{k}") or 0.0) for r, k in zip(fired, ks)]
        ax.scatter(ks, accs, marker="*", s=30, color=MODES["greedy"]["color"], edgecolors="black",
                   linewidths=0.4, zorder=4, label="critical layer (one star per seed)" if fired else None)
        per_seed = ", ".join(_depth(r.get("critical_layer")) for r in greedy)
        note = f"critical layer per seed: {per_seed}" if fired else "criterion did not fire"
        ax.set_title(f"{panel_title(members[0], keys)}\n{note}")
        ax.set_xlabel(DEPTH_LABEL)
        ax.set_ylabel("test accuracy (%)")
    figure_legend(fig, axes, ncol=2)
    fig.suptitle(f"Where greedy training saturates (stars: each seed's critical layer; {CI_NOTE})", fontsize=7)
    return save(fig, out_dir, "fig4_critical", source)
