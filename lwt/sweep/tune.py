"""``lwt tune EXP [EXP ...] --grid key=v1,v2 [--grid ...] [--seeds 0,1] [overrides]``: choose hyperparameters
on the validation split only.

Every experiment gets the same grid (greedy and E2E of one comparison are tuned alike) and its own choice.
Each grid point x seed is an ordinary lwt run of a sweep named ``tune_<name>`` (lwt.sweep: run folders
under ``<out_dir>/sweeps/tune_<name>/``, finished points skipped, half-done ones resumed), so a killed
tune is rerun with the same command. The choice per experiment is the grid point with the highest
validation accuracy, averaged over the seeds (``selection_val_acc``):

- greedy and DGL: the best validation accuracy over the stages, i.e. that of the val-selected depth
  (with ``finetune.epochs``: the fine-tuned network's);
- E2E: the network's own (last depth's) validation accuracy.

Ties go to the first grid point in the order the values were listed (list them ascending to prefer the
smaller value). Test accuracy is in the table for information and never enters the choice: the data an
experiment file is tuned on must not be the data its result is reported on.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

from lwt.errors import LwtError
from lwt.run.result import RunResult
from lwt.sweep.spec import format_value

LAYERWISE = ("greedy", "dgl")


def selection_val_acc(result: RunResult) -> float | None:
    """The validation accuracy a run is chosen by (see the module docstring); never a test accuracy."""
    vals = [s.val_acc for s in result.stages if s.val_acc is not None]
    if not vals:
        return None
    if result.mode in LAYERWISE:
        if result.finetune and result.finetune.val_acc_after is not None:
            return result.finetune.val_acc_after
        return max(vals)
    return vals[-1]


def parse_grid(items: list[str]) -> dict[str, list]:
    """``["optim.lr=0.01,0.1", "model.widths=[32,64],[64,128]"]`` -> {key: [values]}; commas inside
    brackets belong to the value."""
    grid: dict[str, list] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise LwtError(f"--grid {item!r} must look like key=v1,v2,... e.g. --grid optim.lr=0.01,0.03,0.1")
        if key in grid:
            raise LwtError(f"--grid {key} is given twice; list all its values in one --grid")
        parts, depth, current = [], 0, ""
        for ch in text:
            depth += (ch in "[{") - (ch in "]}")
            if ch == "," and depth == 0:
                parts.append(current)
                current = ""
            else:
                current += ch
        parts.append(current)
        try:
            grid[key] = [yaml.safe_load(p.strip()) for p in parts]
        except yaml.YAMLError:
            raise LwtError(f"--grid {item!r}: a value is not valid YAML") from None
    if not grid:
        raise LwtError("lwt tune needs at least one --grid key=v1,v2,...")
    return grid


def choose(points: list[dict]) -> dict:
    """The point with the highest ``val_acc`` (mean over seeds); the first such point on a tie. Points are
    dicts of one experiment in grid order; only ``val_acc`` is read."""
    candidates = [p for p in points if p["val_acc"] is not None]
    if not candidates:
        raise LwtError("no grid point has a validation accuracy (is data.val_size 0?)")
    best = max(round(p["val_acc"], 9) for p in candidates)  # rounded: a mean's last bits decide no tie
    return next(p for p in candidates if round(p["val_acc"], 9) == best)


def tune_table(sweep) -> tuple[list[str], list[dict]]:
    """One row per (experiment, grid point): val acc (mean over seeds; the choice's input), test accuracies
    (shown only), per seed values; ``chosen`` marks each experiment's choice."""
    keys = list(sweep.grid)
    points: dict[tuple, dict] = {}
    for r in sweep.runs:
        result = r.folder.read_result()
        point = points.setdefault((r.experiment, *(repr(r.axes[k]) for k in keys)), {
            "experiment": r.experiment, "mode": r.cfg.mode, **{k: r.axes[k] for k in keys}, "_val": [], "_test": [],
            "_selected": [], "seeds": [], "base": r.base.label})
        point["seeds"].append(r.axes["seed"])
        point["_val"].append(selection_val_acc(result))
        point["_test"].append(result.final_test_acc)
        point["_selected"].append(result.selected_test_acc)
    rows = list(points.values())
    for p in rows:
        vals = [v for v in p["_val"] if v is not None]
        p.update({"n": len(vals), "val_acc": _mean(vals), "val_acc_per_seed": ", ".join(f"{v:.4f}" for v in p["_val"]
                                                                                    if v is not None),
                  "final_test_acc": _mean(p["_test"]), "selected_test_acc": _mean(p["_selected"]),
                  "seeds": " ".join(map(str, p["seeds"])), "chosen": ""})
    for experiment in dict.fromkeys(p["experiment"] for p in rows):
        choose([p for p in rows if p["experiment"] == experiment])["chosen"] = "*"
    columns = ["experiment", "mode", *keys, "n", "seeds", "val_acc", "val_acc_per_seed", "final_test_acc",
               *(["selected_test_acc"] if any(p["selected_test_acc"] is not None for p in rows) else []), "chosen"]
    return columns, rows


def _mean(values: list) -> float | None:
    xs = [float(v) for v in values if v is not None]
    return statistics.mean(xs) if xs else None


def choice_overrides(row: dict, keys: list[str]) -> str:
    return " ".join(f"{k}={format_value(row[k])}" for k in keys)


def _markdown(columns: list[str], rows: list[dict]) -> str:
    def cell(c: str, v: Any) -> str:
        if v is None:
            return ""
        return f"{100 * v:.2f}" if c in ("val_acc", "final_test_acc", "selected_test_acc") else str(v)

    header = [{"val_acc": "val acc (%, chooses)", "final_test_acc": "test acc, last stage (%, not used)",
               "selected_test_acc": "test acc, val-selected depth (%, not used)"}.get(c, c) for c in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c, r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def cmd_tune(args) -> int:
    from lwt.console import to_csv
    from lwt.run.dir import atomic_write_text
    from lwt.sweep import build_sweep
    from lwt.sweep.runner import execute

    experiments = [x for x in args.items if not ("=" in x and not Path(x).is_file())]
    overrides = [x for x in args.items if x not in experiments]
    if not experiments:
        raise LwtError("lwt tune needs one or more experiment files, e.g. experiments/cifar10/vgg11_e2e.yaml")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise LwtError(f"--seeds {args.seeds!r}: give integers, e.g. --seeds 0,1") from None
    name = args.name or "_".join(Path(e).stem for e in experiments)
    sweep = build_sweep(f"tune_{name}", "lwt tune", experiments, parse_grid(args.grid), seeds, overrides)
    if args.dry_run:
        from lwt.sweep import dry_run

        dry_run(sweep, sweep.runs)
        return 0
    if args.workers < 1:
        raise LwtError(f"--workers {args.workers} must be at least 1")
    # --print-choice: stdout carries only the chosen overrides, so training's chatter goes to stderr
    with contextlib.redirect_stdout(sys.stderr) if args.print_choice else contextlib.nullcontext():
        status = execute(sweep, sweep.runs, args.workers)
    if status != 0:
        raise LwtError("some grid points failed (see above); rerun the same command to retry them")
    columns, rows = tune_table(sweep)
    out = Path(args.out or f"results/tune/{name}.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, to_csv(columns, rows))
    chosen = [r for r in rows if r["chosen"]]
    keys = list(sweep.grid)
    if args.print_choice:
        for r in chosen:
            print(choice_overrides(r, keys) if len(chosen) == 1 else f"{r['base']} {choice_overrides(r, keys)}")
        return 0
    print(_markdown(columns, rows))
    print("\nChosen by validation accuracy only (mean over seeds; greedy/DGL: the val-selected depth's, E2E: the "
          "network's); test accuracy is shown, never used.")
    for r in chosen:
        print(f"chosen for {r['experiment']}: {choice_overrides(r, keys)} (val {100 * r['val_acc']:.1f} %, "
              f"n={r['n']})")
    print(f"table: {out}")
    return 0


def add_subparser(sub) -> None:
    import argparse

    p = sub.add_parser("tune", help="train a grid of runs per experiment and choose by validation accuracy",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("items", nargs="+", metavar="EXP_OR_OVERRIDE",
                   help="experiment files (each gets the same grid and its own choice), then key=value overrides "
                        "applied to every run")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a grid axis, e.g. optim.lr=0.01,0.03,0.1 (repeat for a cartesian product)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds per grid point (default 0); the choice "
                                                "uses their mean validation accuracy")
    p.add_argument("--name", help="tune name (default: the experiment files' stems); runs land in "
                                  "<out_dir>/sweeps/tune_<name>/")
    p.add_argument("--out", help="CSV table (default: results/tune/<name>.csv)")
    p.add_argument("--print-choice", action="store_true",
                   help="print only the chosen override(s): `key=value ...` (several experiments: one line each, "
                        "`EXPERIMENT_FILE key=value ...`)")
    p.add_argument("--workers", type=int, default=1, help="train N runs at once (as lwt sweep --workers)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their status; train nothing")
    p.set_defaults(func=cmd_tune, trailing_overrides="items")
