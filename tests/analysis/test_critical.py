"""The paired critical-layer test (lwt/run/critical.py) on simulated per-image correctness: its size under the
null, its power, L* on constructed runs, Holm over the deeper depths; and `lwt critical` reporting L* from it.
numpy only, seeded."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from lwt.analysis.critical import critical_report, critical_table
from lwt.run.critical import critical_layer, critical_test, discordant, holm, paired_gain_pvalue
from lwt.run.result import RunResult

ALPHA = 0.05


def redrawn(rng, base: np.ndarray, p: float, gain: float, redraw: float = 0.3) -> np.ndarray:
    """The next depth as consecutive stages look: ``base``'s correctness (drawn with accuracy ``p``) kept on most
    images, redrawn on a fraction ``redraw`` of them with the probability that moves the expected accuracy to
    ``p + gain``. With ``gain=0`` the two depths are exchangeable: McNemar's null."""
    return np.where(rng.random(base.size) < redraw, rng.random(base.size) < p + gain / redraw, base)


def flipped(rng, base: np.ndarray, gained: int, lost: int) -> np.ndarray:
    """``base`` with exactly ``gained`` wrong images made right and ``lost`` right images made wrong."""
    out = base.copy()
    out[rng.choice(np.flatnonzero(~base), gained, replace=False)] = True
    out[rng.choice(np.flatnonzero(base), lost, replace=False)] = False
    return out


def test_pvalue_is_the_one_sided_exact_mcnemar_test():
    base = np.array([True] * 5 + [False] * 14 + [True] * 3)
    better = np.array([True] * 5 + [True] * 12 + [False] * 2 + [False] * 3)
    assert discordant(better, base) == (12, 3)
    # P(X >= 12), X ~ Binomial(15, 1/2) = (C(15,12) + C(15,13) + C(15,14) + C(15,15)) / 2^15 = 576 / 32768
    assert paired_gain_pvalue(better, base) == pytest.approx(576 / 2 ** 15)
    # statsmodels' exact McNemar is two-sided: for the side that gains, the one-sided p is half of it
    rng = np.random.default_rng(1)
    a = rng.random(300) < 0.5
    b = flipped(rng, a, 20, 9)
    table = [[np.sum(b & a), np.sum(b & ~a)], [np.sum(~b & a), np.sum(~b & ~a)]]
    assert paired_gain_pvalue(b, a) == pytest.approx(mcnemar(table, exact=True).pvalue / 2)
    assert paired_gain_pvalue(a, b) > 0.95  # the other direction: no evidence of a gain
    assert paired_gain_pvalue(a, a) == 1.0  # no discordant image
    with pytest.raises(ValueError, match="same images"):
        paired_gain_pvalue(a, a[:-1])
    with pytest.raises(ValueError, match="bool array"):
        paired_gain_pvalue(a.astype(int), a)


def test_size_under_the_null_is_about_alpha_and_never_above_it():
    """Two depths with the same accuracy, the second copying the first on 70 % of 1,000 images and redrawn on the
    rest: the one-sided exact test rejects at most alpha of the time (measured 0.039 here; discrete, so
    conservative), within 3 binomial standard errors of alpha over 1,000 draws."""
    rng = np.random.default_rng(0)
    draws = 1000
    rejections = 0
    for _ in range(draws):
        base = rng.random(1000) < 0.6
        rejections += paired_gain_pvalue(redrawn(rng, base, 0.6, 0.0), base) <= ALPHA
    rate = rejections / draws
    tolerance = 3 * np.sqrt(ALPHA * (1 - ALPHA) / draws)  # 0.021
    assert abs(rate - ALPHA) <= tolerance and rate <= ALPHA + tolerance, rate


def test_a_two_point_gain_at_ten_thousand_images_is_found():
    """A planted 2-point gain (60 -> 62 %) at 10,000 validation images, 30 % of images redrawn: power 1.000 over
    these 200 draws (0.994 with half the images redrawn). At 1,000 images the same gain is found 46 % of the time,
    against 16 % for a rule that asks for 2 standard errors of one accuracy (1,000 draws each, measured)."""
    rng = np.random.default_rng(0)
    draws = 200
    found = 0
    for _ in range(draws):
        base = rng.random(10_000) < 0.6
        found += paired_gain_pvalue(redrawn(rng, base, 0.6, 0.02), base) <= ALPHA
    assert found / draws >= 0.95


def rising_then_flat(rng, images: int = 2000, top: int = 4, depths: int = 8) -> np.ndarray:
    """(depths, images) correctness: +60 / -20 images a stage up to depth ``top``, then stages that swap 40
    images each way (the same accuracy, no gain)."""
    rows = [rng.random(images) < 0.4]
    for d in range(2, depths + 1):
        rows.append(flipped(rng, rows[-1], 60, 20) if d <= top else flipped(rng, rows[-1], 40, 40))
    return np.stack(rows)


def test_critical_layer_of_a_run_that_rises_to_depth_four_then_is_flat():
    correct = rising_then_flat(np.random.default_rng(0))
    depths = list(range(1, 9))
    assert critical_layer(correct, depths) == 4
    report = critical_test(correct, depths)
    assert [c["depth"] for c in report["candidates"]] == [1, 2, 3, 4]
    assert [c["beaten"] for c in report["candidates"]] == [True, True, True, False]
    assert [c["depth"] for c in report["candidates"][-1]["deeper"]] == [5, 6, 7, 8]
    assert all(c["p_holm"] >= c["p"] for c in report["candidates"][-1]["deeper"])
    assert json.loads(json.dumps(report)) == report  # JSON-ready (critical.json)
    # rows in any order: depths say which is which
    order = [3, 0, 7, 1, 6, 2, 5, 4]
    assert critical_layer(correct[order], [depths[i] for i in order]) == 4
    assert critical_layer(correct[:1], [1]) == 1  # one depth: it is L*


def test_a_later_depth_significantly_better_moves_the_critical_layer():
    rng = np.random.default_rng(0)
    correct = rising_then_flat(rng, top=4, depths=6)
    # depth 6 gains 45 images and loses 15 against depth 5, which ties depth 4: 4 and 5 are beaten, L* = 6
    jump = np.concatenate([correct, flipped(rng, correct[-1], 45, 15)[None]])[[0, 1, 2, 3, 4, 6]]
    assert critical_layer(jump, list(range(1, 7))) == 6


def test_holm_adjusts_over_the_deeper_depths():
    """One deeper depth of three with p = 0.039 beats L alone, not after Holm (3 x 0.039 > 0.05)."""
    rng = np.random.default_rng(0)
    base = rng.random(2000) < 0.5
    tie = flipped(rng, base, 30, 30)
    edge = flipped(rng, base, 12, 4)  # one-sided exact p = 0.0384
    rows = np.stack([base, tie, flipped(rng, base, 25, 25), edge])
    assert paired_gain_pvalue(edge, base) == pytest.approx(0.0384, abs=1e-4)
    assert critical_layer(rows[[0, 3]], [1, 2]) == 2  # tested alone it is significant
    report = critical_test(rows, [1, 2, 3, 4])
    last = report["candidates"][0]["deeper"][-1]
    assert last["p_holm"] == pytest.approx(3 * last["p"]) and not last["significant"]
    assert report["critical_layer"] == 1
    assert critical_test(rows, [1, 2, 3, 4], alpha=0.2)["candidates"][0]["beaten"]  # 3 x 0.039 <= 0.2


def test_holm_is_statsmodels_holm():
    rng = np.random.default_rng(0)
    for m in (1, 2, 5, 12):
        p = np.concatenate([rng.random(m - m // 2) * 0.05, rng.random(m // 2)])
        rng.shuffle(p)
        reject, adjusted, _, _ = multipletests(p, alpha=ALPHA, method="holm")
        assert holm(p) == pytest.approx(adjusted) and list(holm(p) <= ALPHA) == list(reject)
    assert list(holm([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.06, 0.06])  # step-down, then monotone


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="2 rows but 3 depths"):
        critical_layer(np.ones((2, 5), bool), [1, 2, 3])
    with pytest.raises(ValueError, match="distinct"):
        critical_layer(np.ones((2, 5), bool), [1, 1])
    with pytest.raises(ValueError, match="bool array"):
        critical_layer(np.ones((2, 5)), [1, 2])
    with pytest.raises(ValueError, match="alpha"):
        critical_layer(np.ones((2, 5), bool), [1, 2], alpha=0)


# ---------------------------------------------------------------- `lwt critical` with per-image predictions


def test_critical_report_gives_the_paired_critical_layer(tmp_path):
    correct = rising_then_flat(np.random.default_rng(0), depths=6)
    val = correct.mean(axis=1)
    stages = [{"stage": d, "depth": d, "val_acc": float(v), "test_acc": float(v) - 0.01} for d, v in enumerate(val, 1)]
    result = RunResult.from_json({"experiment": "x", "run_name": "y", "mode": "greedy", "model": "m", "dataset": "d",
                                  "stages": stages, "critical": None})
    per_image = SimpleNamespace(depths=list(range(1, 7)), val_correct=correct)
    report = critical_report(result, per_image)
    assert report["critical_layer"] == report["paired"]["critical_layer"] == 4
    assert report["test_acc_at_critical"] == pytest.approx(val[3] - 0.01)
    p = {r["depth"]: r["p_over_critical"] for r in report["curve"]}
    assert [p[d] is None for d in range(1, 7)] == [True] * 4 + [False] * 2 and min(p[5], p[6]) > ALPHA
    text = critical_table(report)
    assert "critical layer L* = stage 4; no deeper stage is significantly better" in text
    assert "online stop: off" in text
    # without per-image predictions: the curve and the online rule's record, no L*
    plain = critical_report(result)
    assert plain["critical_layer"] is None and plain["paired"] is None
    assert "paired test: no per-image predictions" in critical_table(plain)


@pytest.mark.slow  # the command imports Lightning (W&B logging): seconds on 2 cores
def test_lwt_critical_reads_the_run_folders_per_image_predictions(tmp_path, capsys):
    from lwt.cli import main
    from lwt.run.per_image import PerImage, write_per_image

    correct = rising_then_flat(np.random.default_rng(0), images=1000, depths=6)
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, correct.shape[1])
    test_labels = rng.integers(0, 10, 50)
    write_per_image(tmp_path, PerImage(num_classes=10, depths=list(range(1, 7)), val_labels=labels,
                                       test_labels=test_labels, val_pred=np.where(correct, labels, (labels + 1) % 10),
                                       test_pred=np.tile(test_labels, (6, 1))))
    stages = [{"stage": d, "depth": d, "val_acc": float(v), "test_acc": 0.5} for d, v in enumerate(correct.mean(1), 1)]
    (tmp_path / "result.json").write_text(json.dumps({"experiment": "x", "run_name": "y", "mode": "greedy",
                                                      "model": "m", "dataset": "d", "stages": stages}))
    assert main(["critical", str(tmp_path)]) == 0
    assert "1000 val images, alpha 0.05): critical layer L* = stage 4" in capsys.readouterr().out
    saved = json.loads((tmp_path / "critical.json").read_text())
    assert saved["critical_layer"] == saved["paired"]["critical_layer"] == 4
    assert main(["critical", str(tmp_path), "--alpha", "0.5"]) == 0  # a looser level may only move L* deeper
    assert json.loads((tmp_path / "critical.json").read_text())["critical_layer"] >= 4
