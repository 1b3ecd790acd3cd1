"""Differences paired by seed (``by_seed``, the one pairing that tables, claims and figures use), and E2E minus
greedy per group of runs (``NAME_paired.csv``; printed by ``lwt results``).

Seed s of a greedy group and seed s of an E2E group of the same network share the data split, subset and
initial weights, so their difference varies less than either accuracy across seeds: the interval goes
over the per-seed differences, not over two separately averaged means.

Which groups are compared: within one (model, dataset), a config key that varies is a *shared axis* when
the greedy (or DGL) runs and the E2E runs take the same set of values of it (``data.train_subset``:
[1000, 3000] in both); groups pair only with the same value of every shared axis. A key whose values
differ between the two sides (VGG E2E at ``optim.lr=0.02`` with warm-up, greedy at 0.1) is a setting of
the method, not an axis: it is shown in ``greedy_config`` / ``e2e_config``. Each layerwise group of a
cell is paired with each E2E group of it (several remedies against one E2E baseline). A key that every
run of a sweep names in its run name (the sweep's axis values, ``train_subset-1000_k-2_seed0``) is a
shared axis whatever the value sets: in a sweep still running, one side may lack some axis values so far
(greedy done at 500, 1,000 and 2,000 images, E2E only at 500 and 1,000), and the value sets alone would
take the axis for a setting and pair greedy at 2,000 images with E2E at 500.

Columns: model, dataset, the shared axes, greedy_experiment, greedy_mode (greedy or dgl), greedy_config,
e2e_experiment, e2e_config, metric (``final_test_acc``: last stage; ``selected_test_acc``: val-selected
depth, where both sides have it), n_pairs, seeds, diff_mean, diff_std, diff_ci95_lo, diff_ci95_hi (the
95 % t-interval of the mean difference, empty for one pair), diff_per_seed (in the order of seeds).
Differences are E2E - greedy, as fractions like every accuracy in the CSVs (positive: E2E is better).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lwt.report.rows import ID_COLUMNS, group_columns, groups, rounded, value_key
from lwt.report.stats import Summary, ci_text, summarize

LAYERWISE = ("greedy", "dgl")
PAIRED_METRICS = ("final_test_acc", "selected_test_acc")
LABELS = {"final_test_acc": "test acc, last stage", "selected_test_acc": "test acc, val-selected depth"}


def by_seed(a: list[dict], b: list[dict], value: str | Callable[[dict], float | None]) -> tuple[list, list, Summary]:
    """A - B paired by seed: each seed's ``value`` (a column, or a function of the row) in ``a`` minus the same
    seed's in ``b``, over the seeds both have a value for: (those seeds in order, the differences, their summary)."""
    get = value if callable(value) else (lambda r: r.get(value))
    va, vb = ({r["seed"]: v for r in side if (v := get(r)) is not None} for side in (a, b))
    seeds = sorted(va.keys() & vb.keys())
    diffs = [va[s] - vb[s] for s in seeds]
    return seeds, diffs, summarize(diffs)


def _values(members: list[dict], key: str) -> set[str]:
    return {value_key(r.get(key)) for r in members}


def _named_axis(key: str, members: list[dict]) -> bool:
    """Whether every run is a sweep's and names ``key`` in its run name (``train_subset-1000``): a sweep axis."""
    token = re.compile(rf"(^|_){re.escape(key.split('.')[-1])}-")
    return all(r.get("_sweep") and token.search(str(r.get("run_name") or "")) for r in members)


def _config_text(row: dict, keys: list[str]) -> str:
    return " ".join(f"{k}={row.get(k)}" for k in keys)


def paired_table(columns: list[str], rows: list[dict]) -> tuple[list[str], list[dict]]:
    """The per-run table of ``tables.run_rows`` -> one row per (greedy group, E2E group, metric)."""
    varying = [c for c in group_columns(columns) if c not in ID_COLUMNS]
    metrics = [m for m in PAIRED_METRICS if m in columns]
    clusters: dict[tuple, list[list[dict]]] = {}
    for members in groups(columns, rows):
        clusters.setdefault((members[0]["model"], members[0]["dataset"]), []).append(members)
    out, shown_axes = [], []
    for cluster in clusters.values():
        side = {m: [r for g in cluster for r in g if (r["mode"] in LAYERWISE) == (m == "greedy")]
                for m in ("greedy", "e2e")}
        if not side["greedy"] or not side["e2e"]:
            continue
        shared = [k for k in varying if _values(side["greedy"], k) == _values(side["e2e"], k)
                  or _named_axis(k, [r for g in cluster for r in g])]
        shown_axes += [k for k in shared if k not in shown_axes and len(_values(side["greedy"], k)) > 1]
        for g in (g for g in cluster if g[0]["mode"] in LAYERWISE):
            for e in (e for e in cluster if e[0]["mode"] == "e2e"):
                settings = [k for k in varying if value_key(g[0].get(k)) != value_key(e[0].get(k))]
                if any(k in shared for k in settings):
                    continue
                for metric in metrics:
                    seeds, diffs, s = by_seed(e, g, metric)
                    if not seeds:
                        continue  # runs without selected_test_acc, or no seed in common
                    out.append({
                        "model": g[0]["model"], "dataset": g[0]["dataset"], **{k: g[0].get(k) for k in shared},
                        "greedy_experiment": g[0]["experiment"], "greedy_mode": g[0]["mode"],
                        "greedy_config": _config_text(g[0], settings), "e2e_experiment": e[0]["experiment"],
                        "e2e_config": _config_text(e[0], settings), "metric": metric, "n_pairs": s.n,
                        "seeds": " ".join(str(x) for x in seeds), "diff_mean": rounded(s.mean),
                        "diff_std": rounded(s.std), "diff_ci95_lo": rounded(s.lo), "diff_ci95_hi": rounded(s.hi),
                        "diff_per_seed": ", ".join(f"{d:.6g}" for d in diffs), "_summary": s, "_diffs": diffs,
                        "_groups": (g, e),  # the runs of each side (lwt results checks they share a precision)
                    })
    cols = ["model", "dataset", *shown_axes, "greedy_experiment", "greedy_mode", "greedy_config", "e2e_experiment",
            "e2e_config", "metric", "n_pairs", "seeds", "diff_mean", "diff_std", "diff_ci95_lo", "diff_ci95_hi",
            "diff_per_seed"]
    return cols, out


def paired_markdown(columns: list[str], rows: list[dict]) -> str:
    if not rows:
        return "No greedy/E2E pairs (a paired table needs greedy or DGL and E2E runs of one model and dataset)."
    axes = columns[2:columns.index("greedy_experiment")]
    header = ["model", "dataset", *axes, "greedy", "E2E", "metric", "pairs (seeds)",
              "E2E - greedy (points)", "per seed (points)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        greedy = row["greedy_experiment"] + (f" ({row['greedy_config']})" if row["greedy_config"] else "")
        e2e = row["e2e_experiment"] + (f" ({row['e2e_config']})" if row["e2e_config"] else "")
        cells: list[Any] = [row["model"], row["dataset"], *(row.get(k) for k in axes), greedy, e2e,
                            LABELS[row["metric"]], f"{row['n_pairs']} ({row['seeds']})", ci_text(row["_summary"]),
                            ", ".join(f"{100 * d:+.1f}" for d in row["_diffs"])]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + ("\n\nE2E - greedy by seed: mean ± half-width of the 95 % Student-t interval "
                               "over the per-seed differences (n pairs - 1 degrees of freedom); one pair: no interval.")
