"""``lwt claims``: a verdict per thesis claim, from the committed result tables alone -> docs/thesis_claims.md.

The claims are data, experiments/claims.yaml, validated by ``ClaimsFile``. The command reads only what
``lwt results`` writes (``results/NAME.csv``, one row per run, and ``NAME_runs.jsonl``, each run's config),
never a run folder or an in-memory result, so a fresh clone rebuilds the same document byte for byte: inputs
are read in a fixed order, rows sorted, numbers formatted to fixed digits, no dates.

Every effect is a difference paired by seed (``lwt.report.paired.by_seed``: seed s of side A minus seed s of
side B, same split, subset and initial weights), summarised by its mean and 95 % Student-t interval; ``verdict``
applies ``RULE``, which the document prints.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lwt.config import Config, flatten, load_yaml, to_dict
from lwt.config.files import experiments_dir
from lwt.errors import LwtError
from lwt.report.paired import by_seed
from lwt.run.dir import atomic_write_text

DEFAULTS = {k: "" if v is None else str(v) for k, v in flatten(to_dict(Config())).items()}  # as the CSVs write them
RULE = """\
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
cell is; a mix is inconclusive."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class Thresholds(_Entry):
    min_n: int = Field(ge=2)
    min_epochs: int = Field(ge=1)
    equiv: float = Field(ge=0)  # accuracy fraction
    equiv_layers: float = Field(ge=0)


Side = dict[str, list[str]]  # column -> the values a row of one side holds in it (as the CSV writes them)


class Contrast(_Entry):
    name: str
    a: Side
    b: Side


class Claim(_Entry):
    """One entry of experiments/claims.yaml (its header says what each key means)."""

    text: str
    type: Literal["universal", "ranking"]  # either way, the claim holds when every cell (contrast) does
    table: str
    effect: str
    unit: Literal["points", "layers"]
    metric: str
    cell: list[str]
    a: Side | None = None
    b: Side | None = None
    contrasts: list[Contrast] = []
    across: str | None = None
    arms: bool = False
    figure: str
    command: str

    @model_validator(mode="after")
    def _sides(self):
        sides = (self.a is not None) + (self.b is not None)
        if not ((sides == 2 and not self.contrasts) or (sides == 0 and self.contrasts)):
            raise ValueError("give either both sides a and b, or contrasts (each with a name, a and b)")
        return self

    def comparisons(self) -> list[Contrast]:
        return self.contrasts or [Contrast(name="", a=self.a, b=self.b)]


class ClaimsFile(_Entry):
    thresholds: Thresholds
    claims: dict[str, Claim]


def load_claims(path: Path | None = None) -> ClaimsFile:
    """The claims file (default: lwt's experiments/claims.yaml, in a checkout or installed); one LwtError line
    naming the file and the key for anything wrong in it."""
    path = Path(path) if path is not None else experiments_dir() / "claims.yaml"
    try:
        return ClaimsFile.model_validate(load_yaml(path.read_text()))
    except OSError as e:
        raise LwtError(f"cannot read the claims file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise LwtError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    except ValidationError as e:
        error = e.errors()[0]
        key = ".".join(str(p) for p in error["loc"]) or "the top level"
        raise LwtError(f"{path}: {key}: {error['msg']}") from None


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


def meets_protocol(archive: Path, min_epochs: int) -> str | None:
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
        if max(epochs) < min_epochs:
            return f"pre-protocol: greedy stages of fewer than {min_epochs} epochs"
    return None


def _short(value: str) -> str:
    """A run folder (curriculum.init_from) by its last two parts; any other value as it is."""
    return "/".join(value.split("/")[-2:]) if "/" in value else value


def _stages(row: dict) -> int:
    """How many stages the run trained: its non-empty test_acc_stage columns."""
    return sum(1 for c, v in row.items() if c.startswith("test_acc_stage") and v not in (None, ""))


def _matches(row: dict, side: Side) -> bool:
    return all(row.get(column) in values for column, values in side.items())


def cells(claim: Claim, results: Path, t: Thresholds) -> list[dict]:
    """One dict per cell: label, n, mean, lo, hi (fractions) and verdict, sorted by label."""
    path = results / f"{claim.table}.csv"
    if not path.exists():
        return []
    rows = _read_csv(path, ["experiment", "mode", "model", "dataset", "seed", claim.metric,
                            *([claim.across] if claim.across else [])])
    why = meets_protocol(results / f"{claim.table}_runs.jsonl", t.min_epochs)
    equiv = t.equiv_layers if claim.unit == "layers" else t.equiv
    deepest = max((_stages(r) for r in rows), default=0)

    def value(row: dict) -> float | None:
        """The row's metric; a greedy run without a critical layer that trained every stage (as many as the
        table's deepest run) never saturated: its critical layer counts as one block beyond its last (a lower
        bound)."""
        v = _float(path, row, claim.metric)
        if v is None and claim.metric == "critical_layer" and deepest and _stages(row) == deepest:
            return deepest + 1.0
        return v

    if claim.arms:  # an arm's remedy: the config columns it sets to other than the schema's default (the plain
        # greedy baseline leaves them all at it: empty, or finetune.epochs=0 once a fine-tune arm is in the table)
        config_cols = [c for c in rows[0] if "." in c and c not in (*claim.cell, claim.across)] if rows else []
        for r in rows:
            r["remedy"] = " ".join(f"{c}={_short(r[c])}" for c in config_cols if r.get(c) and r[c] != DEFAULTS.get(c))
    split: dict[tuple, list[dict]] = {}
    for r in rows:
        split.setdefault(tuple(r.get(c, "") for c in claim.cell), []).append(r)
    out: dict[str, dict] = {}
    for key, members in sorted(split.items()):
        for contrast in claim.comparisons():
            b = [r for r in members if _matches(r, contrast.b)
                 and not (claim.arms and (r["remedy"] or r["mode"] != "greedy"))]
            arms = sorted({(r["experiment"], r["remedy"]) for r in members if _matches(r, contrast.a)}
                          ) if claim.arms else [None]
            for arm in arms:
                a = [r for r in members if _matches(r, contrast.a)
                     and (arm is None or (r["experiment"], r["remedy"]) == arm)]
                if claim.arms and a and all(x in b for x in a):
                    continue  # the baseline itself
                name, side_b = contrast.name, b
                if claim.across:  # the largest value of the column against its smallest
                    values = sorted({_float(path, r, claim.across) for r in a + b} - {None})
                    if len(values) < 2:
                        continue
                    a = [r for r in a if _float(path, r, claim.across) == values[-1]]
                    side_b = [r for r in b if _float(path, r, claim.across) == values[0]]
                    name = f"{claim.across} {values[-1]:g} - {values[0]:g}"
                label = " / ".join([*(k for k in key if k), *([name] if name else []),
                                    *([" ".join(x for x in arm if x)] if arm else [])])
                _, _, s = by_seed(a, side_b, value)
                out[label] = {"label": label, "n": s.n, "mean": s.mean, "lo": s.lo, "hi": s.hi,
                              "verdict": verdict(s.n, s.lo, s.hi, t.min_n, equiv, why), "why": why}
    return [out[k] for k in sorted(out)]


def verdict(n: int, lo: float | None, hi: float | None, min_n: int, equiv: float, why: str | None = None) -> str:
    """``RULE`` for one cell: n paired seeds, the interval [lo, hi], ``why`` the table misses the protocol."""
    if why is not None or n < min_n or lo is None or hi is None:
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


def render(results: Path, spec: ClaimsFile | None = None) -> str:
    spec = spec or load_claims()
    t = spec.thresholds
    lines = ["# Thesis claims: verdicts from the committed tables", "",
             "Written by `lwt claims` from `results/*.csv` and `results/*_runs.jsonl` alone; do not edit by hand.",
             "Effects are differences paired by seed, in accuracy points (%) unless a claim says layers, with 95 % "
             "Student-t intervals.", "", "## The rule", "", RULE,
             f"(MIN_N = {t.min_n}; EQUIV = {100 * t.equiv:g} point; EQUIV_LAYERS = {t.equiv_layers:g} layer; "
             f"MIN_EPOCHS = {t.min_epochs}.)", "",
             "## Summary", "", "| claim | verdict | table | figure | command |", "|---|---|---|---|---|"]
    detail = []
    for key, c in spec.claims.items():
        rows = cells(c, results, t)
        lines.append(f"| {key}: {c.text} | **{combine([r['verdict'] for r in rows])}** | "
                     f"`results/{c.table}.csv` | `{c.figure}` | `{c.command}` |")
        detail += [f"### {key}", "", f"Effect: {c.effect} ({c.unit}).", ""]
        if not rows:
            detail += [f"No table `results/{c.table}.csv`: not tested.", ""]
            continue
        detail += ["| cell | n | effect | 95 % interval | verdict | why |", "|---|---|---|---|---|---|"]
        detail += [f"| {r['label']} | {r['n']} | {_pct(r['mean'], c.unit)} | [{_pct(r['lo'], c.unit)}, "
                   f"{_pct(r['hi'], c.unit)}] | "
                   f"{r['verdict']} | {r['why'] or (f'n < {t.min_n}' if r['n'] < t.min_n else '')} |" for r in rows]
        detail.append("")
    return "\n".join([*lines, "", "## Per cell", "", *detail]).rstrip() + "\n"


def run(args) -> int:
    text = render(Path(args.results), load_claims(args.claims))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out), text)
    print(f"wrote {args.out}")
    return 0


def add_subparser(sub) -> None:
    p = sub.add_parser("claims", help="a verdict per thesis claim from the committed tables -> docs/thesis_claims.md")
    p.add_argument("--results", default="results", help="folder of `lwt results` tables (default results)")
    p.add_argument("--claims", help="claims file (default: lwt's experiments/claims.yaml)")
    p.add_argument("--out", default="docs/thesis_claims.md", help="document to write (default docs/thesis_claims.md)")
    p.set_defaults(func=run)
