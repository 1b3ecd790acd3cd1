"""docs/thesis_claims.md: a summary row per claim (claim, type, effect, interval, n and power, verdict, scale,
figure, command), how the numbers are made, the rule of each type, then each claim's statistics. Inputs are read
in a fixed order, rows sorted, numbers formatted to fixed digits, no dates: the same tables give the same bytes."""

from __future__ import annotations

import math
from pathlib import Path

from .common import DESCRIPTIVE, NOT_TESTED, SHOWN, Line, Result, effect_text, interval, num
from .depth import RULES as DEPTH_RULES
from .evaluate import evaluate
from .rules import RULES
from .scale import scale
from .source import read_probes
from .spec import Claim, ClaimsFile, Thresholds, load_claims

HOW = """\
- **Effect**: a difference paired by seed -- seed s of side A minus seed s of side B (same data split, subset and
  initial weights) -- in accuracy points (%) unless a claim says layers, averaged over the seeds both sides have.
- **Interval** (95 %, paired, test-set noise included): every seed is scored on the same test images, so the test
  set's sampling error is shared by all seeds and averaging over seeds does not remove it. SE = sqrt(SD^2 / n +
  Var_test), SD the spread of the per-seed differences, with the t quantile at the Welch-Satterthwaite degrees of
  freedom (Var_test is known: its df are infinite); the interval is never narrower than the seeds' own
  t-interval (n - 1 df) -- the half-width is the larger of the two, each p-value the larger of the two tests' --
  nor than the test set's own. Var_test, where a run's per-image test outputs are archived
  (`results/NAME_per_image/`, written by `lwt results`) for every seed of both sides, is estimated: with d_i the
  seeds' mean difference on test image i (A's correct/incorrect indicator minus B's, or the same combination of
  indicators as the effect of accuracies), Var_test = var_i(d_i) / N; and the interval also holds the percentile
  interval of a hierarchical bootstrap (2,000 seeded replicates: the seeds drawn with replacement, then the test
  images, one draw shared by the seeds drawn since they share one test set, image i of A kept with image i of B),
  each p-value at least the bootstrap's. Without them, Var_test is a bound from the accuracies alone: each test
  accuracy p on N images has variance p(1 - p) / N, and if no two per-image correct/incorrect indicators are
  negatively correlated, Var_test <= (sum of c sigma over the accuracies added)^2 + (sum over those
  subtracted)^2; for A - B that is (p_A(1 - p_A) + p_B(1 - p_B)) / N. It is conservative (A and B err on many
  of the same images). The column *test set alone* is the half-width that Var_test allows with infinitely many
  seeds: no interval is narrower. A critical layer, chosen on the validation set, carries no test-set term.
- **Power**: of a two-sided paired t-test at ALPHA to detect the smallest effect of interest (SESOI), from the
  measured SD of the per-seed differences and Var_test (statsmodels `TTestPower`); *seeds needed* is the n at
  which it reaches POWER (`TTestPower().solve_power` for the seeds, plus the seeds the test-set term costs);
  *underpowered* when n is below it; *∞ (test-set noise)* when the test-set term alone keeps the power below
  POWER: a larger test set or per-image outputs (which replace the bound by an estimate) are needed, not more
  seeds.
- **Not tested**: no table yet; fewer than MIN_N paired seeds; the test-set size unknown; or runs that do not meet
  the protocol of docs/protocol.md (every run on the full test set, `data.test_subset` unset; every greedy stage
  trained for its whole annealed budget, `curriculum.stage_end=fixed`, the longest of at least MIN_EPOCHS epochs:
  an arm may shorten its early stages on purpose) -- a pre-protocol table cannot decide anything."""


def _needed(x: Line) -> str:
    if x.needed is None:
        return "-"
    text = "∞ (test-set noise)" if math.isinf(x.needed) else f"{x.needed:.0f}"
    return text + (" (underpowered)" if x.effect and x.needed > x.effect.n else "")


def _n_power(x: Line | None, r: Result | None = None) -> str:
    if r is not None and r.headline_power:
        return r.headline_power
    if x is None or x.effect is None:
        return "-"
    if x.power is None:
        return f"n = {x.effect.n}"
    return f"n = {x.effect.n}, power {x.power:.2f}, seeds needed {_needed(x)}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _scale(claim: Claim, result: Result, results: Path, t: Thresholds) -> str:
    parts = []
    if result.table is not None and result.rows:
        parts.append(scale(result.table, result.rows))
    if claim.probes:
        protocols = {(r["protocol"].get("train_images"), r["protocol"].get("test_images"), r["protocol"].get("epochs"),
                      r["protocol"].get("pool")) for r in read_probes(results / claim.probes)}
        parts += [f"probes: {a:,} train / {b:,} test images, {e} epochs, {p}x{p} pooled" for a, b, e, p in
                  sorted(protocols, key=str)]
    return "; ".join(parts) or "-"


def _summary(key: str, claim: Claim, r: Result, scale_text: str) -> str:
    x = r.headline
    if r.why or claim.type == "descriptive" or x is None:
        effect = r.why or ("per depth, below" if claim.type == "descriptive" else "-")
        cells = [effect, "-", "-"]
    else:
        counted = [y for y in r.lines if y.verdict != SHOWN]
        lead = r.headline_text if claim.type == "interaction" else (
            f"weakest of {len(counted)}" if len(counted) > 1 else "")
        if claim.type == "interaction":
            means = [y.effect.mean for y in r.lines if y.effect and y.effect.mean is not None]
            cells = [lead or "-", f"gaps {num(min(means), claim.unit)} to {num(max(means), claim.unit)}"
                     if means else "-", _n_power(x, r)]
        elif claim.type == "existential":
            cells = [f"best arm, {x.short}: {num(x.effect.mean, claim.unit)} (Holm p {x.cols['Holm p']})",
                     interval(x.effect, claim.unit), _n_power(x)]
        else:
            cells = [f"{lead + ': ' if lead else ''}{x.label}: {num(x.effect.mean, claim.unit)}",
                     interval(x.effect, claim.unit), _n_power(x)]
    verdict = "descriptive (no verdict)" if r.verdict == DESCRIPTIVE else r.verdict
    row = [f"{key}: {claim.text}", claim.type, *cells, f"**{verdict}**", scale_text, f"`{claim.figure}`",
           f"`{claim.command}`"]
    return "| " + " | ".join(_cell(c) for c in row) + " |"


def _label_head(claim: Claim) -> str:
    """What a line's label is made of: the cell columns, then the factor, dose, contrast, arm or across."""
    parts = [*claim.cell, *(c for c in (claim.factor, claim.dose) if c)]
    parts += ["contrast"] * bool(claim.contrasts) + ["arm (experiment, remedy)"] * claim.arms
    parts += [f"{claim.across} largest - smallest"] * bool(claim.across)
    return " / ".join(parts)


def _test_source(r: Result) -> str:
    """Which lines' test-set term is estimated from per-image outputs and which is the bound."""
    noisy = [x for x in r.lines if x.effect and x.effect.n > 1 and x.effect.test_var]
    if not noisy:
        return ""
    per_image = sum(x.effect.per_image for x in noisy)
    if per_image == len(noisy):
        return "Test-set term: estimated from the archived per-image outputs, with the seeds-and-images bootstrap."
    if not per_image:
        return "Test-set term: the bound from the accuracies (no per-image outputs archived for these runs)."
    return (f"Test-set term: estimated from archived per-image outputs (with the seeds-and-images bootstrap) in "
            f"{per_image} of {len(noisy)} lines; the others use the bound (some run lacks per-image outputs).")


def _table(claim: Claim, r: Result) -> list[str]:
    head = [_label_head(claim), "n", "effect", "95 % interval (seeds + test set)", "test set alone", "power",
            "seeds needed", *r.columns, "verdict", "not tested because"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for x in r.lines:
        e = x.effect
        row = [x.label, e.n, num(e.mean, claim.unit), interval(e, claim.unit),
               "-" if e.test_half is None or not e.n else "none" if e.test_var == 0
               else f"+-{num(e.test_half, claim.unit).lstrip('+')}",
               "-" if x.power is None else f"{x.power:.2f}", _needed(x), *(x.cols.get(c, "-") for c in r.columns),
               x.verdict, x.why]
        out.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return out


def _matrix(claim: Claim, r: Result) -> list[str]:
    """A descriptive claim: a row per group, a column per depth, ``mean [lo, hi] (n)``."""
    groups: dict[str, dict[str, Line]] = {}
    for x in r.lines:
        groups.setdefault(x.label, {})[x.cols["depth"]] = x
    depths = sorted({d for g in groups.values() for d in g}, key=int)
    out = ["| | " + " | ".join(f"depth {d}" for d in depths) + " |", "|" + "---|" * (len(depths) + 1)]
    for label, by_depth in groups.items():
        cells = [f"{effect_text(by_depth[d].effect, claim.unit)} ({by_depth[d].effect.n})" if d in by_depth else ""
                 for d in depths]
        out.append("| " + " | ".join(_cell(c) for c in [label, *cells]) + " |")
    return out


def render(results: Path, spec: ClaimsFile | None = None) -> str:
    spec = spec or load_claims()
    t = spec.thresholds
    rules = {**RULES, **DEPTH_RULES}
    summary, detail = [], []
    for key, claim in spec.claims.items():
        r = evaluate(claim, results, t)
        scale_text = _scale(claim, r, results, t)
        summary.append(_summary(key, claim, r, scale_text))
        verdict = "descriptive (no verdict)" if r.verdict == DESCRIPTIVE else r.verdict
        detail += [f"### {key}: {claim.text}", "",
                   f"**{claim.type}** -- verdict **{verdict}**. "
                   f"Effect: {claim.effect} ({claim.unit}); table `results/{claim.table}.csv`.", ""]
        if claim.caveat:
            detail += [f"> **Caveat.** {claim.caveat}", ""]
        if source := _test_source(r):
            detail += [source, ""]
        if r.why:
            detail += [f"Not tested: {r.why}. Command that makes it: `{claim.command}`.", ""]
            continue
        detail += [*(_matrix(claim, r) if claim.type == "descriptive" else _table(claim, r)), ""]
        detail += [f"- {line}" for line in r.tests] + ([""] if r.tests else [])
        detail += [f"Scale: {scale_text}.", "", f"Figure: `{claim.figure}`. Command: `{claim.command}`.", ""]
    lines = ["# Thesis claims: verdicts from the committed tables", "",
             "Written by `lwt claims` from `results/*.csv`, `results/*_runs.jsonl` and `results/probes/*.json` "
             "alone; do not edit by hand. Each claim is tested as the thesis states it: its type, declared in "
             "`experiments/claims.yaml`, names the verdict rule below.", "",
             "## Summary", "",
             "| claim | type | effect | interval (95 %, paired, test-set noise incl.) | n and power | verdict | "
             "scale | figure | command |", "|---|---|---|---|---|---|---|---|---|", *summary, "",
             "## How the numbers are made", "", HOW, "",
             f"Thresholds (experiments/claims.yaml): MIN_N = {t.min_n} seeds; EQUIV = {100 * t.equiv:g} point "
             f"({t.equiv_layers:g} layer), the band of effects too small to matter; SESOI = {100 * t.sesoi:g} "
             f"points ({t.sesoi_layers:g} layer), the smallest effect of interest, for power; ALPHA = {t.alpha:g}; "
             f"POWER = {t.power:g}; MIN_EPOCHS = {t.min_epochs}; MARGIN = a saturation claim's `margin` (default "
             f"EQUIV).", "",
             "## Verdict rules, by type", "",
             *(f"- **{name}**: {rule}" for name, rule in rules.items()), "",
             "## Claims", "", *detail]
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["render", "NOT_TESTED"]
