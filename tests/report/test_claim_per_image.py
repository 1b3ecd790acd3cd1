"""`lwt claims` where the runs' per-image outputs are archived (results/NAME_per_image/): the test-set term
estimated image by image with the seeds-and-images bootstrap instead of the binomial bound, L* of C2 and C3b
from the paired critical-layer test on the validation images (the table's column as a labelled fallback), and
the precision and device of the runs in the scale line."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from claim_tables import run, write
from scipy.stats import norm

from lwt.report.claims import evaluate, load_claims
from lwt.report.claims.render import render
from lwt.report.claims.spec import Claim, ClaimsFile
from lwt.report.stats import paired_effect
from lwt.run.critical import critical_layer

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_claims(ROOT / "experiments" / "claims.yaml")
T = SPEC.thresholds
Z = float(norm.ppf(0.975))
CELL = {"data.train_subset": 1000, "model.aux.k": 2}


def _universal() -> Claim:
    return Claim.model_validate({**SPEC.claims["C1"].model_dump(exclude_defaults=True), "type": "universal",
                                 "cell": ["model", "dataset"], "factor": None, "per_depth": None,
                                 "a": {"mode": ["e2e"]}, "b": {"mode": ["greedy"]}})


def _gap_table(folder: Path, per_image: bool, n: int = 2000) -> np.ndarray:
    """Greedy right on the images of hardness below 0.5 (+ a seed's jitter), E2E below 0.6: they err on the same
    hard images, so the per-image difference varies far less than the two binomial variances add up to. Returns
    the (seeds, images) differences."""
    hard = np.random.default_rng(1).random(n)
    runs, diffs = [], []
    for seed, j in enumerate((0.0, 0.01, -0.01)):
        g, e = hard < 0.5 + j, hard < 0.6 + j
        diffs.append(e.astype(float) - g)
        for name, mode, correct in (("g", "greedy", g), ("e", "e2e", e)):
            images = (correct[None], correct[None])  # one depth; validation = test here
            runs.append(run(name, mode, seed, float(correct.mean()), images=images if per_image else None))
    write(folder, "gap_cpu", runs, test_images=n)
    return np.array(diffs)


def test_archived_per_image_outputs_replace_the_bound_by_the_bootstrap(tmp_path):
    """The interval of E2E - greedy uses Var_test = var_i(d_i) / N (d_i the seeds' mean difference on image i)
    and holds the seeds-and-images bootstrap's percentile interval; it is narrower than the bound's (the two
    err on the same images) and still holds the true 10 points; without the archive the bound comes back."""
    d = _gap_table(tmp_path, per_image=True)
    (x,) = evaluate(_universal(), tmp_path, T).lines
    e = x.effect
    assert e.per_image and e.test_var == pytest.approx(d.mean(axis=0).var(ddof=1) / d.shape[1])
    assert e.lo <= np.quantile(e.boot, 0.025) and e.hi >= np.quantile(e.boot, 0.975)
    assert e.half >= Z * math.sqrt(e.test_var) and e.lo < 0.1 < e.hi
    assert len(e.boot) == 2000 and np.all(np.diff(e.boot) >= 0)
    _gap_table(tmp_path, per_image=False)
    (bound,) = evaluate(_universal(), tmp_path, T).lines
    assert not bound.effect.per_image and bound.effect.mean == pytest.approx(e.mean)
    assert bound.effect.test_var > 3 * e.test_var and bound.effect.hi - bound.effect.lo > e.hi - e.lo


def test_with_identical_seeds_the_interval_is_at_least_the_binomial_width_of_500_images():
    """Seed-level SD 0 on 500 test images: the interval is the test set's own, never narrower. From accuracies,
    +-1.96 sqrt((p_A q_A + p_B q_B) / 500) exactly; from per-image outputs where A and B err independently, about
    the same (the estimate of that variance), and at least the images' own normal half-width."""
    e = paired_effect([0.1] * 3, [[(1.0, 0.5, 500), (-1.0, 0.4, 500)]] * 3)
    binomial = Z * math.sqrt((0.5 * 0.5 + 0.4 * 0.6) / 500)
    assert e.sd == 0 and e.half == pytest.approx(binomial, rel=1e-6) and e.lo == pytest.approx(0.1 - binomial)
    rng = np.random.default_rng(0)
    a, b = rng.random(500) < 0.5, rng.random(500) < 0.4
    diff = np.tile(a.astype(float) - b, (3, 1))
    e = paired_effect([float(diff[0].mean())] * 3, [[(1.0, a.mean(), 500), (-1.0, b.mean(), 500)]] * 3, images=diff)
    assert e.per_image and e.sd == 0 and e.half >= Z * math.sqrt(diff[0].var(ddof=1) / 500) - 1e-12
    assert e.half == pytest.approx(binomial, rel=0.1)
    assert np.quantile(e.boot, 0.975) - np.quantile(e.boot, 0.025) == pytest.approx(2 * e.half, rel=0.15)


def _curve(rng, n: int, top: int, depth: int, base: float = 0.3, step: float = 0.08) -> np.ndarray:
    """(depth, n) correctness: accuracy rises by ``step`` per block up to ``top``, then the same images
    (nested sets: each depth right wherever the one before is)."""
    hard = rng.random(n)
    return np.stack([hard < base + step * min(d, top) for d in range(1, depth + 1)])


def _saturation_runs(tmp_path, archived=(0, 1, 2), column_lstar: int = 6, n: int = 2000) -> None:
    """Greedy saturates at block 3 on its validation images (deeper blocks right on the same images), its test
    accuracy flat after 3 but for a few flipped images; E2E keeps gaining on both. The table's critical_layer
    column (the curriculum's online rule) says ``column_lstar``; seeds in ``archived`` carry per-image outputs."""
    rng = np.random.default_rng(2)
    runs = []
    for seed in range(3):
        val, test = _curve(rng, n, 3, 8), _curve(rng, n, 3, 8)
        for d in range(3, 8):  # a few test images change after L*: greedy's own gain is ~0, not exactly 0
            test[d] = test[d] ^ (rng.random(n) < 0.005)
        e2e = (_curve(rng, n, 8, 8, step=0.05), _curve(rng, n, 8, 8, step=0.05))
        images = (val, test) if seed in archived else None
        greedy = run("g", "greedy", seed, 0, critical=column_lstar, config=CELL, images=(val, test))
        greedy.update(images=images)  # the accuracies of the per-image outputs, archived or not
        runs += [greedy, run("simple_cnn_e2e", "e2e", seed, 0, config=CELL, images=e2e)]
    write(tmp_path, "early_overfitting_all_stages_cpu", runs, test_images=n)


def test_saturation_takes_lstar_from_the_paired_test_on_archived_validation_images(tmp_path):
    """L* = 3 by the paired test (the table's column says 6): E2E's gain from 3 to 8 minus greedy's, with the
    per-image bootstrap, TOST shows greedy's own gain within +-1 point; the claim says where each L* came from.
    With one greedy run unarchived, its L* falls back to the column, and the note says so."""
    _saturation_runs(tmp_path)
    r = evaluate(SPEC.claims["C2"], tmp_path, T)
    (x,) = r.lines
    assert x.effect.per_image and x.effect.mean == pytest.approx(0.25, abs=0.03)  # 5 blocks x 5 points
    assert x.verdict == "supported" and float(x.cols["TOST p (+-1.00)"].lstrip("< ")) < 0.05
    assert "for 3 of 3 greedy runs." in r.tests[-1] and "paired test" in r.tests[-1]
    reach = x.cols["margin TOST reaches"]
    assert ("TOST underpowered" in reach) == (float(reach.split()[0]) > 1.0)
    _saturation_runs(tmp_path, archived=(0, 1))
    r = evaluate(SPEC.claims["C2"], tmp_path, T)
    (x,) = r.lines
    assert not x.effect.per_image  # one pair without per-image outputs: the bound for the whole effect
    assert "for 2 of 3 greedy runs" in r.tests[-1] and "fallback" in r.tests[-1]
    assert x.effect.mean == pytest.approx((2 * 0.25 + 0.10) / 3, abs=0.03)  # seed 2 from L* = 6: 2 blocks


def test_critical_layer_claim_uses_the_paired_test_where_archived(tmp_path):
    """C3b: greedy's L* at 2,000 images - at 500; by the paired test 5 - 3 = 2 layers in every seed, whatever
    the table's column (4 everywhere) says."""
    rng = np.random.default_rng(3)
    runs = []
    for size, top in ((500, 3), (2000, 5)):
        for seed in range(3):
            val = _curve(rng, 2000, top, 8)
            assert critical_layer(val, list(range(1, 9))) == top
            runs.append(run("g", "greedy", seed, 0, critical=4, config={"data.train_subset": size, "model.aux.k": 2},
                            images=(val, val)))
    write(tmp_path, "early_overfitting_all_stages_cpu", runs)
    r = evaluate(SPEC.claims["C3b"], tmp_path, T)
    (x,) = r.lines
    assert x.diffs == [2.0, 2.0, 2.0] and "for 6 of 6 greedy runs." in r.tests[-1]


def test_scale_names_the_precision_and_device_or_says_not_recorded(tmp_path):
    claim = _universal()
    spec = ClaimsFile.model_validate({"thresholds": T.model_dump(), "claims": {"X": claim.model_dump()}})
    runs = [r for s in range(3) for r in (run("g", "greedy", s, 0.5), run("e", "e2e", s, 0.55 + 0.001 * s))]
    write(tmp_path, "gap_cpu", runs)
    assert "runs: precision and device not recorded" in render(tmp_path, spec)
    for r in runs:
        r["result"] = {"precision": "32-true", "device": "cpu: AMD EPYC"}
    write(tmp_path, "gap_cpu", runs)
    text = render(tmp_path, spec)
    assert "runs: 32-true on cpu: AMD EPYC" in text and "not recorded" not in text
    assert "Test-set term: the bound from the accuracies" in text
