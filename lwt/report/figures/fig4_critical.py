"""Figure 4: the critical layer: greedy test accuracy vs depth, each seed's critical layer L* as a star on that
seed's own accuracy at that depth, against E2E's per-depth readouts of the same network. L* is the paired test
of docs/protocol.md on the run's archived per-image validation outputs (the claims' L*); a run archived without
them shows the table's ``critical_layer`` (the curriculum's online rule). Critical layers are discrete: they are
shown per seed, never averaged; a greedy run that stopped early is drawn as common.py says (the mean over
complete seeds, per-seed lines past that)."""

from __future__ import annotations

from pathlib import Path

from lwt.analysis.style import DEPTH_LABEL, MODES
from lwt.report.claims.source import archived_table
from lwt.report.figures.common import (
    CI_NOTE,
    figure_legend,
    full_scale,
    images_note,
    mode_curves,
    panel_groups,
    panel_title,
    panels,
    read_table,
    save,
)

TABLES = ["critical_layer.csv", "early_overfitting_all_stages_cpu.csv"]  # on CPU, C2 is read from C3's runs
SWEEP = "critical_layer"


def full_rows(rows: list[dict]) -> list[dict]:
    return full_scale(rows, {"simple_cnn"})


def read(path: Path) -> list[dict]:
    """The table's rows, each greedy run's ``critical_layer`` the claims' L* (``Table.critical_layer``: the paired
    test on its archived per-image validation outputs, else the table's column)."""
    table = archived_table(path, read_table(path))
    for row in table.rows:
        if row["mode"] == "greedy":
            row["critical_layer"] = table.critical_layer(row)
    return table.rows


def _depth(value) -> str:
    return "-" if value is None else str(int(value))


def make(rows: list[dict], out_dir: Path, source: str, name: str = "fig4_critical") -> list[Path]:
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
        note = f"L* per seed: {per_seed}" if fired else "no critical layer"
        ax.set_title(f"{panel_title(members[0], keys)}\n{note}")
        ax.set_xlabel(DEPTH_LABEL)
        ax.set_ylabel("test accuracy (%)")
    figure_legend(fig, axes, ncol=2)
    fig.suptitle(f"Where greedy training saturates, {images_note(rows)} (stars: each seed's critical layer L*, "
                 f"the paired test on validation)\n{CI_NOTE}", fontsize=7)
    return save(fig, out_dir, name, source)
