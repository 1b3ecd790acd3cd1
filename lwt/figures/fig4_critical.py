"""Figure 4: the critical layer: greedy test accuracy vs depth with the stage where the curriculum's
criterion fired (one tick per seed), against E2E's per-depth readouts of the same network."""

from __future__ import annotations

from pathlib import Path

from lwt.figures.common import MODES, arch_label, group, mean_std, mode_curves, panels, save

TABLES = ["critical_layer.csv", "critical_layer_cpu.csv"]
SWEEP = "critical_layer"


def make(rows: list[dict], out_dir: Path, source: str) -> list[Path]:
    models = group(rows, "model")
    fig, axes = panels(len(models), per_row=3, height_in=1.9)
    for ax, ((_model,), members) in zip(axes, models.items()):
        mode_curves(ax, members)
        fired = [r["critical_layer"] for r in members if r["mode"] == "greedy" and r.get("critical_layer")]
        for k in fired:
            ax.axvline(k, color=MODES["greedy"]["color"], linestyle=":", linewidth=0.9)
        m, _, n = mean_std(fired)
        note = f"critical layer {m:.1f} ({n} of {sum(r['mode'] == 'greedy' for r in members)} seeds)" if n else \
            "criterion did not fire"
        ax.set_title(f"{arch_label(members[0])}: {note}")
        ax.set_xlabel("depth")
        ax.set_ylabel("test accuracy (%)")
    axes[0].legend(frameon=False)
    fig.suptitle(f"Where greedy training saturates: dotted = critical layer ({source})", fontsize=7)
    return save(fig, out_dir, "fig4_critical")
