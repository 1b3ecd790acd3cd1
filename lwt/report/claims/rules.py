"""The verdict rules of the claims about cells, contrasts and arms: universal, ranking, existential. Each takes
the claim, its table and the thresholds and returns a ``Result``; ``RULES`` says each rule in words for the
document (the rules of the depth-wise claims are in depth.py)."""

from __future__ import annotations

from lwt.report.stats import holm, sign_test

from .common import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    NOT_TESTED,
    SHOWN,
    SUPPORTED,
    Result,
    above,
    all_of,
    any_of,
    band,
    compare,
    p_text,
    weakest,
)
from .source import Table
from .spec import Claim, Thresholds


def universal(claim: Claim, table: Table, t: Thresholds) -> Result:
    """Each cell's interval against +band; the claim holds when every cell does."""
    out = Result(INCONCLUSIVE)
    for comp, _, x in compare(claim, table, t):
        x.verdict = above(x.effect, band(claim, t), x.why)
        out.lines.append(x)
        out.rows += comp.a + comp.b
    out.verdict = all_of([x.verdict for x in out.lines])
    out.headline = weakest(out.lines)
    out.tests += [note] if (note := table.lstar_note(out.rows)) else []  # a claim about critical layers
    return out


def ranking(claim: Claim, table: Table, t: Thresholds) -> Result:
    """Each adjacent contrast A - B "holds" (A >= B) when its interval lies above -band: A is not worse than B by
    more than an effect too small to matter; it fails when the interval lies below -band. All contrasts must hold
    (an intersection-union test: each at level alpha, so the ranking is at level alpha without adjustment)."""
    out, adjacent = Result(INCONCLUSIVE, columns=["strictly ahead (> 0)"]), []
    for comp, _, x in compare(claim, table, t):
        x.verdict = above(x.effect, -band(claim, t), x.why) if comp.adjacent else SHOWN
        e = x.effect
        x.cols["strictly ahead (> 0)"] = ("-" if e.lo is None else "yes" if e.lo > 0 else "no: behind" if e.hi < 0
                                          else "not shown")
        out.lines.append(x)
        out.rows += comp.a + comp.b
        adjacent += [x] if comp.adjacent else []
    out.verdict = all_of([x.verdict for x in adjacent])
    out.headline = weakest(adjacent)
    return out


def existential(claim: Claim, table: Table, t: Thresholds) -> Result:
    """One one-sided test per arm (H0: arm - baseline <= 0), Holm-adjusted over the claim's arms; an arm is
    supported when its Holm-adjusted p < alpha, not supported when its interval lies below +band (it helps by less
    than an effect that matters, if at all). The family: supported when any arm is."""
    test = "sign test p" if claim.test == "sign" else "t p (one-sided)"
    out = Result(INCONCLUSIVE, columns=[test, "Holm p"])
    p = {}  # label -> unadjusted p, for the arms that are tested
    for comp, _, x in compare(claim, table, t):
        x.short = comp.arm.split()[0] if comp.arm else x.label
        value = None if x.why else sign_test(x.diffs) if claim.test == "sign" else x.effect.p_greater(0.0)
        if value is not None:
            p[x.label] = value
        out.lines.append(x)
        out.rows += comp.a + comp.b
    adjusted = dict(zip(p, holm(list(p.values()))))
    for x in out.lines:
        q = adjusted.get(x.label)
        x.verdict = (NOT_TESTED if q is None else SUPPORTED if q < t.alpha
                     else NOT_SUPPORTED if x.effect.hi < band(claim, t) else INCONCLUSIVE)
        x.cols[test], x.cols["Holm p"] = p_text(p.get(x.label)), p_text(q)
    out.verdict = any_of([x.verdict for x in out.lines])
    survivors = [x.short for x in out.lines if x.verdict == SUPPORTED]
    out.tests.append(f"Family ({len(p)} arm(s) tested, Holm over them): "
                     + (f"supported: {', '.join(survivors)} survive{'s' if len(survivors) == 1 else ''} Holm at "
                        f"alpha = {t.alpha:g}." if survivors
                        else f"no arm survives Holm at alpha = {t.alpha:g}." if p else "no arm tested."))
    tested = [x for x in out.lines if x.label in adjusted]
    out.headline = min(tested, key=lambda x: adjusted[x.label]) if tested else weakest(out.lines)
    return out


RULES = {
    "universal": "holds in every cell. A cell is *supported* when its interval lies above +EQUIV (the effect is "
                 "positive and larger than an effect too small to matter), *not supported* when it lies below "
                 "+EQUIV, *inconclusive* when it straddles it. The claim is supported when every cell is, not "
                 "supported when any cell is not (one counter-example refutes a universal claim), else inconclusive.",
    "ranking": "an order A >= B >= C, tested by its adjacent contrasts, each paired by seed. A contrast *holds* "
               "(supported) when its interval lies above -EQUIV (A is not worse than B by more than an effect too "
               "small to matter: the >= of the claim, ties allowed), *fails* (not supported) when it lies below "
               "-EQUIV. The ranking is supported when every adjacent contrast holds (an intersection-union test: "
               "no multiplicity adjustment is needed), not supported when one fails. Whether a contrast is "
               "strictly ahead (interval above 0) is shown beside it; other contrasts are shown, not used.",
    "existential": "some arm helps. Each arm (an experiment and its remedy, against the plain greedy runs of the "
                   "same cell at schema defaults) gets a one-sided paired test of arm - baseline > 0: the paired "
                   "t over seeds with the test-set term (as the interval), or the exact sign test where "
                   "the claim says `test: sign` (distribution-free, but at n = 3 its smallest p is 0.125: it "
                   "cannot reject at 0.05). The p-values are Holm-adjusted over the claim's arms. An arm is "
                   "*supported* when its Holm p < ALPHA, *not supported* when its interval lies below +EQUIV; the "
                   "family answer is supported when any arm survives Holm, not supported when every arm is.",
}
