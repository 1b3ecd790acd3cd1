"""Figures drawn from result.json files (never from typed-in numbers)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"greedy": dict(color="#1f77b4", marker="o"), "e2e": dict(color="#d62728", marker="s")}


def depth_figure(results: list[dict], out_stem: Path, title: str | None = None) -> list[Path]:
    """Test accuracy vs depth, one line per result (greedy: after each stage; E2E: per-block readouts).

    Writes ``out_stem.png`` and ``out_stem.pdf``; returns their paths.
    """
    fig, ax = plt.subplots(figsize=(3.4, 2.6), dpi=150)
    for r in results:
        depths = [row["depth"] for row in r["stages"]]
        accs = [100 * row["test_acc"] for row in r["stages"]]
        label = "layerwise (greedy)" if r["mode"] == "greedy" else "end-to-end (aux readouts)"
        ax.plot(depths, accs, label=label, **STYLE.get(r["mode"], {}))
    ax.set_xlabel("depth (blocks)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xticks(sorted({row["depth"] for r in results for row in r["stages"]}))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_stem.with_suffix(".png"), out_stem.with_suffix(".pdf")]
    for p in paths:
        fig.savefig(p)
    plt.close(fig)
    return paths
