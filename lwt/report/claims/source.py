"""The committed tables as `lwt claims` reads them: ``results/NAME.csv`` (a row per run, as `lwt results` writes
it), ``results/NAME_runs.jsonl`` (each run's flat config and result.json: the protocol check, the test-set size,
the scale) and ``results/probes/*.json`` (`lwt probe` reports); and the comparisons a claim makes in a table.

Columns are read by name, so a table with more columns (per-image outputs, a paired critical layer) reads the
same; a column a claim needs and the table lacks is one error line.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from lwt.config import Config, flatten, to_dict
from lwt.config.files import read_data
from lwt.errors import LwtError
from lwt.report.stats import Term
from lwt.run.critical import critical_layer
from lwt.run.per_image import PerImage, read_archived

from .spec import Claim, Side

DEFAULTS = {k: "" if v is None else str(v) for k, v in flatten(to_dict(Config())).items()}  # as the CSVs write them
NEEDED = ["experiment", "mode", "model", "dataset", "seed"]
PAIRED, ONLINE = "paired", "online"  # where a greedy run's L* came from (Table.critical_layer)


class Measure(NamedTuple):
    """A run's value of an effect's ingredient and the test accuracies it contains (their sampling noise); with
    per-image outputs, ``images``: the same combination of per-image correct (1) / wrong (0) indicators, an (N,)
    array whose mean is ``value`` up to the CSV's rounding (None without them)."""

    value: float
    terms: list[Term]
    images: Any = None

    def minus(self, other: Measure) -> Measure:
        """This measure less ``other`` (their test-set terms and per-image indicators carried along)."""
        same = self.images is not None and other.images is not None and self.images.shape == other.images.shape
        images = self.images - other.images if same else None
        return Measure(self.value - other.value, self.terms + [(-c, p, n) for c, p, n in other.terms], images)


def natural(text: str) -> tuple:
    """Sort key that puts 500 before 1000."""
    return tuple((0, float(t), "") if re.fullmatch(r"-?\d+(\.\d+)?", t) else (1, 0.0, t)
                 for t in re.split(r"(-?\d+(?:\.\d+)?)", text) if t)


@dataclass
class Table:
    path: Path
    rows: list[dict]
    records: dict[str, dict] = field(default_factory=dict)  # run_dir -> {"config": ..., "result": ...}
    why: str | None = None  # the protocol the runs miss, or None
    lstar: dict[str, str] = field(default_factory=dict)  # run_dir -> where its L* came from (PAIRED or ONLINE)
    _images: dict[str, PerImage | None] = field(default_factory=dict, repr=False)

    def number(self, row: dict, column: str) -> float | None:
        text = row.get(column) or ""
        if text == "":
            return None
        try:
            return float(text)
        except ValueError:
            raise LwtError(f"{self.path}: column {column} holds {text!r}; valid: a number or empty") from None

    def record(self, row: dict) -> dict:
        return self.records.get(row.get("run_dir") or "", {})

    def test_images(self, row: dict) -> int | None:
        """The run's test-set size: a ``test_images`` column where the table has one, else its archived result."""
        n = self.number(row, "test_images") or (self.record(row).get("result") or {}).get("test_images")
        return int(n) if n else None

    def per_image(self, row: dict) -> PerImage | None:
        """The run's archived per-image predictions (results/NAME_per_image/, named by its archive line), or None
        for a run archived without them; one LwtError for a file named but missing or damaged."""
        key = row.get("run_dir") or ""
        if key not in self._images:
            record = self.record(row)
            archive = self.path.with_name(f"{self.path.stem}_runs.jsonl")
            self._images[key] = read_archived(archive, record) if record.get("per_image") else None
        return self._images[key]

    def _test_correct(self, row: dict, column: str, value: float):
        """The (N,) 0/1 per-image correctness behind the test accuracy ``column`` of ``row``, or None: no per-image
        file, a test set other than the whole test split in order, no such depth, or an accuracy that is not the
        table's (more than half an image apart)."""
        p = self.per_image(row)
        if p is None or (p.test_index is not None and (p.test_index != np.arange(len(p.test_index))).any()):
            return None
        result, kind = self.record(row).get("result") or {}, "pred"
        if column.startswith("test_acc_stage"):
            depth = int(column.removeprefix("test_acc_stage"))
        elif column == "selected_test_acc":
            depth = result.get("selected_depth")
        elif column == "final_test_acc" and result.get("finetune") and p.finetune_depths:
            depth, kind = max(p.finetune_depths), "finetune"
        elif column == "final_test_acc" and p.depths:
            depth = max(p.depths)
        else:
            return None
        try:
            correct = p.correct("test", depth, kind).astype(float)
        except LwtError:
            return None
        return correct if abs(correct.mean() - value) <= 0.5 / len(correct) else None

    def critical_layer(self, row: dict) -> int | None:
        """L* of a greedy run: the paired test (lwt.run.critical: the shallowest depth that no deeper depth beats
        on the same validation images, one-sided exact McNemar, Holm over the deeper depths, alpha 0.05) on its
        archived per-image validation correctness; without it, the table's ``critical_layer`` (the curriculum's
        online rule). ``lstar`` records which, per run."""
        p = self.per_image(row)
        if p is not None and p.depths:
            self.lstar[row.get("run_dir") or ""] = PAIRED
            return critical_layer(p.val_correct, p.depths)
        value = self.number(row, "critical_layer")
        self.lstar[row.get("run_dir") or ""] = ONLINE
        return None if value is None else int(value)

    def lstar_note(self, rows: list[dict]) -> str:
        """Where the L* of ``rows``' greedy runs came from, in one sentence."""
        sources = [self.lstar[k] for k in dict.fromkeys(r.get("run_dir") or "" for r in rows) if k in self.lstar]
        if not sources:
            return ""
        paired, n = sources.count(PAIRED), len(sources)
        return (f"L*: the paired test (one-sided exact McNemar, Holm, alpha 0.05) on archived per-image validation "
                f"correctness for {paired} of {n} greedy runs" + ("." if paired == n else
                "; for the others the table's `critical_layer`, the curriculum's online rule of their protocol "
                "(fallback: no per-image archive)."))

    def stages(self, row: dict) -> int:
        """How many stages the run trained: its non-empty test_acc_stage columns."""
        return sum(1 for c, v in row.items() if c.startswith("test_acc_stage") and v not in (None, ""))

    @property
    def deepest(self) -> int:
        return max((self.stages(r) for r in self.rows), default=0)

    def measure(self, row: dict, column: str) -> Measure | None:
        """The row's ``column`` with its test-set terms: a test accuracy carries its own binomial noise, a train -
        test gap the noise of the test accuracy it subtracts, anything else (a critical layer, chosen on the
        validation set) none. A greedy run without a critical layer that trained every stage (as many as the
        table's deepest run) never saturated: its critical layer counts as one block beyond its last (a lower
        bound)."""
        if column == "critical_layer":
            value = self.critical_layer(row)
            if value is None and self.deepest and self.stages(row) == self.deepest:
                value = self.deepest + 1
            return None if value is None else Measure(float(value), [])
        value = self.number(row, column)
        if value is None:
            return None
        n = self.test_images(row)
        if column.startswith("gap_depth"):
            p = self.number(row, "test_acc_stage" + column.removeprefix("gap_depth"))
            return Measure(value, [(-1.0, 0.5 if p is None else p, n)])  # p unknown: 0.5, the largest variance
        if "test_acc" in column:
            return Measure(value, [(1.0, value, n)], self._test_correct(row, column, value))
        return Measure(value, [])


REGENERATE = "regenerate it with `lwt results`"


def _read_csv(path: Path, needed: list[str], numeric: list[str]) -> list[dict]:
    """The table's rows; LwtError naming the file and line for a missing column, a row with more or fewer fields
    than the header (a truncated or hand-edited table) or a ``numeric`` column that holds no number."""
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in needed if c not in header]
            if missing:
                raise LwtError(f"{path}: missing column(s) {', '.join(missing)}; a table from `lwt results` has "
                               f"{', '.join(needed)}")
            check = [c for c in header if c in numeric or c.startswith(("test_acc_stage", "gap_depth"))]
            rows = []
            for row in reader:
                line = reader.line_num
                if None in row or None in row.values():
                    given = len(header) + len(row.get(None) or []) - sum(v is None for v in row.values())
                    raise LwtError(f"{path}, line {line}: {given} field(s) where the header has {len(header)}; "
                                   f"a truncated or hand-edited table? {REGENERATE}")
                for column in check:
                    text = row[column]
                    try:
                        float(text) if text != "" else None
                    except ValueError:
                        raise LwtError(f"{path}, line {line}: column {column} holds {text!r}; valid: a number or "
                                       f"empty") from None
                rows.append(row)
            return rows
    except (csv.Error, UnicodeDecodeError) as e:
        raise LwtError(f"{path} is not a CSV table ({e}); {REGENERATE}") from None


def _records(archive: Path) -> list[dict]:
    out = []
    try:
        text = archive.read_text() if archive.exists() else ""
    except UnicodeDecodeError as e:
        raise LwtError(f"{archive} is not a text file ({e}); {REGENERATE}") from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    for n, line in sorted(lines, key=lambda x: x[1]):
        try:
            record = json.loads(line)
        except ValueError as e:
            raise LwtError(f"{archive}, line {n}: not JSON ({e}); {REGENERATE}") from None
        if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
            raise LwtError(f"{archive}, line {n}: not a run record {{\"config\": {{...}}, ...}} as `lwt results` "
                           f"writes it; {REGENERATE}")
        out.append(record)
    return out


def meets_protocol(records: list[dict], archive: Path, min_epochs: int) -> str | None:
    """None when every archived run meets the protocol (docs/protocol.md), else why not (one phrase)."""
    if not archive.exists():
        return f"no {archive.name}"
    for cfg in (r["config"] for r in records):
        if cfg.get("data.test_subset") is not None:
            return "pre-protocol: test subset, not the full test set"
        if cfg.get("mode") not in ("greedy", None):
            continue
        if cfg.get("curriculum.stage_end") != "fixed":
            return "greedy stages stopped on a plateau, before their schedule annealed"
        if cfg.get("curriculum.critical_patience") is not None:
            return "greedy runs stopped after the online critical-layer rule (curriculum.critical_patience): a " \
                   "claim's runs train every stage"
        epochs = cfg.get("curriculum.stage_epochs") or [cfg.get("curriculum.epochs_per_stage") or 0]
        if max(epochs) < min_epochs:
            return f"pre-protocol: greedy stages of fewer than {min_epochs} epochs"
    return None


def archived_table(path: Path, rows: list[dict]) -> Table:
    """``rows`` of the table at ``path`` with the run records of its archive (``<table>_runs.jsonl``), for the
    per-run reads of a Table (per-image outputs, L*) outside a claim."""
    records = _records(path.with_name(f"{path.stem}_runs.jsonl"))
    return Table(path, rows, {r.get("run_dir") or (r.get("result") or {}).get("run_dir") or "": r for r in records})


def load_table(results: Path, claim: Claim, min_epochs: int) -> Table | None:
    """The claim's table, or None when results/ has no such table."""
    path = results / f"{claim.table}.csv"
    if not path.exists():
        return None
    extra = [c for c in (claim.across, claim.factor, claim.dose) if c]
    metric = [claim.metric] if claim.type not in ("saturation", "descriptive") else []
    numeric = [*metric, *(c for c in (claim.across,) if c), "test_images", "critical_layer"]
    rows = _read_csv(path, [*NEEDED, *metric], numeric)
    table = archived_table(path, rows)
    sides = [k for c in claim.comparisons() for side in (c.a, c.b) for k in side]
    fill_constant_columns(table, [*dict.fromkeys([*extra, *claim.cell, *sides])])
    archive = path.with_name(f"{claim.table}_runs.jsonl")
    table.why = meets_protocol(list(table.records.values()), archive, min_epochs)
    return table


def fill_constant_columns(table: Table, columns: list[str], required: bool = True) -> None:
    """Fill in the config columns a claim names that the table leaves out: `lwt results` writes only the keys its
    runs vary, so a table whose runs share one training-set size has no ``data.train_subset`` column. Each row
    gets its run's value from the archived config, written as the table writes values; where the archive does
    not hold it, LwtError naming the column (``required``) or the column stays out."""
    from lwt.console import cell

    absent = [c for c in columns if table.rows and c not in table.rows[0]]
    for column in absent:
        values = [table.record(row).get("config", {}) for row in table.rows]
        if "." not in column or not all(column in config for config in values):
            if not required:
                continue
            raise LwtError(f"{table.path}: missing column {column}, and not every run's archived config "
                           f"({table.path.stem}_runs.jsonl) holds it; {REGENERATE}")
        for row, config in zip(table.rows, values):
            row[column] = cell(config[column])


def _short(value: str) -> str:
    """A run folder (curriculum.init_from) by its last two parts; any other value as it is."""
    return "/".join(value.split("/")[-2:]) if "/" in value else value


def _matches(row: dict, side: Side) -> bool:
    return all(row.get(column) in values for column, values in side.items())


@dataclass
class Comparison:
    """Side A's and side B's runs of one cell (and contrast, arm or dose), to be paired by seed."""

    key: tuple[str, ...]
    name: str
    arm: str
    a: list[dict]
    b: list[dict]
    adjacent: bool = True

    @property
    def label(self) -> str:
        return " / ".join([*(k for k in self.key if k), *([self.name] if self.name else []),
                           *([self.arm] if self.arm else [])])


def comparisons(claim: Claim, table: Table) -> list[Comparison]:
    """Split the table into the claim's cells (plus its factor or dose column), then each cell into side A and
    side B per contrast; an existential claim's side A into arms: each (experiment, remedy), a remedy being the
    config columns it sets to other than the schema's default (the plain greedy baseline leaves them all there:
    empty, or finetune.epochs=0 once a fine-tune arm is in the table). Sorted by label, numbers in order."""
    # a cell holding none of the claim's runs (another stratum of a shared table) is not one of its cells
    contrasts = claim.comparisons()
    rows = [r for r in table.rows if any(_matches(r, c.a) or _matches(r, c.b) for c in contrasts)]
    cell = [*claim.cell, *(c for c in (claim.factor, claim.dose) if c)]
    if claim.arms:
        config = [c for c in rows[0] if "." in c and c not in (*cell, claim.across)] if rows else []
        for r in rows:
            r["remedy"] = " ".join(f"{c}={_short(r[c])}" for c in config if r.get(c) and r[c] != DEFAULTS.get(c))
    split: dict[tuple, list[dict]] = {}
    for r in rows:
        split.setdefault(tuple(r.get(c, "") for c in cell), []).append(r)
    out = []
    for key, members in split.items():
        for contrast in contrasts:
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
                    values = sorted({table.number(r, claim.across) for r in a + b} - {None})
                    if len(values) < 2:
                        continue
                    a = [r for r in a if table.number(r, claim.across) == values[-1]]
                    side_b = [r for r in b if table.number(r, claim.across) == values[0]]
                    name = f"{claim.across} {values[-1]:g} - {values[0]:g}"
                out.append(Comparison(key, name, " ".join(x for x in arm if x) if arm else "", a, side_b,
                                      contrast.adjacent))
    return sorted(out, key=lambda c: natural(c.label))


def read_probes(folder: Path) -> list[dict]:
    """The `lwt probe` reports in ``folder`` (file-name order), each with its seed (from its run name)."""
    reports = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            report = read_data(path, "json", what="a report of lwt probe")
            seed = re.search(r"seed(\d+)$", report["run"]).group(1)
            cell = re.sub(r"_?seed\d+$", "", report["run"].split("/")[-1])
            report.update(seed=seed, cell=f"{report['model']} / {cell}" if cell else report["model"])
            if "/" in report["run"]:  # <experiment>/<run_name>: a claim's side may name the experiment
                report.setdefault("experiment", report["run"].split("/")[0])
            report["rows"], report["protocol"]["test_images"]  # noqa: B018 -- the fields used
        except (ValueError, KeyError, TypeError, AttributeError):
            raise LwtError(f"{path}: not a probe report as `lwt probe` writes it (run ending in seedN, mode, "
                           f"model, protocol.test_images, rows of depth / test_acc)") from None
        reports.append(report)
    return reports
