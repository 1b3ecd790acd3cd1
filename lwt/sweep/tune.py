"""``lwt tune EXP [EXP ...] --grid key=v1,v2 [--grid ...] [--seeds 0,1] [--max-extend N] [overrides]``: choose
hyperparameters on the validation split only, on a grid that is widened until its optimum is inside it.

Every experiment starts from the same grid (greedy and E2E of one comparison are tuned alike) and gets its own
choice. Each grid point x seed is an ordinary lwt run of a sweep named ``tune_<name>`` (lwt.sweep: run folders
under ``<out_dir>/sweeps/tune_<name>/``, finished points skipped, half-done ones resumed), so a killed tune is
rerun with the same command. The choice per experiment is the grid point with the highest validation
accuracy, averaged over the seeds (``selection_val_acc``):

- greedy and DGL: the best validation accuracy over the stages, i.e. that of the val-selected depth
  (with ``finetune.epochs``: the fine-tuned network's);
- E2E: the network's own (last depth's) validation accuracy.

Ties go to the first grid point in the order the values were listed (list them ascending to prefer the
smaller value). Test accuracy is in the table for information and never enters the choice: the data an
experiment file is tuned on must not be the data its result is reported on.

Seeds: ``--seeds`` defaults to 0,1, at least two per point, so the table shows how far seeds disagree;
fewer only when ``--seeds`` asks for it, with a warning.

Extension: a choice on the largest (or smallest) value of a numeric axis says only that the optimum is there
or beyond. While an experiment's choice sits on such an edge, its axis gets the next value beyond it: the next
term of the grid's geometric progression (the mean ratio, where consecutive ratios agree within
``GEOMETRIC``: 0.01,0.03,0.1 -> 0.316), else x2 above and x0.5 below, to 3 significant digits (integers: at
least 1 away). The new points train as runs of the same sweep, named by their values, and the choice is made
again, for at most ``--max-extend`` rounds per experiment (``--no-extend``: none). A numeric axis must then
be listed in order; new values join it at the end they extend, so ties keep preferring the same side. A
smallest value of 0 is the bound of a non-negative knob (weight decay), not an edge; an axis of one value or
of non-numbers has no edge. The table gives each point's round (``extension``, 0: listed) and, on the chosen
row, ``optimum``: ``interior``, ``edge`` (the cap, --no-extend or a value that cannot be trained stopped the
extension) or ``categorical``. ``--print-choice`` refuses an edge choice in one error line: a value at the
edge of a grid is not an optimum, and an experiment file should not take it as one.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lwt.console import to_csv
from lwt.errors import LwtError
from lwt.run.archive import merge_archive
from lwt.run.dir import atomic_write_text
from lwt.run.result import RunResult
from lwt.sweep import build_sweep, dry_run
from lwt.sweep.runner import execute
from lwt.sweep.spec import format_value

LAYERWISE = ("greedy", "dgl")
MIN_SEEDS = 2  # seeds per grid point a tune needs unless --seeds asks for fewer
MAX_EXTEND = 4  # default --max-extend: rounds of extension per experiment
GEOMETRIC = 1.2  # consecutive ratios within this factor of each other: a geometric grid, extended by its ratio


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


# ---------------------------------------------------------------- the edges of a grid, and the value beyond


def numeric(values: list) -> bool:
    """An axis with an inside and edges: two or more values, all numbers."""
    return len(values) >= 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def check_ordered(grid: dict[str, list]) -> None:
    """A numeric axis to be extended must be listed ascending or descending: its ends are then its edges."""
    for key, values in grid.items():
        if numeric(values) and values not in (sorted(values), sorted(values, reverse=True)):
            raise LwtError(f"--grid {key}={','.join(map(format_value, values))}: list the values in order "
                           "(ascending or descending) so the grid can be extended past its edges, or pass --no-extend")


def edges(point: dict, grid: dict[str, list]) -> list[tuple[str, str]]:
    """(axis, "top" | "bottom") for each numeric axis of ``grid`` whose largest / smallest value ``point`` sits
    on; a smallest value of 0 is the bound of a non-negative knob, not an edge."""
    out = []
    for key, values in grid.items():
        if numeric(values):
            if point[key] == max(values):
                out.append((key, "top"))
            if point[key] == min(values) and min(values) != 0:
                out.append((key, "bottom"))
    return out


def next_value(values: list, side: str) -> int | float | None:
    """The value beyond the axis's largest (``side="top"``) or smallest value: the next term of its geometric
    progression, else x2 / x0.5 (see the module docstring); None where there is none (an edge <= 0, an
    integer axis at 1)."""
    xs = sorted(values)
    positive = [v for v in xs if v > 0]
    ratios = [b / a for a, b in zip(positive, positive[1:])]
    geometric = ratios and max(ratios) <= GEOMETRIC * min(ratios)
    ratio = (positive[-1] / positive[0]) ** (1 / len(ratios)) if geometric else 2.0
    edge = xs[-1] if side == "top" else xs[0]
    if edge <= 0:
        return None
    new = edge * ratio if side == "top" else edge / ratio
    if all(isinstance(v, int) for v in xs):
        new = max(round(new), edge + 1) if side == "top" else min(round(new), edge - 1)
        return new if new > 0 else None
    new = float(f"{new:.3g}")
    return None if new == edge else new


def widened(values: list, side: str, new) -> list:
    """``values`` with ``new`` at the end it extends: after the largest value of an ascending list, first in a
    descending one (the listed order decides ties)."""
    ascending = values == sorted(values)
    return [*values, new] if (side == "top") == ascending else [new, *values]


@dataclass
class Tuning:
    """One experiment's grid as it grows: its values per axis, the round that added each value, why it stopped."""

    label: str  # the experiment file as given
    grid: dict[str, list]
    rounds: int = 0
    added: dict[tuple, int] = field(default_factory=dict)  # (key, repr(value)) -> the round that added it
    stuck: str = ""  # why an edge could not be extended (no value beyond it, one the config refuses)

    def next_grid(self, rows: list[dict], max_extend: int) -> dict[str, list] | None:
        """The grid of the next round: widened past each edge that the choice among ``rows`` (this experiment's
        points) sits on; None when the choice is interior, ``max_extend`` rounds have run or no edge has a
        value beyond it."""
        if self.rounds >= max_extend:
            return None
        best, grid = choose(rows), dict(self.grid)
        for key, side in edges(best, grid):
            new = next_value(grid[key], side)
            if new is None:
                self.stuck = f"no value beyond {key}={format_value(best[key])}"
            else:
                grid[key] = widened(grid[key], side, new)
        return grid if grid != self.grid else None

    def grow(self, grid: dict[str, list]) -> None:
        self.rounds += 1
        for key, values in grid.items():
            self.added.update({(key, repr(v)): self.rounds for v in values if v not in self.grid[key]})
        self.grid = grid


# ---------------------------------------------------------------- the choice and its table


def choose(points: list[dict]) -> dict:
    """The point with the highest ``val_acc`` (mean over seeds); the first such point on a tie. Points are
    dicts of one experiment in grid order; only ``val_acc`` is read."""
    candidates = [p for p in points if p["val_acc"] is not None]
    if not candidates:
        raise LwtError("no grid point has a validation accuracy (is data.val_size 0?)")
    best = max(round(p["val_acc"], 9) for p in candidates)  # rounded: a mean's last bits decide no tie
    return next(p for p in candidates if round(p["val_acc"], 9) == best)


def tune_table(runs: list, keys: list[str], tunings: dict[str, Tuning] | None = None) -> tuple[list[str], list[dict]]:
    """A row per (experiment, grid point), in the order of ``runs``: the seeds' mean val accuracy (the choice's
    input), test accuracies (shown only), per-seed values, the round that added the point, the choice marked
    (``mark_choices``)."""
    points: dict[tuple, dict] = {}
    for r in runs:
        result = r.result()
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
        tuning = (tunings or {}).get(p["base"])
        added = tuning.added if tuning else {}
        p.update({"n": len(vals), "val_acc": _mean(vals), "val_acc_per_seed": ", ".join(f"{v:.4f}" for v in vals),
                  "final_test_acc": _mean(p["_test"]), "selected_test_acc": _mean(p["_selected"]),
                  "seeds": " ".join(map(str, p["seeds"])),
                  "extension": max([added.get((k, repr(p[k])), 0) for k in keys], default=0)})
    mark_choices(rows, keys, tunings)
    columns = ["experiment", "mode", *keys, "extension", "n", "seeds", "val_acc", "val_acc_per_seed",
               "final_test_acc", *(["selected_test_acc"] if any(p["selected_test_acc"] is not None for p in rows)
                                   else []), "chosen", "optimum"]
    return columns, rows


def mark_choices(rows: list[dict], keys: list[str], tunings: dict[str, Tuning] | None = None) -> None:
    """Each experiment's choice among ``rows`` (``base``: the experiment) gets ``chosen="*"`` and ``optimum``:
    ``interior``, ``edge`` (on the largest or smallest value of a numeric axis of its grid: ``tunings``, else
    the values in ``rows``) or ``categorical`` (no numeric axis of two values); other rows get "" in both."""
    for p in rows:
        p.update(chosen="", optimum="")
    for base in dict.fromkeys(p["base"] for p in rows):
        mine = [p for p in rows if p["base"] == base]
        best = choose(mine)
        grid = tunings[base].grid if tunings else {k: list({repr(p[k]): p[k] for p in mine}.values()) for k in keys}
        best["chosen"] = "*"
        best["optimum"] = ("categorical" if not any(numeric(v) for v in grid.values())
                           else "edge" if edges(best, grid) else "interior")


def _mean(values: list) -> float | None:
    xs = [float(v) for v in values if v is not None]
    return statistics.mean(xs) if xs else None


def choice_overrides(row: dict, keys: list[str]) -> str:
    return " ".join(f"{k}={format_value(row[k])}" for k in keys)


def edge_note(row: dict, tuning: Tuning, max_extend: int) -> str:
    """Why a choice on an edge stayed there: which value, and what stopped the extension."""
    where = ", ".join(f"{k}={format_value(row[k])} is its {'largest' if side == 'top' else 'smallest'} value"
                      for k, side in edges(row, tuning.grid))
    why = tuning.stuck or (f"still after {tuning.rounds} extension(s), the cap (--max-extend {max_extend})"
                           if max_extend else "not extended (--no-extend or --max-extend 0)")
    return f"{where}; {why}"


def _markdown(columns: list[str], rows: list[dict]) -> str:
    def cell(c: str, v: Any) -> str:
        if v is None or (c == "extension" and v == 0):
            return ""
        return f"{100 * v:.2f}" if c in ("val_acc", "final_test_acc", "selected_test_acc") else str(v)

    header = [{"val_acc": "val acc (%, chooses)", "final_test_acc": "test acc, last stage (%, not used)",
               "selected_test_acc": "test acc, val-selected depth (%, not used)",
               "extension": "added in round"}.get(c, c) for c in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c, r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- the command


def grow(sweep, experiments: list[str], seeds: list[int], overrides: list[str], max_extend: int,
         train=None, archive: Path | None = None) -> tuple[list, dict[str, Tuning]]:
    """Train ``sweep`` (``train``: None for --dry-run), then, while an experiment's choice sits on an edge of
    its grid (all its points finished) and fewer than ``max_extend`` rounds have run, widen its grid past the
    edge and train the new points as runs of the same sweep. Returns every run and the grown grids.
    ``archive``: the tune's run archive; the runs it holds count as finished (trained on another machine)."""
    if archive is not None:
        sweep.attach_archive(archive)
    tunings = {e: Tuning(e, dict(sweep.grid)) for e in experiments}
    runs = {e: [r for r in sweep.runs if r.base.label == e] for e in experiments}
    keys = list(sweep.grid)
    while True:
        everything = [r for e in experiments for r in runs[e]]
        for i, r in enumerate(everything, 1):
            r.index = i  # one numbering over the experiments' sweeps, for the progress lines
        if train is not None:
            train(everything)
        grown = []
        for e, tuning in tunings.items():
            if not all(r.finished() for r in runs[e]):
                continue
            grid = tuning.next_grid(tune_table(runs[e], keys)[1], max_extend)
            if grid is None:
                continue
            try:
                wider = build_sweep(sweep.name, "lwt tune", [e], grid, seeds, overrides)
            except LwtError as err:  # a value the config refuses (a fraction above 1): the edge stays
                tuning.stuck = f"the value beyond cannot be trained ({err})"
                continue
            if archive is not None:
                wider.attach_archive(archive)
            tuning.grow(grid)
            runs[e] = wider.runs
            grown.append(e)
        if not grown:
            return everything, tunings


def cmd_tune(args) -> int:
    experiments = [x for x in args.items if not ("=" in x and not Path(x).is_file())]
    overrides = [x for x in args.items if x not in experiments]
    if not experiments:
        raise LwtError("lwt tune needs one or more experiment files, e.g. experiments/cifar10/vgg11_e2e.yaml")
    try:
        seeds = [int(s) for s in (args.seeds or "0,1").split(",")]
    except ValueError:
        raise LwtError(f"--seeds {args.seeds!r}: give integers, e.g. --seeds 0,1") from None
    if len(seeds) < MIN_SEEDS:
        print(f"lwt: warning: --seeds {args.seeds} trains {len(seeds)} seed per grid point; a choice needs "
              f"at least {MIN_SEEDS} to show how far seeds disagree", file=sys.stderr, flush=True)
    if args.max_extend < 0:
        raise LwtError(f"--max-extend {args.max_extend} must be 0 or more")
    max_extend = args.max_extend if args.extend else 0
    grid = parse_grid(args.grid)
    if max_extend:
        check_ordered(grid)
    name = args.name or "_".join(Path(e).stem for e in experiments)
    sweep = build_sweep(f"tune_{name}", "lwt tune", experiments, grid, seeds, overrides)
    out = Path(args.out or f"results/tune/{name}.csv")
    archive = out.with_name(f"{out.stem}_runs.jsonl")
    if args.dry_run:
        runs, _ = grow(sweep, experiments, seeds, overrides, max_extend, archive=archive)
        dry_run(sweep, runs)
        if max_extend:
            print(f"(points beyond an edge are added once the grid's points are finished: up to {max_extend} "
                  "rounds per experiment)")
        return 0
    if args.workers < 1:
        raise LwtError(f"--workers {args.workers} must be at least 1")

    def train(runs: list) -> None:
        failed = execute(sweep, runs, args.workers) != 0
        # every finished point is archived at once, so a tune cut short goes on from it on another machine
        out.parent.mkdir(parents=True, exist_ok=True)
        merge_archive(archive, [r.record() for r in runs if r.finished()])
        if failed:
            raise LwtError("some grid points failed (see above); rerun the same command to retry them")

    # --print-choice: stdout carries only the chosen overrides, so training's chatter goes to stderr
    with contextlib.redirect_stdout(sys.stderr) if args.print_choice else contextlib.nullcontext():
        runs, tunings = grow(sweep, experiments, seeds, overrides, max_extend, train, archive)
    keys = list(sweep.grid)
    columns, rows = tune_table(runs, keys, tunings)
    atomic_write_text(out, to_csv(columns, rows))
    chosen = [r for r in rows if r["chosen"]]
    at_edge = [r for r in chosen if r["optimum"] == "edge"]
    if args.print_choice:
        if at_edge:
            raise LwtError("no choice printed: the optimum sits at the edge of the grid for " + "; ".join(
                f"{r['experiment']} ({edge_note(r, tunings[r['base']], max_extend)})" for r in at_edge)
                + f"; widen --grid or raise --max-extend (table: {out})")
        for r in chosen:
            print(choice_overrides(r, keys) if len(chosen) == 1 else f"{r['base']} {choice_overrides(r, keys)}")
        return 0
    print(_markdown(columns, rows))
    print("\nChosen by validation accuracy only (mean over seeds; greedy/DGL: the val-selected depth's, E2E: the "
          "network's); test accuracy is shown, never used.")
    for r in chosen:
        print(f"chosen for {r['experiment']}: {choice_overrides(r, keys)} (val {100 * r['val_acc']:.1f} %, "
              f"n={r['n']}; {r['optimum']})")
    for r in at_edge:
        print(f"edge: {r['experiment']}'s optimum sits at the edge of its grid: "
              f"{edge_note(r, tunings[r['base']], max_extend)}; --print-choice refuses it")
    print(f"table: {out}")
    return 0


def add_subparser(sub) -> None:
    p = sub.add_parser("tune", help="train a grid of runs per experiment and choose by validation accuracy",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("items", nargs="+", metavar="EXP_OR_OVERRIDE",
                   help="experiment files (each starts from the same grid and gets its own choice), then "
                        "key=value overrides applied to every run")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a grid axis, e.g. optim.lr=0.01,0.03,0.1 (repeat for a cartesian product)")
    p.add_argument("--seeds", default=None, help=f"comma-separated seeds per grid point (default 0,1); the choice "
                                                 f"uses their mean validation accuracy; fewer than {MIN_SEEDS} "
                                                 "only with a warning")
    p.add_argument("--extend", action=argparse.BooleanOptionalAction, default=True,
                   help="while an experiment's optimum sits at the largest or smallest value of a numeric axis, "
                        "add the next value beyond it and train it (default: on; --no-extend: the grid as given)")
    p.add_argument("--max-extend", type=int, default=MAX_EXTEND, metavar="N",
                   help=f"at most N rounds of extension per experiment (default {MAX_EXTEND}); an optimum still at "
                        "the edge is reported as edge")
    p.add_argument("--name", help="tune name (default: the experiment files' stems); runs land in "
                                  "<out_dir>/sweeps/tune_<name>/")
    p.add_argument("--out", help="CSV table (default: results/tune/<name>.csv)")
    p.add_argument("--print-choice", action="store_true",
                   help="print only the chosen override(s): `key=value ...` (several experiments: one line each, "
                        "`EXPERIMENT_FILE key=value ...`); refused when an optimum sits at the edge of its grid")
    p.add_argument("--workers", type=int, default=1, help="train N runs at once (as lwt sweep --workers)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their status; train nothing")
    p.set_defaults(func=cmd_tune, trailing_overrides="items")
