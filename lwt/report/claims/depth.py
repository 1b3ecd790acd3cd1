"""The verdict rules of the claims read along depth: interaction (does the greedy-E2E gap differ between
architectures, and does it grow with depth), saturation (greedy stops gaining after its critical layer L*, E2E
does not), dose_response (the swap test: the effect at each number j of frozen blocks, and its slope on j) and
descriptive (linear probes and the train - test gap per depth, no verdict)."""

from __future__ import annotations

from pathlib import Path

from lwt.report.stats import (
    heterogeneity,
    heterogeneity_power,
    heterogeneity_seeds,
    holm,
    paired_effect,
    slope,
    tost,
    tost_margin,
)

from .common import (
    DESCRIPTIVE,
    INCONCLUSIVE,
    NOT_SUPPORTED,
    NOT_TESTED,
    SHOWN,
    SUPPORTED,
    Line,
    Result,
    above,
    all_of,
    any_of,
    band,
    compare,
    effect_text,
    line,
    num,
    p_text,
    paired,
    sesoi,
    weakest,
)
from .source import Measure, Table, comparisons, natural, read_probes
from .spec import Claim, Thresholds


def _depths(table: Table, rows: list[dict], prefix: str, every: bool = True) -> list[int]:
    """The depths d of the ``{prefix}{d}`` columns of ``rows`` (``every``: only where every row has a value)."""
    found = {int(c.removeprefix(prefix)) for r in rows for c in r if c.startswith(prefix)
             and c.removeprefix(prefix).isdigit()}
    return sorted(d for d in found if not every or all(table.number(r, f"{prefix}{d}") is not None for r in rows))


def _slope(table: Table, prefix: str, depths: list[int]):
    """A run's least-squares slope of ``{prefix}{d}`` on d, carrying each depth's test-set term by its weight."""
    def measure(row: dict) -> Measure | None:
        ms = [table.measure(row, f"{prefix}{d}") for d in depths]
        if len(depths) < 2 or any(m is None for m in ms):
            return None
        value, weights = slope(depths, [m.value for m in ms])
        images = None if any(m.images is None for m in ms) else sum(w * m.images for w, m in zip(weights, ms))
        return Measure(value, [(w * c, p, n) for w, m in zip(weights, ms) for c, p, n in m.terms], images)
    return measure


def _trend(e) -> str:
    return ("-" if e.lo is None else "grows" if e.lo > 0 else "shrinks" if e.hi < 0 else "unclear") if e else "-"


def interaction(claim: Claim, table: Table, t: Thresholds) -> Result:
    """Per stratum (the claim's cell columns), the levels of ``factor`` (architectures) each give a paired gap
    per seed; the heterogeneity F over them (with the test-set noise) decides, Holm-adjusted over strata. The
    slope of the per-depth gap on depth is reported beside it, per architecture."""
    slope_col = "gap slope (per block)"
    out = Result(INCONCLUSIVE, columns=[slope_col, "with depth"])
    strata: dict[tuple, list[Line]] = {}
    for comp, _, x in compare(claim, table, t):
        depths = _depths(table, comp.a + comp.b, claim.per_depth)
        trend = paired(comp.a, comp.b, _slope(table, claim.per_depth, depths)).effect
        x.verdict = SHOWN if not x.why else NOT_TESTED
        x.cols[slope_col], x.cols["with depth"] = effect_text(trend, claim.unit), _trend(trend)
        strata.setdefault(comp.key[:-1], []).append(x)
        out.lines.append(x)
        out.rows += comp.a + comp.b
    tests = {}
    for key, members in strata.items():
        tested = [x for x in members if not x.why]
        h = heterogeneity([x.diffs for x in tested], [x.effect.test_var for x in tested]) if len(tested) > 1 else None
        tests[key] = (tested, h)
    adjusted = dict(zip([k for k, (_, h) in tests.items() if h], holm([h.p_noise for _, h in tests.values() if h])))
    verdicts, effect, heads, powers = [], sesoi(claim, t), [], []
    for key, (tested, h) in tests.items():
        name = " / ".join(k for k in key if k) or "all"
        if h is None:
            verdicts.append(NOT_TESTED)
            out.tests.append(f"{name}: not tested (fewer than two {claim.factor} levels with n >= {t.min_n}).")
            continue
        n = min(x.effect.n for x in tested)
        test_var = sum(x.effect.test_var for x in tested) / len(tested)
        pw = heterogeneity_power(h, effect, test_var, n, t.alpha)
        needed = heterogeneity_seeds(h, effect, test_var, t.alpha, t.power)
        q = adjusted[key]
        verdict = SUPPORTED if q < t.alpha else NOT_SUPPORTED if pw >= t.power else INCONCLUSIVE
        verdicts.append(verdict)
        grows = [x.cols["with depth"] for x in tested]
        out.tests.append(
            f"{name}: {h.k} levels of {claim.factor}, n >= {n} seeds each. One-way ANOVA of the per-seed gaps "
            f"(seeds only): F({h.k - 1}, {h.df_within}) = {h.f:.2f}, p = {p_text(h.p)}. With the test-set noise: "
            f"F = {h.f_noise:.2f}, p = {p_text(h.p_noise)}"
            + (f", Holm over {len(adjusted)} strata: {p_text(q)}" if len(adjusted) > 1 else "")
            + f". Power to detect two levels {num(effect, claim.unit).lstrip('+')} {claim.unit} apart: {pw:.2f} "
            f"(seeds needed per level: {_seeds(needed)}){' -- underpowered' if needed > n else ''}. "
            f"Verdict: **{verdict}**. The gap grows with depth in {grows.count('grows')} of {len(grows)} levels "
            f"(shrinks in {grows.count('shrinks')}, unclear in {grows.count('unclear')}).")
        heads.append(f"{name}: F({h.k - 1}, {h.df_within}) = {h.f_noise:.2f}, p = {p_text(h.p_noise)}")
        powers.append(f"{name}: n >= {n} per {claim.factor}, power {pw:.2f}, seeds needed {_seeds(needed)}"
                      f"{' (underpowered)' if needed > n else ''}")
    out.verdict = any_of(verdicts)
    out.headline = weakest(out.lines)
    out.headline_text = f"heterogeneity of the gap, test noise incl.: {'; '.join(heads)}" if heads else ""
    out.headline_power = "; ".join(powers)
    return out


def _seeds(n: float) -> str:
    return "∞ (test-set noise)" if n == float("inf") else f"{n:.0f}"


def saturation(claim: Claim, table: Table, t: Thresholds, lstar=Table.critical_layer) -> Result:
    """Per cell and seed: L* from the greedy run (``Table.critical_layer``: the paired test on its per-image
    validation correctness, else the table's column), D the deepest depth both runs trained; the effect is E2E's
    gain from L* to D minus greedy's, paired by seed; greedy's own gain over L*..D must be equivalent to 0 within
    +-margin (TOST), a margin the seeds and the test set can reach (``tost_margin``)."""
    margin = claim.margin or band(claim, t)
    gain_col, tost_col, reach_col = "greedy's own gain L*..D", f"TOST p (+-{num(margin, claim.unit).lstrip('+')})", \
        "margin TOST reaches"
    out = Result(INCONCLUSIVE, columns=[gain_col, tost_col, reach_col])
    for comp in comparisons(claim, table):
        depths, unknown, stopped = {}, [], []  # seed -> (L*, D); seeds without an L*; seeds stopped at L*
        for r in comp.b:
            critical, last = lstar(table, r), table.stages(r)
            if critical is None:
                unknown.append(r["seed"])
            elif last > critical:
                depths[r["seed"]] = (critical, last)
            else:
                stopped.append(r["seed"])

        def gain(row: dict, depths=depths) -> Measure | None:
            if row["seed"] not in depths:
                return None
            top, bottom = (table.measure(row, f"{claim.per_depth}{d}") for d in reversed(depths[row["seed"]]))
            return None if top is None or bottom is None else top.minus(bottom)

        x = line(comp.label, paired(comp.a, comp.b, gain), claim, t, table.why)
        reasons = []
        if stopped:
            reasons.append(f"seed {', '.join(sorted(stopped, key=natural))}: greedy trained no block past L*")
        if unknown:
            reasons.append(f"seed {', '.join(sorted(unknown, key=natural))}: no L*")
        if x.why.startswith("n <") and reasons:
            x.why += f" ({'; '.join(reasons)})"
        own = [m for r in comp.b if (m := gain(r)) is not None and r["seed"] in x.seeds]
        g = paired_effect([m.value for m in own], [m.terms for m in own], images=[m.images for m in own])
        p = tost(g, margin) if not x.why else None
        reach = tost_margin(g, t.alpha, t.power)
        x.cols[gain_col], x.cols[tost_col] = effect_text(g, claim.unit), p_text(p)
        x.cols[reach_col] = "-" if reach is None else num(reach, claim.unit).lstrip("+") + (
            " (above the margin: TOST underpowered)" if reach > margin else "")
        x.verdict = (NOT_TESTED if x.why else SUPPORTED if x.effect.lo > band(claim, t) and p < t.alpha
                     else NOT_SUPPORTED if x.effect.hi < band(claim, t) or g.lo > margin else INCONCLUSIVE)
        out.lines.append(x)
        out.rows += comp.a + comp.b
    out.verdict = all_of([x.verdict for x in out.lines])
    out.headline = weakest(out.lines)
    out.tests += [note] if (note := table.lstar_note(out.rows)) else []
    return out


def dose_response(claim: Claim, table: Table, t: Thresholds) -> Result:
    """Per cell: the effect at each dose (every one must lie above +band) and its per-seed slope on the dose
    (must lie above 0)."""
    out = Result(INCONCLUSIVE)
    cells: dict[tuple, list] = {}
    for comp, pair, x in compare(claim, table, t):
        x.verdict = above(x.effect, band(claim, t), x.why)
        cells.setdefault(comp.key[:-1], []).append((float(comp.key[-1]), pair, x))
        out.lines.append(x)
        out.rows += comp.a + comp.b
    verdicts = []
    for key, doses in cells.items():
        doses.sort(key=lambda d: d[0])
        seeds = sorted(set.intersection(*(set(p.seeds) for _, p, _ in doses)), key=natural)
        slopes, terms = [], []
        images = []
        for s in seeds:
            at = [(j, p.diffs[p.seeds.index(s)], p.terms[p.seeds.index(s)], p.images[p.seeds.index(s)])
                  for j, p, _ in doses]
            value, weights = slope([a[0] for a in at], [a[1] for a in at]) if len(at) > 1 else (None, [])
            if value is not None:
                slopes.append(value)
                terms.append([(w * c, p, n) for w, a in zip(weights, at) for c, p, n in a[2]])
                images.append(None if any(a[3] is None for a in at) else sum(w * a[3] for w, a in zip(weights, at)))
        trend = paired_effect(slopes, terms, images=images)
        lines = [x for _, _, x in doses]
        verdict = all_of([x.verdict for x in lines])
        if verdict != NOT_TESTED:
            verdict = (SUPPORTED if verdict == SUPPORTED and trend.lo is not None and trend.lo > 0 else
                       NOT_SUPPORTED if verdict == NOT_SUPPORTED or (trend.hi is not None and trend.hi < 0)
                       else INCONCLUSIVE)
        verdicts.append(verdict)
        out.tests.append(f"{' / '.join(k for k in key if k)}: slope of the effect on {claim.dose}: "
                         f"{effect_text(trend, claim.unit)} per block (n = {trend.n}); verdict **{verdict}**.")
    out.verdict = all_of(verdicts)
    out.headline = weakest(out.lines)
    return out


def descriptive(claim: Claim, table: Table | None, t: Thresholds, results: Path) -> Result:
    """Linear probes per depth (``probes``: results/<folder>/*.json) and the table's ``per_depth`` columns per
    depth, A - B paired by seed, with intervals and no verdict. Lines carry their group and depth for the matrix
    the document draws."""
    out = Result(DESCRIPTIVE)
    reports = read_probes(results / claim.probes) if claim.probes else []
    groups: dict[str, list[dict]] = {}
    for r in reports:
        groups.setdefault(r["cell"], []).append(r)
    for cell, members in sorted(groups.items(), key=lambda kv: natural(kv[0])):
        sides = [[r for r in members if all(r.get(c) in v for c, v in side.items())] for side in (claim.a, claim.b)]
        for d in sorted({row["depth"] for r in members for row in r["rows"]}):
            a, b = ([{"seed": r["seed"], "acc": row[claim.metric], "n": r["protocol"]["test_images"]}
                     for r in side for row in r["rows"] if row["depth"] == d] for side in sides)
            x = line(f"probe {claim.metric} / {cell}", paired(a, b, lambda r: Measure(r["acc"], [(1.0, r["acc"],
                                                                                                   r["n"])])),
                     claim, t, None, with_power=False)
            x.verdict, x.cols["depth"] = DESCRIPTIVE, str(d)
            out.lines.append(x)
    for comp in comparisons(claim, table) if table is not None and claim.per_depth else []:
        for d in _depths(table, comp.a + comp.b, claim.per_depth, every=False):
            pair = paired(comp.a, comp.b, lambda r, d=d: table.measure(r, f"{claim.per_depth}{d}"))
            if pair.effect.n:
                x = line(f"{claim.per_depth} / {comp.label}", pair, claim, t, table.why, with_power=False)
                x.verdict, x.cols["depth"] = DESCRIPTIVE, str(d)
                out.lines.append(x)
        out.rows += comp.a + comp.b
    if not out.lines:
        out.verdict, out.why = NOT_TESTED, "no probe reports and no table"
    return out


RULES = {
    "interaction": "the effect depends on a factor (the greedy-E2E gap on the architecture). Per stratum (a "
                   "dataset), the paired gaps per seed of each architecture go into a one-way ANOVA (scipy "
                   "`f_oneway`, seed noise only) and into the same F with each architecture's mean weighted by "
                   "1 / (MSW / n + its test-set variance) (test noise included), on F(k - 1, N - k). *Supported* "
                   "when the F with test noise rejects at ALPHA (Holm-adjusted over strata when there are "
                   "several); *not supported* (homogeneous) when it does not reject although it had power >= "
                   "POWER to detect two architectures whose gaps differ by SESOI (statsmodels "
                   "`FTestAnovaPower`, Cohen's f = SESOI / (sigma sqrt(2k)), sigma^2 = MSW + n Var_test); "
                   "*inconclusive* when it does not reject and is underpowered. Whether the gap grows with depth "
                   "is said separately: per architecture, the slope of E2E - greedy at each depth on depth "
                   "(least squares per seed, then the interval over seeds with the test-set term): grows when "
                   "the interval lies above 0, shrinks when below, else unclear. It does not enter the verdict.",
    "saturation": "greedy saturates after its critical layer L* while E2E keeps gaining. Per cell and seed, L* is "
                  "the greedy run's critical layer by the paired test of docs/protocol.md (the shallowest depth "
                  "that no deeper depth beats on the same validation images: one-sided exact McNemar, Holm over "
                  "the deeper depths, ALPHA) on its archived per-image validation correctness; a run archived "
                  "without them falls back to the table's `critical_layer` (the curriculum's online rule), and "
                  "the claim says how many did. D is the deepest depth both runs trained (a curriculum that "
                  "stopped `critical_patience` stages after L* makes the same depths L*..D, not L*..the last block); "
                  "a seed whose greedy run trained no block past L* has no post-L* gain and is left out. The "
                  "effect is E2E's gain from L* to D minus greedy's, paired by seed. *Supported* when its "
                  "interval lies above +EQUIV and greedy's own gain over L*..D is equivalent to 0 (TOST at "
                  "ALPHA, margin +-MARGIN); the margin TOST reaches with power POWER at this n is shown beside "
                  "it, flagged when it exceeds MARGIN (TOST underpowered: at this n it shows equivalence "
                  "within MARGIN less than POWER of the time even when greedy gains nothing). *Not supported* "
                  "when the effect's interval lies below +EQUIV or greedy's own gain lies "
                  "above +MARGIN (greedy keeps gaining). Every cell must be supported (as universal).",
    "dose_response": "the effect grows with a dose (the swap test: blocks j+1..N trained end to end on frozen E2E "
                     "blocks 1..j minus the same on frozen greedy blocks 1..j, same budget, j = 1, 2, 3). "
                     "*Supported* in a cell when every dose's interval lies above +EQUIV and the per-seed slope "
                     "of the effect on j has its interval above 0; *not supported* when a dose's interval lies "
                     "below +EQUIV or the slope's below 0; every cell must be supported.",
    "descriptive": "no verdict: paired differences per depth with their intervals, evidence that a claim's "
                   "test reads beside (linear probes on each block's frozen output, the train - test gap).",
}
