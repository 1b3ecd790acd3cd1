"""The statistics `lwt claims` applies (lwt/report/stats.py): the test-set noise bound and the interval that
carries it, power and the seeds needed, TOST, Holm, the heterogeneity F, the slope weights, the per-image
bootstrap -- against scipy / statsmodels and against numbers worked by hand."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from scipy.stats import f_oneway, linregress
from scipy.stats import t as student_t
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from lwt.report.stats import (
    Effect,
    bootstrap,
    heterogeneity,
    holm,
    noise_var,
    paired_effect,
    power,
    seeds_needed,
    sign_test,
    slope,
    tost,
    tost_margin,
)


def test_noise_bound_of_a_paired_difference_is_the_sum_of_binomial_variances():
    """A - B on the same N images: Var_test <= (p_A(1 - p_A) + p_B(1 - p_B)) / N; averaged over seeds."""
    var = noise_var([[(1.0, 0.6, 10_000), (-1.0, 0.5, 10_000)]])
    assert var == pytest.approx((0.6 * 0.4 + 0.5 * 0.5) / 10_000)
    two_seeds = noise_var([[(1.0, 0.6, 500), (-1.0, 0.5, 500)], [(1.0, 0.6, 500), (-1.0, 0.5, 500)]])
    assert two_seeds == pytest.approx((0.24 + 0.25) / 500)  # shared by the seeds: more seeds do not shrink it
    assert noise_var([[]]) == 0.0  # no test accuracy in the effect (a critical layer)
    assert noise_var([[(1.0, 0.6, None)]]) is None  # the test-set size unknown


def test_noise_bound_of_a_difference_in_differences_adds_like_terms():
    """(E_D - E_L) - (G_D - G_L): the accuracies added (E_D, G_L) may be perfectly correlated with each other,
    and so may those subtracted: (s_ED + s_GL)^2 + (s_EL + s_GD)^2."""
    s = {p: math.sqrt(p * (1 - p) / 1000) for p in (0.5, 0.4, 0.45, 0.44)}
    var = noise_var([[(1, 0.5, 1000), (-1, 0.4, 1000), (-1, 0.45, 1000), (1, 0.44, 1000)]])
    assert var == pytest.approx((s[0.5] + s[0.44]) ** 2 + (s[0.4] + s[0.45]) ** 2)


@pytest.mark.parametrize("diffs, p, n", [([0.05, 0.06, 0.07], 0.5, 10_000), ([0.05, 0.0501, 0.0499], 0.5, 500),
                                         ([0.02, 0.08, -0.01, 0.05, 0.03], 0.45, 10_000)])
def test_interval_is_never_narrower_than_the_test_set_or_the_seeds_allow(diffs, p, n):
    """The half-width is at least 1.96 sqrt(Var_test) (the test set alone) and at least the seeds' own Student-t
    half-width: adding a known source of noise never narrows an interval."""
    e = paired_effect(diffs, [[(1.0, p, n), (-1.0, p, n)]] * len(diffs))
    test_bound = 1.959964 * math.sqrt(2 * p * (1 - p) / n)
    seeds_only = float(student_t.ppf(0.975, len(diffs) - 1)) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    assert e.half >= test_bound - 1e-12 and e.half >= seeds_only - 1e-12
    assert e.test_half == pytest.approx(test_bound, rel=1e-5)
    assert e.lo == pytest.approx(e.mean - e.half) and e.hi == pytest.approx(e.mean + e.half)
    without = paired_effect(diffs)  # no test term: the Student-t interval of the seeds
    assert without.half == pytest.approx(seeds_only) and e.half >= without.half


def test_p_values_agree_with_the_interval():
    """The 95 % interval excludes x exactly when the one-sided p of that side is below 0.025."""
    e = paired_effect([0.05, 0.06, 0.09], [[(1.0, 0.5, 2000), (-1.0, 0.45, 2000)]] * 3)
    for x in (e.lo - 1e-6, e.lo + 1e-6):
        assert (e.p_greater(x) < 0.025) == (x < e.lo)
    for x in (e.hi - 1e-6, e.hi + 1e-6):
        assert (e.p_less(x) < 0.025) == (x > e.hi)


def test_power_and_seeds_needed_match_statsmodels_without_test_noise():
    """With no test-set term (a critical layer): TTestPower at d = SESOI / SD, and solve_power's n rounded up."""
    e = paired_effect([1.0, 3.0, 2.0, 0.0, 4.0])  # SD 1.58 layers
    d = 1.0 / statistics.stdev([1.0, 3.0, 2.0, 0.0, 4.0])
    assert power(e, 1.0) == pytest.approx(TTestPower().power(effect_size=d, nobs=5, alpha=0.05))
    assert seeds_needed(e, 1.0) == math.ceil(TTestPower().solve_power(effect_size=d, power=0.8, alpha=0.05))
    assert seeds_needed(e, 1.0) > e.n  # underpowered


def test_test_noise_costs_seeds_and_can_make_any_number_too_few():
    """The test term does not shrink with seeds: it adds seeds, and when SESOI <= (z_.975 + z_.8) sqrt(Var_test)
    no number of seeds reaches 80 % power."""
    diffs = [0.05, 0.07, 0.04]
    quiet = paired_effect(diffs, [[(1.0, 0.5, 10**8), (-1.0, 0.5, 10**8)]] * 3)
    noisy = paired_effect(diffs, [[(1.0, 0.5, 20_000), (-1.0, 0.5, 20_000)]] * 3)
    assert seeds_needed(noisy, 0.02) > seeds_needed(quiet, 0.02)
    small = paired_effect(diffs, [[(1.0, 0.5, 500), (-1.0, 0.5, 500)]] * 3)  # test SD 3.2 points > 2 / 2.8
    assert seeds_needed(small, 0.02) == math.inf and power(small, 0.02) < 0.8


def test_tost_matches_statsmodels_without_test_noise():
    a, b = np.array([0.500, 0.520, 0.510, 0.505]), np.array([0.498, 0.521, 0.507, 0.506])
    e = paired_effect(list(a - b))
    p_statsmodels = ttost_paired(a, b, -0.01, 0.01)[0]
    assert tost(e, 0.01) == pytest.approx(p_statsmodels, rel=1e-6)
    margin = tost_margin(e)  # the margin TOST shows with 80 % power at this n and SD: larger at fewer seeds
    assert margin > 0 and tost_margin(paired_effect(list(a - b)[:2])) > margin


def test_holm_is_statsmodels_holm():
    ps = [0.01, 0.04, 0.03, 0.2]
    assert holm(ps) == pytest.approx(list(multipletests(ps, method="holm")[1]))
    assert holm([0.03, 0.2, 0.5]) == pytest.approx([0.09, 0.4, 0.5])  # 3 x 0.03, 2 x 0.2 by hand


def test_sign_test_at_three_seeds_cannot_reject():
    assert sign_test([0.1, 0.2, 0.3]) == pytest.approx(0.125) and sign_test([0.1] * 6) == pytest.approx(1 / 64)


def test_heterogeneity_without_test_noise_is_the_one_way_anova():
    groups = [[0.05, 0.06, 0.055], [0.10, 0.12, 0.11], [0.051, 0.049, 0.06]]
    h = heterogeneity(groups, [0.0, 0.0, 0.0])
    anova = f_oneway(*groups)
    assert (h.k, h.df_within) == (3, 6) and h.f == pytest.approx(anova.statistic) and h.p == pytest.approx(anova.pvalue)
    assert h.f_noise == pytest.approx(anova.statistic) and h.p_noise == pytest.approx(anova.pvalue)
    noisy = heterogeneity(groups, [(0.25 + 0.25) / 500] * 3)  # a 500-image test set per group
    assert noisy.f == pytest.approx(h.f) and noisy.f_noise < h.f and noisy.p_noise > h.p


def test_slope_weights_reproduce_the_least_squares_slope():
    depths, ys = [1, 2, 3, 4], [0.01, 0.03, 0.02, 0.06]
    value, weights = slope(depths, ys)
    assert value == pytest.approx(linregress(depths, ys).slope)
    assert value == pytest.approx(sum(w * y for w, y in zip(weights, ys)))


def test_bootstrap_over_seeds_and_images_covers_the_true_difference():
    """Per-image outputs: A correct on 60 % of the images, B on 55 %, 3 seeds; the bootstrap's replicates are
    seeded (the same outputs, the same interval), centred on the difference, and the interval holds it; a seed's
    row that does not fit the seeds is refused."""
    rng = np.random.default_rng(0)
    hard = rng.random(2000)
    a = np.stack([hard < 0.60 + 0.01 * s for s in range(3)]).astype(float)
    b = np.stack([hard < 0.55 + 0.01 * s for s in range(3)]).astype(float)
    diffs = list((a - b).mean(axis=1))
    e = paired_effect(diffs, images=a - b)
    assert np.array_equal(e.boot, bootstrap(a - b)) and np.median(e.boot) == pytest.approx(e.mean, abs=0.002)
    assert e.lo < 0.05 < e.hi and e.hi - e.lo < 0.05 and e.p_greater(0.0) < 0.05
    with pytest.raises(ValueError, match="3 rows"):
        paired_effect(diffs, images=(a - b)[:2])


def test_an_effect_without_seeds_or_sd_has_no_interval():
    assert paired_effect([]).n == 0 and paired_effect([0.1]).half is None
    assert Effect(3, 0.1, 0.01, None).half is None  # test-set size unknown: no interval
