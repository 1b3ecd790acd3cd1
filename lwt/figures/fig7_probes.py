"""Figure 7: linear-probe accuracy on every block's frozen output, greedy vs E2E, from the JSON reports
`lwt probe` writes (one panel per architecture; probe test solid, probe train dashed)."""

from __future__ import annotations

from pathlib import Path

from lwt.figures.common import (
    DEPTH_LABEL,
    MODES,
    arch_label,
    errorband,
    figure_legend,
    model_name,
    panels,
    read_reports,
    save,
    summarize,
)

FOLDER = "probes"  # results/probes/*.json, copied from the run directories `lwt probe` wrote them into


def load(results: Path) -> list[dict]:
    return read_reports(results / FOLDER)


def make(reports: list[dict], out_dir: Path, source: str) -> list[Path]:
    models = list(dict.fromkeys(model_name(r) for r in reports))
    fig, axes = panels(len(models), width_in=3.4 * min(len(models), 2), per_row=2, height_in=2.0)
    for ax, model in zip(axes, models):
        mine = sorted((r for r in reports if model_name(r) == model), key=lambda r: list(MODES).index(r["mode"]))
        for r in mine:
            depths = [row["depth"] for row in r["rows"]]
            label = MODES[r["mode"]]["label"]
            # one run per report: a curve without an interval
            errorband(ax, depths, [summarize([100 * row["test_acc"]]) for row in r["rows"]], r["mode"],
                      label=f"{label}: probe test")
            errorband(ax, depths, [summarize([100 * row["train_acc"]]) for row in r["rows"]], r["mode"],
                      linestyle="--", label=f"{label}: probe train")
        ax.set_title(f"{arch_label(mine[0])}, {mine[0]['protocol']['train_images']:,} train images")
        ax.set_xlabel(DEPTH_LABEL)
        ax.set_ylabel("probe accuracy (%)")
    pools = sorted({r["protocol"]["pool"] for r in reports})
    figure_legend(fig, axes, ncol=2)
    fig.suptitle(f"Linear probes on each block's frozen output, {'/'.join(f'{p}x{p}' for p in pools)}-pooled "
                 "(one run per curve: no interval)", fontsize=7)
    return save(fig, out_dir, "fig7_probes", source)
