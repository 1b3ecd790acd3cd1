"""Statistics over seeds, as tables and figures report them: mean, sample SD, n and a 95 % Student-t interval;
and, below, the paired effects, power and tests that `lwt claims` applies (with the test set's sampling noise).

Seeds are few (2-5), so the interval uses the t quantile with n - 1 degrees of freedom, not the normal 1.96:
at n = 2 the 95 % half-width is 12.7 standard errors. With n = 1 there is no interval (and no SD);
``Summary.half`` is None and ``ci_text`` says so instead of printing a fake one.
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from scipy.stats import norm
from scipy.stats import t as student_t

from lwt.run.critical import holm as critical_holm


class _Interval:
    """``lo`` and ``hi`` of an interval ``mean`` +- ``half`` (None where there is no interval)."""

    mean: float | None
    half: float | None

    @property
    def lo(self) -> float | None:
        return None if self.half is None else self.mean - self.half

    @property
    def hi(self) -> float | None:
        return None if self.half is None else self.mean + self.half


@dataclass(frozen=True)
class Summary(_Interval):
    """Mean, sample SD and 95 % t-interval half-width of n values; SD and interval are None when n < 2."""

    n: int
    mean: float | None
    std: float | None
    half: float | None  # t_{0.975, n-1} * std / sqrt(n)


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


# --- Paired effects with the test set's sampling noise, power, and the tests `lwt claims` applies ---------------
#
# Every seed is scored on the same N test images, so the test set's sampling error is shared by all seeds: the
# spread of the per-seed differences does not contain it and averaging over seeds does not shrink it. An effect's
# variance is therefore SD^2 / n (seeds) + Var_test (the test set), and its interval is never narrower than the
# test set allows. Without per-image outputs Var_test is bounded from the accuracies alone (``noise_var``);
# with them it is estimated image by image, and ``bootstrap`` resamples seeds and images together.

Term = tuple[float, float, int | None]  # (coefficient, test accuracy p, test images N) of one accuracy in an effect


def noise_var(terms_per_seed: list[list[Term]]) -> float | None:
    """Bound on the test-set variance of the mean over seeds of an effect sum(c_i * acc_i).

    Each accuracy's per-image indicator has variance p(1 - p), so its mean over N images has sigma_i^2 =
    p(1 - p) / N. If no two indicators are negatively correlated image by image (two networks trained on one task
    err on the same hard images), the variance is largest when all correlations are 1 within the accuracies added
    and within those subtracted: (sum_{c>0} c sigma_i)^2 + (sum_{c<0} |c| sigma_i)^2. For A - B this is
    (p_A(1 - p_A) + p_B(1 - p_B)) / N. The sums are averaged over seeds (the mean over seeds is one more linear
    combination). None when a term's N is unknown; 0 for an effect without test accuracies (a critical layer,
    chosen on the validation set)."""
    if not terms_per_seed:
        return None
    plus = minus = 0.0
    for terms in terms_per_seed:
        for c, p, n in terms:
            if not n:
                return None
            sigma = math.sqrt(max(p * (1 - p), 0.0) / n)
            plus, minus = (plus + c * sigma, minus) if c > 0 else (plus, minus - c * sigma)
    k = len(terms_per_seed)
    return (plus / k) ** 2 + (minus / k) ** 2


@dataclass(frozen=True)
class Effect(_Interval):
    """The mean over n seeds of a paired effect, its SD over seeds and the test set's variance (a bound from the
    accuracies, or estimated from per-image outputs).

    SE = sqrt(SD^2 / n + test_var) with the Welch-Satterthwaite degrees of freedom (the test term is known: its
    df are infinite), as metrology combines an estimated and a known variance; and the interval is never narrower
    than the seeds' own t-interval (n - 1 df): the half-width is the larger of the two, and each p-value the
    larger of the two tests' (so a p-value and the interval always agree). It is never narrower than the test
    set's own normal interval either, since the t quantile exceeds the normal one. With per-image outputs,
    ``boot`` holds the sorted replicates of the seeds-and-images bootstrap (``bootstrap``): the interval is
    widened to hold its percentile interval too, and each p-value is at least the bootstrap's."""

    n: int
    mean: float | None
    sd: float | None
    test_var: float | None  # None: unknown (a test-set size is missing)
    level: float = 0.95
    boot: Any = field(default=None, compare=False, repr=False)  # sorted bootstrap replicates, or None

    @property
    def per_image(self) -> bool:
        """Whether the test-set term came from per-image outputs (else it is the bound of ``noise_var``)."""
        return self.boot is not None

    def _boot_q(self, q: float) -> float:
        import numpy as np

        return float(np.quantile(self.boot, q))

    @property
    def lo(self) -> float | None:
        lo = super().lo
        return lo if lo is None or self.boot is None else min(lo, self._boot_q((1 - self.level) / 2))

    @property
    def hi(self) -> float | None:
        hi = super().hi
        return hi if hi is None or self.boot is None else max(hi, self._boot_q((1 + self.level) / 2))

    @cached_property
    def se(self) -> float | None:
        if self.sd is None or self.test_var is None:
            return None
        return math.sqrt(self.sd ** 2 / self.n + self.test_var)

    @cached_property
    def df(self) -> float | None:
        if self.se is None:
            return None
        seeds = self.sd ** 2 / self.n
        return math.inf if seeds == 0 else self.se ** 4 * (self.n - 1) / seeds ** 2

    def _tests(self) -> list[tuple[float, float]]:
        """(SE, df) of the combined test and of the seeds-only test."""
        return [(self.se, self.df), (self.sd / math.sqrt(self.n), self.n - 1)]

    @cached_property
    def half(self) -> float | None:
        if self.se is None:
            return None
        q = 0.5 + self.level / 2
        return max(float(student_t.ppf(q, df)) * se for se, df in self._tests())

    @property
    def test_half(self) -> float | None:
        """The half-width the test set alone allows (the normal quantile: its noise is known, not estimated)."""
        return None if self.test_var is None else float(norm.ppf(0.5 + self.level / 2)) * math.sqrt(self.test_var)

    def p_greater(self, x: float = 0.0) -> float | None:
        """One-sided p of H0: effect <= x (against effect > x)."""
        return None if self.se is None else self._p(self.mean - x, 1.0, x)

    def p_less(self, x: float = 0.0) -> float | None:
        """One-sided p of H0: effect >= x (against effect < x)."""
        return None if self.se is None else self._p(x - self.mean, -1.0, x)

    def _p(self, distance: float, sign: float, x: float) -> float:
        p = max(float(student_t.sf(distance / se, df)) if se > 0 else float(distance <= 0)
                for se, df in self._tests())
        if self.boot is not None:  # the share of bootstrap replicates on H0's side of x
            # replicates are means of whole-image counts and often sit exactly on x: rounded, a tie counts for
            # H0 whatever the last bit of the BLAS product that made them (it varies with the thread count)
            import numpy as np

            p = max(p, float((np.round(sign * (self.boot - x), 12) <= 0).mean()))
        return p

    def sd_per_seed(self, n: int | None = None) -> float | None:
        """sqrt(SD^2 + n test_var): the per-seed SD whose SD / sqrt(n) is this effect's SE at n seeds, what a power
        calculation over seeds takes (the test term does not shrink with n)."""
        if self.sd is None or self.test_var is None:
            return None
        n = n or self.n
        return math.sqrt(self.sd ** 2 + n * self.test_var)


def paired_effect(diffs: list[float], terms_per_seed: list[list[Term]] | None = None, level: float = 0.95,
                  images=None) -> Effect:
    """The ``Effect`` of per-seed paired differences; ``terms_per_seed`` the accuracies each one is made of (see
    ``noise_var``), None for no test-set term. ``images``: per seed, its difference image by image, an (N,)
    array that averages to it (a correct/incorrect indicator of A minus B's, or the same combination of indicators
    as the effect of accuracies), or None where a seed has none. Where every seed has one, on the same N images,
    Var_test is estimated, not bounded: the variance over images of the seeds' mean difference, / N (what
    resampling the test images gives), and ``bootstrap`` resamples seeds and images together."""
    xs = [float(d) for d in diffs]
    if not xs:
        return Effect(0, None, None, None, level)
    sd = statistics.stdev(xs) if len(xs) > 1 else None
    if len(xs) > 1 and images is not None and all(x is not None for x in images) and \
            len({len(x) for x in images}) == 1:
        import numpy as np

        d = np.asarray(images, dtype=float)
        if d.ndim != 2 or d.shape[0] != len(xs) or d.shape[1] < 2:
            raise ValueError(f"per-image differences must be a (seeds, images) array with {len(xs)} rows; got "
                             f"shape {d.shape}")
        test_var = float(d.mean(axis=0).var(ddof=1) / d.shape[1])
        return Effect(len(xs), statistics.mean(xs), sd, test_var, level, boot=bootstrap(d))
    test_var = 0.0 if terms_per_seed is None else noise_var(terms_per_seed)
    return Effect(len(xs), statistics.mean(xs), sd, test_var, level)


def power(effect: Effect, sesoi: float, alpha: float = 0.05, n: int | None = None) -> float | None:
    """Two-sided paired t power to detect ``sesoi`` at n seeds (default: the effect's), from its measured SD and
    its test-set variance (statsmodels ``TTestPower``)."""
    from statsmodels.stats.power import TTestPower  # imported on use: every `lwt` command imports this module

    n = n or effect.n
    sd = effect.sd_per_seed(n)
    if sd is None or n < 2:
        return None
    if sd == 0:
        return 1.0
    return float(TTestPower().power(effect_size=sesoi / sd, nobs=n, alpha=alpha, alternative="two-sided"))


MAX_SEEDS = 1000  # beyond this the test set's noise, not the seeds, is what limits: no number of seeds is enough


def seeds_needed(effect: Effect, sesoi: float, alpha: float = 0.05, target: float = 0.8) -> float | None:
    """The seeds a paired t-test needs to detect ``sesoi`` with power ``target`` (two-sided ``alpha``), from the
    measured SD of the per-seed differences (``TTestPower().solve_power``) plus the seeds the test-set variance
    costs; ``math.inf`` when that variance alone keeps the power below ``target`` (a larger test set, or per-image
    outputs, are needed); None without an SD."""
    from statsmodels.stats.power import TTestPower
    from statsmodels.tools.sm_exceptions import ConvergenceWarning  # its import sets an "always" filter: first

    if effect.sd is None or effect.test_var is None:
        return None
    z = float(norm.ppf(1 - alpha / 2) + norm.ppf(target))
    if effect.test_var > 0 and sesoi <= z * math.sqrt(effect.test_var):
        return math.inf
    n = 2
    if effect.sd > 0 and (power(effect, sesoi, alpha, 2) or 0) < target:
        with warnings.catch_warnings():  # a root finder that does not converge returns nan: the loop below counts
            warnings.simplefilter("ignore", ConvergenceWarning)
            seeds_only = TTestPower().solve_power(effect_size=sesoi / effect.sd, power=target, alpha=alpha)
        n = max(2, math.ceil(seeds_only)) if math.isfinite(seeds_only) else 2
    return _smallest(lambda k: (power(effect, sesoi, alpha, k) or 0) >= target, n)


def _smallest(ok, start: int) -> float:
    """The smallest n >= start with ok(n), for ok monotone in n (power grows with the seeds): doubling, then
    bisection; ``math.inf`` beyond ``MAX_SEEDS``."""
    lo, hi = start - 1, start
    while not ok(hi):
        if hi >= MAX_SEEDS:
            return math.inf
        lo, hi = hi, min(2 * hi, MAX_SEEDS)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def tost(effect: Effect, margin: float) -> float | None:
    """Two one-sided tests of equivalence: p of H0 |effect| >= margin (the larger of the two one-sided p)."""
    lower, upper = effect.p_greater(-margin), effect.p_less(margin)
    return None if lower is None or upper is None else max(lower, upper)


def tost_margin(effect: Effect, alpha: float = 0.05, target: float = 0.8) -> float | None:
    """The smallest equivalence margin that TOST at ``alpha`` shows with power ``target`` when the true effect is 0,
    at this n, SD and test-set variance: each one-sided test needs power (1 + target) / 2 (``TTestPower``)."""
    from statsmodels.stats.power import TTestPower

    sd = effect.sd_per_seed()
    if sd is None or effect.n < 2:
        return None
    d = TTestPower().solve_power(nobs=effect.n, alpha=alpha, power=(1 + target) / 2, alternative="larger")
    return float(d) * sd


def holm(pvalues: list[float]) -> list[float]:
    """Holm-adjusted p-values over a family of tests (lwt.run.critical.holm, the one implementation; checked
    against statsmodels' ``multipletests`` in the tests)."""
    return [float(p) for p in critical_holm(pvalues)] if pvalues else []


def sign_test(diffs: list[float]) -> float | None:
    """Exact one-sided sign test of H0 median <= 0 (ties dropped); at n = 3 its smallest p is 0.125."""
    from scipy.stats import binomtest

    signs = [d for d in diffs if d != 0]
    if not signs:
        return None
    return float(binomtest(sum(d > 0 for d in signs), len(signs), 0.5, alternative="greater").pvalue)


@dataclass(frozen=True)
class Heterogeneity:
    """Do k groups' mean paired effects differ? ``f``: one-way ANOVA over the per-seed effects (scipy
    ``f_oneway``, seed noise only); ``f_noise``: sum_i w_i (m_i - m_w)^2 / (k - 1) with w_i = 1 / (MSW / n_i +
    test_var_i), each group mean weighted by its variance including its test-set term, on F(k - 1, N - k): equal
    to ``f`` when the test sets add nothing and the groups have equal n, smaller as their noise grows."""

    k: int
    df_within: int
    f: float
    p: float
    f_noise: float
    p_noise: float
    msw: float


def heterogeneity(groups: list[list[float]], test_vars: list[float]) -> Heterogeneity | None:
    from scipy.stats import f as f_dist
    from scipy.stats import f_oneway

    k, total = len(groups), sum(len(g) for g in groups)
    if k < 2 or total - k < 1 or any(len(g) < 1 for g in groups):
        return None
    anova = f_oneway(*groups)
    msw = sum((x - statistics.mean(g)) ** 2 for g in groups for x in g) / (total - k)
    variances = [msw / len(g) + v for g, v in zip(groups, test_vars)]
    if any(v <= 0 for v in variances):
        return None
    weights = [1 / v for v in variances]
    means = [statistics.mean(g) for g in groups]
    pooled = sum(w * m for w, m in zip(weights, means)) / sum(weights)
    f_noise = sum(w * (m - pooled) ** 2 for w, m in zip(weights, means)) / (k - 1)
    return Heterogeneity(k, total - k, float(anova.statistic), float(anova.pvalue), f_noise,
                         float(f_dist.sf(f_noise, k - 1, total - k)), msw)


def heterogeneity_power(h: Heterogeneity, sesoi: float, test_var: float, n: int, alpha: float = 0.05) -> float:
    """Power of the heterogeneity F to detect two groups whose effects differ by ``sesoi`` (the others midway:
    Cohen's f = sesoi / (sigma sqrt(2k))), sigma^2 = MSW + n test_var, n seeds per group (``FTestAnovaPower``)."""
    from statsmodels.stats.power import FTestAnovaPower

    sigma = math.sqrt(h.msw + n * test_var)
    if sigma == 0:
        return 1.0
    f = sesoi / (sigma * math.sqrt(2 * h.k))
    return float(FTestAnovaPower().power(effect_size=f, nobs=n * h.k, alpha=alpha, k_groups=h.k))


def heterogeneity_seeds(h: Heterogeneity, sesoi: float, test_var: float, alpha: float = 0.05,
                        target: float = 0.8) -> float:
    """Seeds per group for ``heterogeneity_power`` to reach ``target``; ``math.inf`` when the test sets' noise
    alone keeps it below (checked up to ``MAX_SEEDS``)."""
    return _smallest(lambda n: heterogeneity_power(h, sesoi, test_var, n, alpha) >= target, 2)


def slope(depths: list[float], values: list[float]) -> tuple[float, list[float]]:
    """Least-squares slope of values on depths (scipy ``linregress``) and its weights c_d (slope = sum c_d y_d),
    which carry each depth's test-set noise into the slope's."""
    from scipy.stats import linregress

    mean = statistics.mean(depths)
    sxx = sum((d - mean) ** 2 for d in depths)
    return float(linregress(depths, values).slope), [(d - mean) / sxx for d in depths]


BOOT = 2000  # bootstrap replicates: the 2.5 % and 97.5 % quantiles rest on 50 replicates each


def bootstrap(diff, n_boot: int = BOOT, seed: int = 0):
    """Sorted replicates of the mean of ``diff`` ((seeds, images): seed s's per-image differences A - B, image i
    of A against image i of B), a hierarchical bootstrap: each replicate draws the seeds with replacement, then
    the test images with replacement, one draw for every seed drawn -- the seeds share one test set, so its
    sampling error is shared too, and resampling the images of each seed apart would average it away. Seeded:
    the same outputs give the same replicates."""
    import numpy as np

    d = np.asarray(diff, dtype=float)
    s, n = d.shape
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    for start in range(0, n_boot, 100):  # 100 replicates at a time
        k = min(100, n_boot - start)
        seeds = rng.multinomial(s, np.full(s, 1 / s), size=k) / s  # (k, S): how often each seed was drawn, / S
        drawn = rng.integers(0, n, size=(k, n)) + n * np.arange(k)[:, None]  # the images drawn, per replicate
        images = np.bincount(drawn.ravel(), minlength=k * n).reshape(k, n) / n  # (k, N): how often, / N
        out[start:start + k] = (seeds * (images @ d.T)).sum(axis=1)
    out.sort()
    return out
