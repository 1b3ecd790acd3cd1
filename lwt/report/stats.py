"""Statistics over seeds, as tables and figures report them: mean, sample SD, n and a 95 % Student-t interval.

Seeds are few (2-5), so the interval uses the t quantile with n - 1 degrees of freedom, not the normal 1.96:
at n = 2 the 95 % half-width is 12.7 standard errors. With n = 1 there is no interval (and no SD);
``Summary.half`` is None and ``ci_text`` says so instead of printing a fake one.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from scipy.stats import t as student_t


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
    """The summary of the values that are present (None = missing, e.g. a metric a run lacks)."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return Summary(0, None, None, None)
    if len(xs) == 1:
        return Summary(1, xs[0], None, None)
    std = statistics.stdev(xs)  # exact (rational) sums: the same summary whatever the order of the seeds
    half = float(student_t.ppf(0.5 + level / 2, len(xs) - 1)) * std / math.sqrt(len(xs))
    return Summary(len(xs), statistics.mean(xs), std, half)


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
