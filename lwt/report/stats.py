"""Statistics over seeds, as tables and figures report them: mean, sample SD, n and a 95 % Student-t
interval; paired differences between two groups of runs on the same seeds.

Seeds are few (2-5), so the interval uses the exact t quantile with n - 1 degrees of freedom, not the
normal 1.96: at n = 2 the 95 % half-width is 12.7 standard errors. With n = 1 there is no interval (and
no SD); ``Summary.half`` is None and ``ci_text`` says so instead of printing a fake one. No scipy: the t
quantile inverts the t CDF (a regularized incomplete beta function) by bisection.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes 6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), 0 <= x <= 1."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):  # the continued fraction converges fast on this side
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))  # P(T > |t|)
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (``t_quantile(0.975, 4)`` = 2.776445), by bisection of t_cdf."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0; got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Summary:
    """Mean, sample SD and 95 % t-interval half-width of n values; SD and interval are None when n < 2."""

    n: int
    mean: float | None
    std: float | None
    half: float | None  # t_{0.975, n-1} * std / sqrt(n)

    @property
    def lo(self) -> float | None:
        return None if self.half is None else self.mean - self.half

    @property
    def hi(self) -> float | None:
        return None if self.half is None else self.mean + self.half


def summarize(values: list[Any], level: float = 0.95) -> Summary:
    """The summary of the values that are present (None = missing, e.g. a metric an old run lacks)."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return Summary(0, None, None, None)
    if len(xs) == 1:
        return Summary(1, xs[0], None, None)
    std = statistics.stdev(xs)
    half = t_quantile(0.5 + level / 2, len(xs) - 1) * std / math.sqrt(len(xs))
    return Summary(len(xs), statistics.mean(xs), std, half)


def paired(a: dict[Any, float | None], b: dict[Any, float | None]) -> tuple[list, list[float], Summary]:
    """``b - a`` on the seeds both have a value for: (seeds in order, differences, their summary)."""
    seeds = sorted(s for s in a.keys() & b.keys() if a[s] is not None and b[s] is not None)
    diffs = [b[s] - a[s] for s in seeds]
    return seeds, diffs, summarize(diffs)


def ci_text(s: Summary, scale: float = 100.0, digits: int = 2, n_shown: int | None = None) -> str:
    """``"52.30 ± 4.10"`` (± the 95 % half-width); ``"52.30 (n=1, no CI)"``; ``""`` without values. The
    n is written in the cell when it differs from ``n_shown`` (the n printed in the row's own column)."""
    if s.mean is None:
        return ""
    text = f"{s.mean * scale:.{digits}f}"
    if s.half is None:
        return text + f" (n={s.n}, no CI)"
    text += f" ± {s.half * scale:.{digits}f}"
    return text if n_shown is None or n_shown == s.n else text + f" (n={s.n})"
