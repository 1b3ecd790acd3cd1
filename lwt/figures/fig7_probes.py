"""Figure 7: linear-probe accuracy on every block's frozen output, greedy vs E2E, from the JSON reports
`lwt probe` writes (one panel per architecture; probe test solid, probe train dashed)."""

from __future__ import annotations

from pathlib import Path

from lwt.figures.common import MODES, errorband, mean_ci, panels, read_reports, save

FOLDER = "probes"  # results/probes/*.json, copied from the run directories `lwt probe` wrote them into


def load(results: Path) -> list[dict]:
    return read_reports(results / FOLDER)


def make(reports: list[dict], out_dir: Path, source: str) -> list[Path]:
    models = list(dict.fromkeys(r["model"] for r in reports))
    fig, axes = panels(len(models), width_in=3.4 * min(len(models), 2), per_row=2, height_in=2.0)
    for ax, model in zip(axes, models):
        for r in (r for r in reports if r["model"] == model):
            depths = [row["depth"] for row in r["rows"]]
            label = MODES[r["mode"]]["label"]
            # one run per report: a curve without an interval
            errorband(ax, depths, [mean_ci([100 * row["test_acc"]]) for row in r["rows"]], r["mode"],
                      label=f"{label}: test")
            errorband(ax, depths, [mean_ci([100 * row["train_acc"]]) for row in r["rows"]], r["mode"],
                      linestyle="--", label=f"{label}: train")
        p = next(r for r in reports if r["model"] == model)["protocol"]
        ax.set_title(f"{model}: probes on {p['pool']}x{p['pool']}-pooled blocks, {p['train_images']} train images")
        ax.set_xlabel("block")
        ax.set_ylabel("probe accuracy (%)")
        ax.legend(frameon=False)
    fig.suptitle(f"Linear probes per block (one run per curve: no interval) ({source})", fontsize=7)
    return save(fig, out_dir, "fig7_probes")
