"""Run directories -> tables: ``lwt results runs/ [--sweep NAME] [--out results/NAME.csv] [--update]``.

- ``NAME.csv``: a row per ``result.json`` (with its ``config.yaml``): the identity keys that differ between
  runs, seed, ``RunResult``'s metrics, per-depth accuracies, seconds, git revision and provenance. A metric a
  run predates is an empty cell, never zero; a metric no run has gets no column.
- ``NAME_mean.csv``: a row per group of runs that differ only by seed: ``M_mean``, ``M_std``, ``M_n`` and the
  95 % Student-t interval ``M_ci95_lo`` / ``M_ci95_hi`` (none from one run); depths are listed per seed, never
  averaged. ``NAME_paired.csv``: E2E minus greedy by seed (lwt.report.paired).
- ``NAME_runs.jsonl``: each run's ``result.json`` and flat config (run folders rarely outlive their machine),
  per-image predictions copied to ``NAME_per_image/``; ``--update`` starts from it.

Runs of different precisions (``unknown`` for runs that predate the record) are never pooled into one cell
unless ``--allow-mixed-precision`` is given.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import yaml

from lwt.config import Config, flatten, is_identity, to_dict
from lwt.config.files import read_data
from lwt.console import cell, to_csv
from lwt.errors import LwtError
from lwt.report.paired import paired_markdown, paired_table
from lwt.report.rows import ID_COLUMNS, group_columns, groups, rounded, value_key
from lwt.report.stats import Summary, ci_text, summarize
from lwt.run.archive import read_archive, run_key, write_archive  # noqa: F401 (read_archive: re-exported)
from lwt.run.dir import RESULT, RunDir, atomic_write_text
from lwt.run.per_image import archive_run

SHOWN_APART = ("experiment", "mode", "model.name", "data.name", "seed")  # identity keys with their own columns
# the precision a run asked for (auto, 32-true, ...) is not what it computed in: runs group by what they computed,
# which the provenance column `precision` records and check_precision keeps apart
NOT_GROUPED = ("trainer.precision",)
METRICS = ["final_test_acc", "best_val_acc", "critical_layer"]  # every table has these columns
NEW_METRICS = ["selected_depth", "selected_test_acc", "ensemble_test_acc", "train_flops"]  # where some run has them
PROVENANCE = ["precision", "device", "cpu_isa", "torch_version", "threads"]  # per-run columns, where some run has them
DISCRETE = ("critical_layer", "selected_depth")  # depths: listed per seed, never averaged
PER_DEPTH = ("test_acc_stage", "train_acc_depth", "gap_depth")


def find_runs(root: Path, sweep: str | None = None) -> list[dict]:
    """``{"result": RunResult, "config": <flat config.yaml>, "dir": Path}`` for each finished run under ``root``."""
    runs = []
    for path in sorted(Path(root).rglob(RESULT)):
        rd = RunDir(path.parent)
        try:
            result = rd.read_result()  # a result without stages (or `[]`) must not count in n
            config = flatten(read_data(rd.config, "yaml", follow=False, empty_ok=True) or {}) \
                if rd.config.is_file() else {}
            if not isinstance(config, dict):
                raise LwtError(f"{rd.config} is not an lwt config")
        except (OSError, ValueError, yaml.YAMLError, LwtError, AttributeError) as e:
            print(f"lwt results: warning: skipping {path}, excluded from the tables: {e}", file=sys.stderr)
            continue
        if sweep is not None and (result.sweep or config.get("sweep")) != sweep:
            continue
        runs.append({"result": result, "config": config, "dir": rd.path})
    return runs


def read_update_archive(path: Path) -> list[dict]:
    if not path.is_file():
        raise LwtError(f"--update: no archive {path} to update (it is written by `lwt results ... --out` "
                       f"next to the table); run without --update first, or check --out")
    return read_archive(path)


@functools.cache
def _defaults() -> dict:
    return flatten(to_dict(Config()))


def config_value(config: dict, key: str):
    """``key``'s value in a run's flat config; a key the run predates reads as the schema's default (a key is
    added with the default that keeps the old behaviour), so old and new runs of one setting group together."""
    return config[key] if key in config else _defaults().get(key)


def varying_keys(runs: list[dict]) -> list[str]:
    """The identity keys (lwt.config.is_identity) whose values differ between ``runs``."""
    keys = sorted({k for r in runs for k in r["config"]})
    return [k for k in keys if is_identity(k) and k not in SHOWN_APART and k not in NOT_GROUPED
            and len({value_key(config_value(r["config"], k)) for r in runs}) > 1]


def run_rows(runs: list[dict]) -> tuple[list[str], list[dict]]:
    """One row per run; columns: ID_COLUMNS, varying config keys, seed, metrics, per-stage test acc, ..."""
    varying = varying_keys(runs)
    depth = max((len(r["result"].stages) for r in runs), default=0)
    stage_cols = [f"test_acc_stage{k}" for k in range(1, depth + 1)]
    layers = max((len(r["result"].per_layer or []) for r in runs), default=0)
    layer_cols = [f"{m}_depth{k}" for m in ("train_acc", "gap") for k in range(1, layers + 1)]
    new_metrics = [m for m in NEW_METRICS if any(getattr(r["result"], m) is not None for r in runs)]
    provenance = [c for c in PROVENANCE if any(getattr(r["result"], c) is not None for r in runs)]
    rows = []
    for r in runs:
        res, cfg = r["result"], r["config"]
        vals = [s.val_acc for s in res.stages if s.val_acc is not None]
        row = {c: getattr(res, c) or cfg.get({"model": "model.name", "dataset": "data.name"}.get(c, c))
               for c in ID_COLUMNS}
        row.update({k: config_value(cfg, k) for k in varying})
        row.update({
            "seed": cfg.get("seed") if res.seed is None else res.seed, "run_name": res.run_name or r["dir"].name,
            "final_test_acc": res.final_test_acc, "best_val_acc": max(vals) if vals else None,
            "critical_layer": (res.critical or {}).get("critical_layer"),
            **{m: getattr(res, m) for m in new_metrics},  # absent in older runs: None, i.e. missing
            **{f"test_acc_stage{s.depth}": s.test_acc for s in res.stages},
            # analysis.per_layer: un-augmented train accuracy and train - test gap at each depth
            **{f"{m}_depth{d.depth}": getattr(d, m) for d in res.per_layer or [] for m in ("train_acc", "gap")},
            "seconds": res.seconds, "git_revision": res.git_revision, **{c: getattr(res, c) for c in provenance},
            "run_dir": str(r["dir"]), "_precision": res.precision or "unknown",  # not a column: check_precision's
            "_sweep": res.sweep or cfg.get("sweep"),  # not a column: lwt.report.paired tells a sweep's runs by it
        })
        rows.append(row)
    columns = [*ID_COLUMNS, *varying, "seed", "run_name", *METRICS, *new_metrics, *stage_cols, *layer_cols,
               "seconds", "git_revision", *provenance, "run_dir"]
    rows.sort(key=lambda row: [value_key(row[c]) for c in [*ID_COLUMNS, *varying]] + [row["seed"] or 0])
    return columns, rows


def _cell(row: dict, columns: list[str]) -> str:
    return " ".join(f"{c}={row[c]}" for c in columns if row.get(c) is not None)


def _one_precision(members: list[dict], what: str) -> None:
    by: dict[str, list] = {}
    for row in members:
        by.setdefault(row["_precision"], []).append(row)
    if len(by) > 1:
        runs = {p: ", ".join(f"{r['mode']} seed {r['seed']}" for r in rows) for p, rows in by.items()}
        found = "; ".join(f"{p} ({names})" for p, names in runs.items())
        raise LwtError(f"{what} would pool runs of different precision: {found}. Train them in one precision "
                       "(trainer.precision), or pass --allow-mixed-precision to pool them anyway")


def check_precision(columns: list[str], rows: list[dict], pairs: list[dict]) -> None:
    """One LwtError naming the first cell of the averaged or the paired table whose runs were computed in
    different precisions (runs that predate the record count as one value, ``unknown``)."""
    for members in groups(columns, rows):
        _one_precision(members, f"the cell {_cell(members[0], group_columns(columns))} of the averaged table")
    for pair in pairs:
        greedy, e2e = pair["_groups"]
        _one_precision(greedy + e2e, f"the paired difference {pair['e2e_experiment']} - {pair['greedy_experiment']} "
                                     f"({pair['metric']}, {pair['model']} on {pair['dataset']})")


def _depth_list(values: list) -> str:
    """Per-seed depths as written in a cell: ``"4, 1, -"`` (``-``: the run has none); empty if no run has one."""
    if all(v is None for v in values):
        return ""
    return ", ".join("-" if v is None else str(int(v)) for v in values)


def aggregate(columns: list[str], rows: list[dict]) -> tuple[list[str], list[dict]]:
    """Per group: mean, sample SD, n and 95 % t-interval of each continuous metric; depths listed per seed."""
    group_cols = group_columns(columns)
    discrete = [c for c in columns if c in DISCRETE]
    metrics = [c for c in columns if (c in METRICS or c in NEW_METRICS or c == "seconds" or c.startswith(PER_DEPTH))
               and c not in DISCRETE]
    out = []
    for members in groups(columns, rows):
        agg = {c: members[0][c] for c in group_cols}
        agg["n"] = len(members)
        agg["seeds"] = " ".join(str(m["seed"]) for m in members)
        for m in discrete:
            agg[f"{m}_per_seed"] = _depth_list([row.get(m) for row in members])
        for m in metrics:
            s = summarize([row.get(m) for row in members])
            agg.update({f"{m}_mean": rounded(s.mean), f"{m}_std": rounded(s.std), f"{m}_n": s.n,
                        f"{m}_ci95_lo": rounded(s.lo), f"{m}_ci95_hi": rounded(s.hi)})
        out.append(agg)
    stats = ("mean", "std", "n", "ci95_lo", "ci95_hi")
    return [*group_cols, "n", "seeds", *(f"{m}_per_seed" for m in discrete),
            *(f"{m}_{s}" for m in metrics for s in stats)], out


def summary_of(row: dict, metric: str):
    """The ``lwt.report.stats.Summary`` an aggregated row holds for ``metric`` (half-width from the interval)."""
    mean, lo, hi = row.get(f"{metric}_mean"), row.get(f"{metric}_ci95_lo"), row.get(f"{metric}_ci95_hi")
    half = None if lo is None or hi is None else (hi - lo) / 2
    return Summary(row.get(f"{metric}_n") or 0, mean, row.get(f"{metric}_std"), half)


# (metric, Markdown header, scale): accuracies in %, shown when some group has the metric
SHOWN = [("final_test_acc", "test acc, last stage (%)", 100.0),
         ("selected_test_acc", "test acc, val-selected depth (%)", 100.0),
         ("ensemble_test_acc", "test acc, ensemble of stages (%)", 100.0),
         ("best_val_acc", "best val acc (%)", 100.0)]
MEAN_NOTE = ("Accuracies: mean ± half-width of the 95 % Student-t interval over seeds (n - 1 degrees of "
             "freedom); n=1: no interval. Depths (val-selected, critical layer) are listed per seed, in the "
             "order of the seeds column (-: none). Greedy's last stage is its final network (after fine-tuning "
             "if any); the val-selected depth is the stage with the best validation accuracy.")


def to_markdown(columns: list[str], rows: list[dict]) -> str:
    """The averaged table: accuracies in % as mean ± 95 % half-width; per-stage columns stay in the CSV."""
    group_cols = columns[:columns.index("n")]
    shown = [(m, h, k) for m, h, k in SHOWN if any(row.get(f"{m}_mean") is not None for row in rows)]
    depths = [(m, h) for m, h in (("selected_depth", "val-selected depth"), ("critical_layer", "critical layer"))
              if any(row.get(f"{m}_per_seed") for row in rows)]
    header = [*group_cols, "n", "seeds", *(h for _, h, _ in shown), *(h for _, h in depths), "seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [cell(row[c]) for c in group_cols] + [str(row["n"]), str(row["seeds"])]
        cells += [ci_text(summary_of(row, m), scale=k, n_shown=row["n"]) for m, _, k in shown]
        cells += [row.get(f"{m}_per_seed") or "" for m, _ in depths]
        seconds = row.get("seconds_mean")
        cells.append("" if seconds is None else f"{seconds:.0f}")
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n\n" + MEAN_NOTE


def cmd_results(args) -> int:
    out = Path(args.out or f"results/{args.sweep or Path(args.dir).resolve().name}.csv")
    archive = out.with_name(f"{out.stem}_runs.jsonl")
    archived = read_update_archive(archive) if args.update else []
    found = find_runs(Path(args.dir), args.sweep)
    if not found and not archived:
        raise LwtError(f"no finished runs (result.json) under {args.dir}"
                       + (f" for sweep '{args.sweep}'" if args.sweep else ""))
    replaced = {run_key(r) for r in found}  # a run found replaces the archived run with its key
    runs = [r for r in archived if run_key(r) not in replaced] + found
    columns, rows = run_rows(runs)
    pair_columns, pair_rows = paired_table(columns, rows)
    if not args.allow_mixed_precision:
        check_precision(columns, rows, pair_rows)
    agg_columns, agg_rows = aggregate(columns, rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    mean_out = out.with_name(f"{out.stem}_mean{out.suffix or '.csv'}")
    paired_out = out.with_name(f"{out.stem}_paired{out.suffix or '.csv'}")
    atomic_write_text(out, to_csv(columns, rows))
    atomic_write_text(mean_out, to_csv(agg_columns, agg_rows))
    atomic_write_text(paired_out, to_csv(pair_columns, pair_rows))
    for r in found:  # their per-image files go beside the archive; archived runs keep theirs
        r["per_image"] = archive_run(archive, run_key(r), r["dir"])
    write_archive(archive, runs)
    print(to_markdown(agg_columns, agg_rows))
    print("\n" + paired_markdown(pair_columns, pair_rows))
    if args.update:
        kept = len(runs) - len(found)
        print(f"\n--update: {len(found)} runs found under {args.dir}, {kept} kept from {archive}")
    print(f"\n{len(rows)} runs in {len(agg_rows)} groups; tables: {out} (one row per run), {mean_out} (mean, SD, "
          f"n, 95 % interval), {paired_out} (E2E - greedy by seed), {archive} (the runs' results and configs)")
    return 0


def add_subparser(sub) -> None:
    p = sub.add_parser("results", help="tables (CSV + Markdown) over finished runs: mean, SD, n and 95 %% t-interval "
                                       "over seeds; E2E - greedy paired by seed")
    p.add_argument("dir", help="folder searched for result.json files, e.g. runs/ or runs/sweeps/gap_cpu")
    p.add_argument("--sweep", help="only the runs of this sweep (the sweep name in their config)")
    p.add_argument("--out", help="CSV path (default: results/<sweep or folder name>.csv); "
                                 "the averaged table goes beside it as <name>_mean.csv, the paired "
                                 "differences as <name>_paired.csv, the runs' records as <name>_runs.jsonl")
    p.add_argument("--update", action="store_true",
                   help="start from the runs archived in <name>_runs.jsonl and add the runs found (a found run "
                        "replaces the archived one with the same sweep, experiment and run name)")
    p.add_argument("--allow-mixed-precision", action="store_true",
                   help="pool runs computed in different precisions (trainer.precision resolved; unknown for old "
                        "runs) into one averaged or paired cell; refused by default")
    p.set_defaults(func=cmd_results)
