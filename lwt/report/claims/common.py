"""What every verdict rule shares: a line of a claim's statistics table, a claim's result, pairing by seed with
the test-set terms carried along, the gate that makes a comparison "not tested", and power."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from lwt.report.paired import by_seed
from lwt.report.stats import Effect, Term, paired_effect, power, seeds_needed

from .source import Measure, Table, comparisons
from .spec import Claim, Thresholds

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_TESTED, DESCRIPTIVE = (
    "supported", "not supported", "inconclusive", "not tested", "descriptive")
SHOWN = "shown, not in the rule"  # a line that informs but does not enter the verdict (a ranking's non-adjacent
# contrast, an interaction's level)


@dataclass
class Line:
    """One row of a claim's statistics table: a cell, contrast, arm or depth."""

    label: str
    effect: Effect | None = None
    seeds: list = field(default_factory=list)
    diffs: list[float] = field(default_factory=list)
    verdict: str = ""
    why: str = ""
    power: float | None = None
    needed: float | None = None
    cols: dict[str, str] = field(default_factory=dict)  # the type's own columns (p, Holm p, TOST, ...)
    short: str = ""  # a shorter name for the summary (an arm's experiment)


@dataclass
class Result:
    verdict: str
    lines: list[Line] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # the names of Line.cols, in order
    tests: list[str] = field(default_factory=list)  # the family's statistics, one sentence each
    headline: Line | None = None  # the line the summary shows (the weakest cell, the best arm, ...)
    headline_text: str = ""  # or, for a family test, its statistic in words
    headline_power: str = ""  # and its n and power
    rows: list[dict] = field(default_factory=list)  # the runs it used (for the scale)
    table: Table | None = None
    why: str | None = None  # why the whole claim is not tested


def band(claim: Claim, t: Thresholds) -> float:
    return t.equiv_layers if claim.unit == "layers" else t.equiv


def sesoi(claim: Claim, t: Thresholds) -> float:
    return t.sesoi_layers if claim.unit == "layers" else t.sesoi


class Paired(NamedTuple):
    seeds: list
    diffs: list[float]
    terms: list[list[Term]]  # per seed: the test accuracies the difference is made of
    effect: Effect
    images: list  # per seed: the difference image by image, or None where a seed has none


def paired(a: list[dict], b: list[dict], measure: Callable[[dict], Measure | None]) -> Paired:
    """A - B paired by seed (``by_seed``) with the test-set terms of both runs of each pair, and their per-image
    differences where every pair has them on the same test images (then the effect's test-set term is estimated
    and bootstrapped, not bounded)."""
    seeds, diffs, _ = by_seed(a, b, lambda r: m.value if (m := measure(r)) is not None else None)
    ms = [{r["seed"]: m for r in side if (m := measure(r)) is not None} for side in (a, b)]
    pairs = [ms[0][s].minus(ms[1][s]) for s in seeds]
    terms, images = [m.terms for m in pairs], [m.images if m.terms else None for m in pairs]
    return Paired(seeds, diffs, terms, paired_effect(diffs, terms, images=images), images)


def compare(claim: Claim, table: Table, t: Thresholds):
    """Each comparison of the claim in the table, its pairing on the claim's metric and its ``line``."""
    for comp in comparisons(claim, table):
        pair = paired(comp.a, comp.b, lambda r: table.measure(r, claim.metric))
        yield comp, pair, line(comp.label, pair, claim, t, table.why)


def gate(protocol: str | None, effect: Effect, t: Thresholds) -> str:
    """Why a comparison is not tested ('' when it is): the protocol, too few seeds, an unknown test-set size."""
    if protocol:
        return protocol
    if effect.n < t.min_n:
        return f"n < {t.min_n}"
    if effect.test_var is None:
        return "test-set size unknown (no test_images in the table or its archive)"
    return ""


def line(label: str, pair: Paired, claim: Claim, t: Thresholds, protocol: str | None, with_power: bool = True) -> Line:
    """A line of ``paired``'s result with its gate (``protocol``: why the table misses the protocol) and its
    power to detect the claim's smallest effect of interest."""
    seeds, diffs, _, effect, _ = pair
    x = Line(label, effect, seeds, diffs, why=gate(protocol, effect, t))
    if with_power:
        x.power = power(effect, sesoi(claim, t), t.alpha)
        x.needed = seeds_needed(effect, sesoi(claim, t), t.alpha, t.power)
    return x


def above(effect: Effect, x: float, why: str) -> str:
    """supported when the interval lies above x, not supported when below, inconclusive when it straddles x."""
    if why or effect.lo is None:
        return NOT_TESTED
    return SUPPORTED if effect.lo > x else NOT_SUPPORTED if effect.hi < x else INCONCLUSIVE


def all_of(verdicts: list[str]) -> str:
    """A claim about every cell: one cell not supported refutes it; every cell supported supports it."""
    if not verdicts or all(v == NOT_TESTED for v in verdicts):
        return NOT_TESTED
    if NOT_SUPPORTED in verdicts:
        return NOT_SUPPORTED
    return SUPPORTED if all(v == SUPPORTED for v in verdicts) else INCONCLUSIVE


def any_of(verdicts: list[str]) -> str:
    """A claim about some arm (or stratum): one supported supports it; all not supported refute it."""
    if not verdicts or all(v == NOT_TESTED for v in verdicts):
        return NOT_TESTED
    if SUPPORTED in verdicts:
        return SUPPORTED
    return NOT_SUPPORTED if all(v == NOT_SUPPORTED for v in verdicts) else INCONCLUSIVE


def weakest(lines: list[Line]) -> Line | None:
    """The tested line whose interval reaches lowest (the one a claim about every cell stands or falls by)."""
    tested = [x for x in lines if not x.why and x.effect and x.effect.lo is not None]
    return min(tested, key=lambda x: x.effect.lo) if tested else (lines[0] if lines else None)


def p_text(p: float | None) -> str:
    return "-" if p is None else "< 0.001" if p < 0.001 else f"{p:.3f}"


def num(x: float | None, unit: str) -> str:
    """An effect in the claim's unit: accuracy fractions as points (x 100), layers as they are."""
    return "-" if x is None else f"{(100 if unit == 'points' else 1) * x:+.2f}"


def interval(e: Effect | None, unit: str) -> str:
    return "-" if e is None or e.lo is None else f"[{num(e.lo, unit)}, {num(e.hi, unit)}]"


def effect_text(e: Effect | None, unit: str) -> str:
    """``+4.94 [+2.18, +7.71]``: the mean and its 95 % interval."""
    return "-" if e is None or e.mean is None else f"{num(e.mean, unit)} {interval(e, unit)}".rstrip(" -")
