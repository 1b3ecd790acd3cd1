"""Stage-end and critical-layer criteria on scripted accuracy sequences, and the callback's state."""

from __future__ import annotations

import pytest

from lwt.config import CurriculumConfig
from lwt.training.curriculum import CriticalLayer, Curriculum, Plateau


def first_stop(criterion: Plateau, accs: list[float]) -> int | None:
    for epoch, acc in enumerate(accs, start=1):
        if criterion.update(acc):
            return epoch
    return None


def test_plateau_stops_after_patience_epochs_without_gain():
    assert first_stop(Plateau(patience=2, min_delta=0.01), [0.30, 0.40, 0.405, 0.409, 0.5]) == 4
    # steady gains larger than min_delta never stop
    assert first_stop(Plateau(patience=2, min_delta=0.01), [0.1, 0.2, 0.3, 0.4, 0.5]) is None
    # a drop counts as stale; a later gain resets the count
    assert first_stop(Plateau(patience=3, min_delta=0.0), [0.5, 0.4, 0.45, 0.6, 0.59, 0.58, 0.57]) == 7


def test_critical_layer_fires_when_new_stages_stop_paying():
    crit = CriticalLayer(patience=2, min_gain=0.01)
    decisions = [crit.update(s, a) for s, a in enumerate([0.40, 0.50, 0.55, 0.555, 0.54, 0.60], start=1)]
    assert decisions == [False, False, False, False, True, True]
    d = crit.decision()
    # stages 4 and 5 fail to beat the best by 0.01, so it fires at stage 5 and the decision stays;
    # the critical layer is the best stage at that point: stage 4 (0.555 > 0.55, though it did not pay)
    assert d["fired"] and d["critical_layer"] == 4 and d["best_stage"] == 6
    assert [h["pays"] for h in d["history"]][:5] == [True, True, True, False, False]


def test_critical_layer_disabled_never_fires_but_tracks_best():
    crit = CriticalLayer(patience=None, min_gain=0.01)
    assert not any(crit.update(s, a) for s, a in enumerate([0.5, 0.4, 0.3, 0.2], start=1))
    d = crit.decision()
    assert d["critical_layer"] is None and d["best_stage"] == 1


def test_auto_threshold_is_z_standard_errors_of_the_best_val_acc():
    """p = 0.6 on n = 1,000 validation images: SE = sqrt(0.6 * 0.4 / 1000) = 0.01549; z = 2 -> 0.03098."""
    crit = CriticalLayer(patience=1, min_gain="auto", z=2.0, val_images=1000)
    assert not crit.update(1, 0.60)
    assert crit.threshold() == pytest.approx(0.030984, abs=1e-6)
    assert not crit.update(2, 0.635)  # +3.5 points > 3.1: pays
    # now p = 0.635: threshold 2 * sqrt(0.635 * 0.365 / 1000) = 0.030449; +2.9 points is noise, not a gain
    assert crit.update(3, 0.664)
    d = crit.decision()
    assert d["critical_layer"] == 3 and d["min_gain"] == "auto" and d["z"] == 2.0 and d["val_images"] == 1000
    assert [h["threshold"] for h in d["history"]] == pytest.approx([None, 0.030984, 0.030449], abs=1e-6)
    # the same gains with the old fixed 0.2-point threshold: every stage pays, nothing fires
    fixed = CriticalLayer(patience=1, min_gain=0.002)
    assert not any(fixed.update(s, a) for s, a in enumerate([0.60, 0.635, 0.664], start=1))


def test_auto_threshold_is_the_default_and_scales_with_the_validation_size():
    assert CurriculumConfig().critical_min_gain == "auto"
    small, large = (CriticalLayer(1, "auto", 2.0, n) for n in (1000, 16000))
    for crit in (small, large):
        crit.update(1, 0.3)
    assert small.threshold() == pytest.approx(4 * large.threshold())  # SE ~ 1 / sqrt(n)


def test_a_stage_that_pays_resets_the_count():
    crit = CriticalLayer(patience=2, min_gain=0.0)
    assert [crit.update(s, a) for s, a in enumerate([0.5, 0.5, 0.6, 0.6, 0.6], start=1)] == \
        [False, False, False, False, True]
    assert crit.decision()["critical_layer"] == 3


def test_curriculum_stops_at_last_block_or_max_stages_and_round_trips_its_state():
    cur = Curriculum(CurriculumConfig(max_stages=3, critical_patience=5), num_stages=4, val_images=1000)
    assert cur.num_stages == 3
    assert not cur.stage_done(1, 0.3) and not cur.stage_done(2, 0.4) and cur.stage_done(3, 0.5)
    cur.start_stage(3)
    cur.stop_reason[3] = "plateau"
    restored = Curriculum(CurriculumConfig(max_stages=3, critical_patience=5), num_stages=4, val_images=1000)
    restored.load_state_dict(cur.state_dict())
    assert restored.stage == 3 and restored.stop_reason[3] == "plateau"
    assert restored.critical.decision() == cur.critical.decision()
