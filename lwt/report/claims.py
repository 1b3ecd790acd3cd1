"""``lwt claims``: a verdict per thesis claim, from the committed result tables alone -> docs/thesis_claims.md.

It reads only what ``lwt results`` writes (``results/NAME.csv``, one row per run, and ``NAME_runs.jsonl``,
each run's config), never a run folder or an in-memory result, so a fresh clone rebuilds the same document
byte for byte: inputs are read in a fixed order, rows sorted, numbers formatted to fixed digits, no dates.

Every effect is a difference paired by seed (seed s of side A minus seed s of side B: same split, subset and
initial weights), summarised by its mean and 95 % Student-t interval (lwt.report.stats). The rule, applied by
``verdict`` and printed in the document:
- *not tested*: the table is missing, has fewer than ``MIN_N`` paired seeds, or its runs do not meet the
  protocol of docs/protocol.md (every run on the full test set, ``data.test_subset`` unset; every greedy
  stage trained for its whole annealed budget, ``curriculum.stage_end=fixed``, the longest of at least
  ``MIN_EPOCHS`` epochs: an arm may shorten its early stages on purpose) -- a pre-protocol table cannot decide
  anything;
- *supported*: the interval excludes 0 in the claimed direction;
- *not supported*: the interval excludes 0 in the other direction, or lies inside +-``EQUIV`` (an effect
  too small to matter, shown with confidence; for a difference of critical layers, +-``EQUIV_LAYERS``);
- *inconclusive*: otherwise.
A claim with several cells (architectures, sizes) is supported / not supported / not tested when every
cell is; a mix is inconclusive.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lwt.config import Config, flatten, to_dict
from lwt.errors import LwtError
from lwt.report.stats import summarize

MIN_N = 3
DEFAULTS = {k: "" if v is None else str(v) for k, v in flatten(to_dict(Config())).items()}  # as the CSVs write them
EQUIV = 0.01  # accuracy fraction: 1 point
EQUIV_LAYERS = 0.5  # a critical layer that moves by less than half a block has not moved
# A plateau stop ends a stage before its step/cosine schedule (scaled to the epoch bound) has annealed, so the
# protocol trains fixed, annealed budgets; the CPU tables from before the protocol had 1-3 epochs per stage.
MIN_EPOCHS = 10


@dataclass(frozen=True)
class Claim:
    key: str
    text: str
    table: str               # NAME of results/NAME.csv
    effect: str              # what A - B is, in words
    cell: tuple[str, ...]    # columns that split the table into cells
    side_a: Callable[[dict], bool]
    side_b: Callable[[dict], bool]
    metric_a: str
    metric_b: str
    figure: str
    # several A - B comparisons per cell, each its own row ("k=2 - k=1"); empty: the one of side_a, side_b
    contrasts: tuple[tuple[str, Callable[[dict], bool], Callable[[dict], bool]], ...] = ()
    # a column the comparison runs across: A is side_a's rows at its largest value, B side_b's at its smallest
    across: str | None = None
    unit: str = "points"  # of the effect: accuracy "points" (the fractions x 100) or "layers"

    @property
    def command(self) -> str:
        """What makes the table: the sweep's CPU variant, then ``lwt results``."""
        return (f"lwt sweep experiments/sweeps/{self.table.removesuffix('_cpu')}.yaml --variant cpu && "
                f"lwt results runs/ --sweep {self.table} --out results/{self.table}.csv")


def _mode(*modes: str) -> Callable[[dict], bool]:
    return lambda r: r["mode"] in modes


def _model(name: str) -> Callable[[dict], bool]:
    return lambda r: r["model"] == name


CLAIMS = [
    Claim("K", "Belilovsky's ranking on their networks: k=3 >= k=2 >= k=1 "
          "(tested: k=2 - k=1, k=3 - k=2, k=3 - k=1 > 0)",
          "belilovsky_cifar10_cpu", "test acc of the k=a net - the k=b net, last stage", ("dataset",),
          _model("belilovsky_k3"), _model("belilovsky_k1"),  # unused: its contrasts are the cells
          "final_test_acc", "final_test_acc", "paper_figures/fig9_belilovsky.png",
          contrasts=tuple((f"k={a} - k={b}", _model(f"belilovsky_k{a}"), _model(f"belilovsky_k{b}"))
                          for a, b in ((2, 1), (3, 2), (3, 1)))),
    Claim("C1", "the greedy-E2E gap depends on the architecture (E2E - greedy > 0 per architecture)",
          "gap_cpu", "test acc E2E - greedy, last stage", ("model", "dataset"),
          _mode("e2e"), _mode("greedy"), "final_test_acc", "final_test_acc", "paper_figures/fig2_gap.png"),
    # C2 and C3 are read from the same runs: an 8-stage network at several sizes and aux depths
    Claim("C2", "greedy saturates after a critical layer while E2E keeps gaining (E2E - greedy > 0, >= 8 stages)",
          "early_overfitting_cpu", "test acc E2E - greedy, last stage",
          ("model", "dataset", "data.train_subset", "model.aux.k"),
          _mode("e2e"), _mode("greedy"), "final_test_acc", "final_test_acc", "paper_figures/fig4_critical.png"),
    Claim("C3", "early layers overfit: block 1's un-augmented train - test gap is larger for greedy than E2E",
          "early_overfitting_cpu", "gap at depth 1 (train - test), greedy - E2E",
          ("model", "dataset", "data.train_subset", "model.aux.k"),
          _mode("greedy"), _mode("e2e"), "gap_depth1", "gap_depth1", "paper_figures/fig3_overfitting.png"),
    Claim("C3b", "the critical layer moves deeper with more training data (greedy's critical layer at the largest "
          "training set - at the smallest, per aux k)", "early_overfitting_cpu",
          "greedy's critical layer (SE rule), largest training set - smallest; a run that never saturated counts as "
          "one block beyond its last", ("model", "dataset", "model.aux.k"), _mode("greedy"), _mode("greedy"),
          "critical_layer", "critical_layer", "paper_figures/fig4_critical.png", across="data.train_subset",
          unit="layers"),
    Claim("C4", "remedies for the early layers raise greedy accuracy (remedy - plain greedy > 0)",
          "remedies_cpu", "test acc remedy - plain greedy, last stage", ("model", "dataset", "experiment", "remedy"),
          _mode("greedy", "dgl"), _mode("greedy"), "final_test_acc", "final_test_acc",
          "paper_figures/fig5_remedies.png"),
    Claim("I", "intervention: greedy from E2E's blocks 1..j (frozen), or with blocks 1..j stopped early, beats plain "
          "greedy (arm - plain greedy > 0)", "intervention_cpu", "test acc arm - plain greedy, last stage",
          ("model", "dataset", "experiment", "remedy"), _mode("greedy"), _mode("greedy"), "final_test_acc",
          "final_test_acc", "paper_figures/fig8_intervention.png"),
]
ARMS = ("C4", "I")  # claims whose side A is several arms, each against the plain greedy rows (no remedy)


def _read_csv(path: Path, needed: list[str]) -> list[dict]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in needed if c not in (reader.fieldnames or [])]
        if missing:
            raise LwtError(f"{path}: missing column(s) {', '.join(missing)}; a table from `lwt results` has "
                           f"{', '.join(needed)}")
        return list(reader)


def _float(path: Path, row: dict, col: str) -> float | None:
    text = row.get(col) or ""
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise LwtError(f"{path}: column {col} holds {text!r}; valid: a number or empty") from None


def meets_protocol(archive: Path) -> str | None:
    """None when every archived run meets the protocol, else why not (one phrase)."""
    if not archive.exists():
        return f"no {archive.name}"
    for line in sorted(archive.read_text().splitlines()):
        if not line.strip():
            continue
        try:
            cfg = json.loads(line)["config"]
        except (ValueError, KeyError, TypeError):
            raise LwtError(
                f"{archive}: a line is not a run record {{\"config\": ...}} as `lwt results` writes") from None
        if cfg.get("data.test_subset") is not None:
            return "pre-protocol: test subset, not the full test set"
        if cfg.get("mode") not in ("greedy", None):
            continue
        if cfg.get("curriculum.stage_end") != "fixed":
            return "greedy stages stopped on a plateau, before their schedule annealed"
        epochs = cfg.get("curriculum.stage_epochs") or [cfg.get("curriculum.epochs_per_stage") or 0]
        if max(epochs) < MIN_EPOCHS:
            return f"pre-protocol: greedy stages of fewer than {MIN_EPOCHS} epochs"
    return None


def _short(value: str) -> str:
    """A run folder (curriculum.init_from) by its last two parts; any other value as it is."""
    return "/".join(value.split("/")[-2:]) if "/" in value else value


def _seeds(path: Path, rows: list[dict], metric: str, deepest: int) -> dict[str, float]:
    return {r["seed"]: v for r in rows if (v := _value(path, r, metric, deepest)) is not None}


def _value(path: Path, row: dict, metric: str, deepest: int) -> float | None:
    """The row's metric; a greedy run without a critical layer that trained every stage (``deepest``: as many as
    the table's deepest run) never saturated: its critical layer counts as one block beyond its last (a lower
    bound)."""
    value = _float(path, row, metric)
    if value is None and metric == "critical_layer" and deepest and _stages(row) == deepest:
        return deepest + 1.0
    return value


def cells(claim: Claim, results: Path) -> list[dict]:
    """One dict per cell: label, n, mean, lo, hi (fractions) and verdict, sorted by label."""
    path = results / f"{claim.table}.csv"
    if not path.exists():
        return []
    rows = _read_csv(path, ["experiment", "mode", "model", "dataset", "seed", claim.metric_a, claim.metric_b,
                            *([claim.across] if claim.across else [])])
    why = meets_protocol(results / f"{claim.table}_runs.jsonl")
    config_cols = [c for c in rows[0] if "." in c and c not in (*claim.cell, claim.across)] if rows else []
    out: dict[str, dict] = {}
    deepest = max((_stages(r) for r in rows), default=0)
    for r in rows:
        # C4: a remedy is any config column a greedy/DGL row sets to other than the schema's default (the plain
        # greedy baseline leaves them all at it: empty, or finetune.epochs=0 once a fine-tune arm is in the table)
        r["remedy"] = " ".join(f"{c}={_short(r[c])}" for c in config_cols if r.get(c) and r[c] != DEFAULTS.get(c))
    split: dict[tuple, list[dict]] = {}
    for r in rows:
        split.setdefault(tuple(r.get(c, "") for c in claim.cell if c not in ("experiment", "remedy")), []).append(r)
    for key, members in sorted(split.items()):
        armed = claim.key in ARMS
        for name, side_a, side_b in claim.contrasts or (("", claim.side_a, claim.side_b),):
            b = [r for r in members if side_b(r) and not (armed and (r["remedy"] or r["mode"] != "greedy"))]
            arms = sorted({(r["experiment"], r["remedy"]) for r in members if side_a(r)}) if armed else [None]
            for arm in arms:
                a = [r for r in members if side_a(r) and (arm is None or (r["experiment"], r["remedy"]) == arm)]
                if armed and a and all(x in b for x in a):
                    continue  # the baseline itself
                contrast = name
                if claim.across:  # the largest value of the column against its smallest
                    values = sorted({_float(path, r, claim.across) for r in a + b} - {None})
                    if len(values) < 2:
                        continue
                    a = [r for r in a if _float(path, r, claim.across) == values[-1]]
                    b = [r for r in b if _float(path, r, claim.across) == values[0]]
                    contrast = f"{claim.across} {values[-1]:g} - {values[0]:g}"
                label = " / ".join([*(k for k in key if k), *([contrast] if contrast else []),
                                    *([" ".join(x for x in arm if x)] if arm else [])])
                out[label] = _cell(path, label, a, b, claim, why, deepest)
    return [out[k] for k in sorted(out)]


def _cell(path: Path, label: str, a: list[dict], b: list[dict], claim: Claim, why: str | None, deepest: int) -> dict:
    """A - B paired by seed over the seeds both sides have."""
    va, vb = _seeds(path, a, claim.metric_a, deepest), _seeds(path, b, claim.metric_b, deepest)
    common = sorted(set(va) & set(vb), key=lambda s: (len(s), s))
    s = summarize([va[x] - vb[x] for x in common])
    equiv = EQUIV_LAYERS if claim.unit == "layers" else EQUIV
    return {"label": label, "n": s.n, "mean": s.mean, "lo": s.lo, "hi": s.hi,
            "verdict": verdict(s.n, s.lo, s.hi, why, equiv), "why": why}


def _stages(row: dict) -> int:
    """How many stages the run trained: its non-empty test_acc_stage columns."""
    return sum(1 for c, v in row.items() if c.startswith("test_acc_stage") and v not in (None, ""))


def verdict(n: int, lo: float | None, hi: float | None, why: str | None = None, equiv: float = EQUIV) -> str:
    if why is not None or n < MIN_N or lo is None or hi is None:
        return "not tested"
    if lo > 0:
        return "supported"
    if hi < 0 or (lo > -equiv and hi < equiv):
        return "not supported"
    return "inconclusive"


def combine(verdicts: list[str]) -> str:
    if not verdicts:
        return "not tested"
    return verdicts[0] if len(set(verdicts)) == 1 else "inconclusive"


def _pct(x: float | None, unit: str = "points") -> str:
    return "-" if x is None else f"{(100 if unit == 'points' else 1) * x:+.2f}"


def render(results: Path) -> str:
    lines = ["# Thesis claims: verdicts from the committed tables", "",
             "Written by `lwt claims` from `results/*.csv` and `results/*_runs.jsonl` alone; do not edit by hand.",
             "Effects are differences paired by seed, in accuracy points (%) unless a claim says layers, with 95 % "
             "Student-t intervals.", "",
             "## The rule", "", *[ln.strip() for ln in __doc__.split("verdict`` and printed in the document:")[1]
                                  .split('"""')[0].strip().splitlines()],
             f"(MIN_N = {MIN_N}; EQUIV = {100 * EQUIV:g} point; EQUIV_LAYERS = {EQUIV_LAYERS:g} layer; "
             f"MIN_EPOCHS = {MIN_EPOCHS}.)", "",
             "## Summary", "", "| claim | verdict | table | figure | command |", "|---|---|---|---|---|"]
    detail = []
    for c in CLAIMS:
        rows = cells(c, results)
        lines.append(f"| {c.key}: {c.text} | **{combine([r['verdict'] for r in rows])}** | "
                     f"`results/{c.table}.csv` | `{c.figure}` | `{c.command}` |")
        detail += [f"### {c.key}", "", f"Effect: {c.effect} ({c.unit}).", ""]
        if not rows:
            detail += [f"No table `results/{c.table}.csv`: not tested.", ""]
            continue
        detail += ["| cell | n | effect | 95 % interval | verdict | why |", "|---|---|---|---|---|---|"]
        detail += [f"| {r['label']} | {r['n']} | {_pct(r['mean'], c.unit)} | [{_pct(r['lo'], c.unit)}, "
                   f"{_pct(r['hi'], c.unit)}] | "
                   f"{r['verdict']} | {r['why'] or (f'n < {MIN_N}' if r['n'] < MIN_N else '')} |" for r in rows]
        detail.append("")
    return "\n".join([*lines, "", "## Per cell", "", *detail]).rstrip() + "\n"


def run(args) -> int:
    text = render(Path(args.results))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    return 0


def add_subparser(sub) -> None:
    p = sub.add_parser("claims", help="a verdict per thesis claim from the committed tables -> docs/thesis_claims.md")
    p.add_argument("--results", default="results", help="folder of `lwt results` tables (default results)")
    p.add_argument("--out", default="docs/thesis_claims.md", help="document to write (default docs/thesis_claims.md)")
    p.set_defaults(func=run)
