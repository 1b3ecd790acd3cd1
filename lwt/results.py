"""Run directories -> one table: ``lwt results runs/ [--sweep NAME] [--out results/NAME.csv]``.

Every ``result.json`` under the folder (with the ``config.yaml`` beside it) becomes one row: experiment,
mode, model, dataset, the config keys whose values differ between the runs found, seed, final test
accuracy, best validation accuracy, critical layer, per-stage test accuracy (``test_acc_stage{k}``),
per-depth un-augmented train accuracy and train - test gap when the run measured them
(``train_acc_depth{k}``, ``gap_depth{k}``; analysis.per_layer), seconds and git revision. Runs that
differ only by seed are then averaged: mean and sample std per metric. Both tables are written as CSV
(``NAME.csv``: one row per run; ``NAME_mean.csv``: one row per group); the averaged one is printed as
Markdown (accuracies in %).

Beside them, ``NAME_runs.jsonl`` archives what the tables were computed from: each run's ``result.json``
and flat config, one line per run (a few KB each, so it can be committed with the tables). Run folders
hold checkpoints and rarely outlive the machine that trained them; with ``--update`` the tables are
computed from the archive with the runs found on disk added or replacing the archived run of the same
sweep, experiment and run name, so a sweep can be completed or partly rerun on another machine.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

from lwt.config import flatten
from lwt.errors import LwtError
from lwt.rundir import atomic_write_text

ID_COLUMNS = ["experiment", "mode", "model", "dataset"]
# Not compared across runs: shown in their own columns, or where/how a run was written ("x.": a section).
NOT_VARYING = ("experiment", "mode", "model.name", "data.name", "seed", "run_name", "logging.", "data.root",
               "trainer.progress_bar")
METRICS = ["final_test_acc", "best_val_acc", "critical_layer"]
PER_DEPTH = ("test_acc_stage", "train_acc_depth", "gap_depth")


def find_runs(root: Path, sweep: str | None = None) -> list[dict]:
    """``{"result": ..., "config": <flat config.yaml>, "dir": Path}`` for each finished run under ``root``."""
    runs = []
    for path in sorted(Path(root).rglob("result.json")):
        try:
            result = json.loads(path.read_text())
            config_path = path.parent / "config.yaml"
            config = flatten(yaml.safe_load(config_path.read_text()) or {}) if config_path.is_file() else {}
        except (OSError, ValueError, yaml.YAMLError) as e:
            print(f"lwt results: skipping {path}: {e}", file=sys.stderr)
            continue
        if sweep is not None and (result.get("sweep") or config.get("sweep")) != sweep:
            continue
        runs.append({"result": result, "config": config, "dir": path.parent})
    return runs


def run_key(run: dict) -> tuple:
    """Identifies a run across machines: (sweep, experiment, run name), not its folder."""
    res, cfg = run["result"], run["config"]
    return (res.get("sweep") or cfg.get("sweep"), res.get("experiment", cfg.get("experiment")),
            res.get("run_name", run["dir"].name))


def archive_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}_runs.jsonl")


def write_archive(path: Path, runs: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps({"run_dir": str(r["dir"]), "result": r["result"],
                                                "config": r["config"]}, sort_keys=True) + "\n" for r in runs))


def read_archive(path: Path) -> list[dict]:
    if not path.is_file():
        raise LwtError(f"--update: no archive {path} to update (it is written by `lwt results ... --out` "
                       f"next to the table); run without --update first, or check --out")
    runs = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            record = json.loads(line)
            runs.append({"result": record["result"], "config": record["config"], "dir": Path(record["run_dir"])})
        except (ValueError, KeyError, TypeError) as e:
            raise LwtError(f"{path}, line {n}: not an lwt results archive record ({e})") from None
    return runs


def merge_runs(archived: list[dict], found: list[dict]) -> list[dict]:
    """The found runs, and the archived runs whose key none of them has."""
    replaced = {run_key(r) for r in found}
    return [r for r in archived if run_key(r) not in replaced] + found


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _shown_apart(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in NOT_VARYING)


def varying_keys(runs: list[dict]) -> list[str]:
    keys = sorted({k for r in runs for k in r["config"]})
    return [k for k in keys if not _shown_apart(k) and len({_key(r["config"].get(k)) for r in runs}) > 1]


def run_rows(runs: list[dict]) -> tuple[list[str], list[dict]]:
    """One row per run; columns: ID_COLUMNS, varying config keys, seed, metrics, per-stage test acc, ..."""
    varying = varying_keys(runs)
    depth = max((len(r["result"].get("stages") or []) for r in runs), default=0)
    stage_cols = [f"test_acc_stage{k}" for k in range(1, depth + 1)]
    layers = max((len(r["result"].get("per_layer") or []) for r in runs), default=0)
    layer_cols = [f"{m}_depth{k}" for m in ("train_acc", "gap") for k in range(1, layers + 1)]
    rows = []
    for r in runs:
        res, cfg = r["result"], r["config"]
        stages = res.get("stages") or []
        vals = [s.get("val_acc") for s in stages if s.get("val_acc") is not None]
        row = {c: res.get(c, cfg.get({"model": "model.name", "dataset": "data.name"}.get(c, c))) for c in ID_COLUMNS}
        row.update({k: cfg.get(k) for k in varying})
        row.update({
            "seed": res.get("seed", cfg.get("seed")), "run_name": res.get("run_name", r["dir"].name),
            "final_test_acc": res.get("final_test_acc"), "best_val_acc": max(vals) if vals else None,
            "critical_layer": (res.get("critical") or {}).get("critical_layer"),
            **{f"test_acc_stage{s['stage']}": s.get("test_acc") for s in stages},
            # analysis.per_layer: un-augmented train accuracy and train - test gap at each depth
            **{f"{m}_depth{d['depth']}": d.get(m) for d in res.get("per_layer") or [] for m in ("train_acc", "gap")},
            "seconds": res.get("seconds"), "git_revision": res.get("git_revision"), "run_dir": str(r["dir"]),
        })
        rows.append(row)
    columns = [*ID_COLUMNS, *varying, "seed", "run_name", *METRICS, *stage_cols, *layer_cols, "seconds",
               "git_revision", "run_dir"]
    rows.sort(key=lambda row: [_key(row[c]) for c in [*ID_COLUMNS, *varying]] + [row["seed"] or 0])
    return columns, rows


def aggregate(columns: list[str], rows: list[dict]) -> tuple[list[str], list[dict]]:
    """Mean and sample std over the runs that differ only by seed (std empty for a single run)."""
    group_cols = columns[:columns.index("seed")]
    metrics = [c for c in columns if c in METRICS or c == "seconds" or c.startswith(PER_DEPTH)]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(_key(row[c]) for c in group_cols), []).append(row)
    out = []
    for members in groups.values():
        agg = {c: members[0][c] for c in group_cols}
        agg["n"] = len(members)
        agg["seeds"] = " ".join(str(m["seed"]) for m in members)
        for m in metrics:
            values = [row[m] for row in members if row.get(m) is not None]
            agg[f"{m}_mean"] = round(statistics.mean(values), 6) if values else None
            agg[f"{m}_std"] = round(statistics.stdev(values), 6) if len(values) > 1 else None
        out.append(agg)
    return [*group_cols, "n", "seeds", *(f"{m}_{s}" for m in metrics for s in ("mean", "std"))], out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def to_csv(columns: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[_cell(row.get(c)) for c in columns] for row in rows])
    return buf.getvalue()


def _pm(mean: float | None, std: float | None, scale: float = 100.0, digits: int = 2) -> str:
    if mean is None:
        return ""
    return f"{mean * scale:.{digits}f}" + (f" ± {std * scale:.{digits}f}" if std is not None else "")


def to_markdown(columns: list[str], rows: list[dict]) -> str:
    """The averaged table, accuracies in % as mean ± std; per-stage columns stay in the CSV."""
    group_cols = columns[:columns.index("n")]
    header = [*group_cols, "n", "final test acc (%)", "best val acc (%)"]
    show_critical = any(row.get("critical_layer_mean") is not None for row in rows)
    header += ["critical layer"] if show_critical else []
    header += ["seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [_cell(row[c]) for c in group_cols] + [str(row["n"]),
                 _pm(row["final_test_acc_mean"], row["final_test_acc_std"]),
                 _pm(row["best_val_acc_mean"], row["best_val_acc_std"])]
        if show_critical:
            cells.append(_pm(row["critical_layer_mean"], row["critical_layer_std"], scale=1.0, digits=1))
        cells.append(_pm(row["seconds_mean"], None, scale=1.0, digits=0))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def cmd_results(args) -> int:
    out = Path(args.out or f"results/{args.sweep or Path(args.dir).resolve().name}.csv")
    archive = archive_path(out)
    archived = read_archive(archive) if args.update else []
    found = find_runs(Path(args.dir), args.sweep)
    if not found and not archived:
        raise LwtError(f"no finished runs (result.json) under {args.dir}"
                       + (f" for sweep '{args.sweep}'" if args.sweep else ""))
    runs = merge_runs(archived, found)
    columns, rows = run_rows(runs)
    agg_columns, agg_rows = aggregate(columns, rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    mean_out = out.with_name(f"{out.stem}_mean{out.suffix or '.csv'}")
    atomic_write_text(out, to_csv(columns, rows))
    atomic_write_text(mean_out, to_csv(agg_columns, agg_rows))
    write_archive(archive, runs)
    print(to_markdown(agg_columns, agg_rows))
    if args.update:
        kept = len(runs) - len(found)
        print(f"\n--update: {len(found)} runs found under {args.dir}, {kept} kept from {archive}")
    print(f"\n{len(rows)} runs in {len(agg_rows)} groups; tables: {out} (one row per run), {mean_out} (mean ± std), "
          f"{archive} (the runs' results and configs)")
    return 0


def add_subparser(sub) -> None:
    p = sub.add_parser("results", help="one table (CSV + Markdown) over finished runs, mean ± std over seeds")
    p.add_argument("dir", help="folder searched for result.json files, e.g. runs/ or runs/sweeps/gap_cpu")
    p.add_argument("--sweep", help="only the runs of this sweep (the sweep name in their config)")
    p.add_argument("--out", help="CSV path (default: results/<sweep or folder name>.csv); "
                                 "the averaged table goes beside it as <name>_mean.csv, the runs' records "
                                 "as <name>_runs.jsonl")
    p.add_argument("--update", action="store_true",
                   help="start from the runs archived in <name>_runs.jsonl and add the runs found (a found run "
                        "replaces the archived one with the same sweep, experiment and run name)")
    p.set_defaults(func=cmd_results)
