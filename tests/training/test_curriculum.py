"""Stage-end and critical-layer criteria on scripted sequences (accuracies; per-image validation correctness
for the paired rule), and the callback's state."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from lwt.config import CurriculumConfig, load_config
from lwt.errors import LwtError
from lwt.training.curriculum import CriticalLayer, Curriculum, Plateau

from conftest import ROOT


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


class Stages:
    """Scripted per-image validation correctness: each stage is the one before with ``gained`` wrong images made
    right and ``lost`` right images made wrong (seeded)."""

    def __init__(self, images: int = 1000, acc: float = 0.4, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.rows = [self.rng.random(images) < acc]

    def next(self, gained: int, lost: int) -> np.ndarray:
        out = self.rows[-1].copy()
        out[self.rng.choice(np.flatnonzero(~out), gained, replace=False)] = True
        out[self.rng.choice(np.flatnonzero(out & self.rows[-1]), lost, replace=False)] = False
        self.rows.append(out)
        return out


def play(crit: CriticalLayer, rows: list[np.ndarray]) -> list[bool]:
    return [crit.update(stage, float(c.mean()), c) for stage, c in enumerate(rows, start=1)]


def test_critical_layer_fires_after_patience_stages_not_significantly_better():
    s = Stages()
    rows = [s.rows[0], s.next(40, 10), s.next(40, 10), s.next(12, 10), s.next(12, 10), s.next(40, 10)]
    crit = CriticalLayer(patience=2, alpha=0.05, val_images=1000)
    assert play(crit, rows) == [False, False, False, False, True, True]  # sticky once fired
    d = crit.decision()
    # stages 4 and 5 gain under half a point over stage 3, not significantly: stage 3 is the critical layer,
    # though a later stage has a higher val accuracy
    assert d["fired"] and d["critical_layer"] == 3 and d["rule"] == "paired" and d["alpha"] == 0.05
    assert [h["pays"] for h in d["history"]] == [True, True, True, False, False, True]
    assert [h["reference"] for h in d["history"]] == [None, 1, 2, 3, 3, 3]
    assert d["history"][1]["gained"] == 40 and d["history"][1]["lost"] == 10
    assert d["history"][1]["gain_over_reference"] == pytest.approx(0.03)
    assert d["history"][3]["p_value"] > 0.05 and d["history"][1]["p_value"] < 1e-4
    assert d["best_stage"] == 6 and d["reference_stage"] == 6


def test_small_gains_that_add_up_pay_against_the_stage_to_beat():
    """+0.4 points a stage (4 images gained, none lost, of 1,000) is not significant (p = 0.0625), but stage 3 is
    compared with stage 1, the stage to beat, not with stage 2, so two such stages together pay (8 vs 0)."""
    s = Stages()
    rows = [s.rows[0], s.next(4, 0), s.next(4, 0), s.next(4, 0)]
    crit = CriticalLayer(patience=2, alpha=0.05)
    assert play(crit, rows) == [False, False, False, False]
    pays = [h["pays"] for h in crit.decision()["history"]]
    assert pays == [True, False, True, False]  # 4-0: p = 0.0625; 8-0 against stage 1: p = 0.0039
    assert crit.reference_stage == 3 and crit.misses == 1


def test_a_real_gain_within_two_standard_errors_of_one_accuracy_pays():
    """+1.5 points at 1,000 images with 25 discordant images (20 gained, 5 lost): the old threshold, 2 binomial
    SE of one accuracy (3.1 points at 60 %), called it noise; the paired test finds it (p = 0.002)."""
    s = Stages(acc=0.6)
    crit = CriticalLayer(patience=1, alpha=0.05, val_images=1000)
    assert play(crit, [s.rows[0], s.next(20, 5)]) == [False, False]
    assert crit.decision()["history"][1]["p_value"] == pytest.approx(0.00204, abs=1e-5)


def test_critical_layer_disabled_never_fires_and_needs_no_per_image_correctness():
    crit = CriticalLayer(patience=None)
    assert not any(crit.update(s, a) for s, a in enumerate([0.5, 0.4, 0.3, 0.2], start=1))
    d = crit.decision()
    assert d["critical_layer"] is None and d["best_stage"] == 1 and [h["pays"] for h in d["history"]][1:] == [None] * 3


def test_the_rule_refuses_a_stage_without_its_per_image_correctness():
    cur = Curriculum(CurriculumConfig(critical_patience=2), num_stages=4, val_images=10)
    with pytest.raises(ValueError, match="critical_patience=2 tests each stage on its per-image validation"):
        cur.stage_done(1, 0.5)
    with pytest.raises(ValueError, match="1-D bool array"):
        cur.stage_done(1, 0.5, np.ones(10))
    with pytest.raises(ValueError, match="has 9 entries but the validation set has 10 images"):
        cur.stage_done(1, 0.5, np.ones(9, bool))
    assert not cur.stage_done(1, 0.5, np.ones(10, bool))


def test_copied_stages_set_the_stage_to_beat_but_never_end_the_curriculum():
    s = Stages()
    rows = [s.rows[0], s.next(2, 2), s.next(2, 2)]
    cur = Curriculum(CurriculumConfig(critical_patience=1), num_stages=5)
    assert not cur.stage_done(1, float(rows[0].mean()), rows[0], copied=True)
    assert not cur.stage_done(2, float(rows[1].mean()), rows[1], copied=True)  # no gain, but copied: no miss
    assert cur.stage_done(3, float(rows[2].mean()), rows[2])  # a trained stage without a gain ends it
    assert cur.critical.decision()["critical_layer"] == 1


def test_critical_alpha_is_validated_and_the_threshold_keys_are_gone():
    assert CurriculumConfig().critical_alpha == 0.05 and CurriculumConfig().critical_patience is None
    with pytest.raises(LwtError, match=r"curriculum.critical_alpha=1.0 must be in \(0, 1\)"):
        load_config(None, ["curriculum.critical_alpha=1"])
    with pytest.raises(LwtError, match="critical_min_gain is not a config key any more: .*curriculum.critical_alpha"):
        load_config(None, ["curriculum.critical_min_gain=0.01"])


def test_a_run_config_that_holds_the_threshold_keys_still_loads(tmp_path):
    """What a finished run's config.yaml holds (every key, as save_config wrote it) with the threshold rule's keys:
    `lwt gap`, `lwt.load_run` and resume read it through load_config."""
    raw = load_config(ROOT / "experiments" / "cifar10" / "belilovsky_k2_greedy.yaml").model_dump()
    raw["curriculum"].update(critical_patience=2, critical_min_gain="auto", critical_z=2.0)
    raw["curriculum"].pop("critical_alpha")
    saved = tmp_path / "config.yaml"
    saved.write_text(yaml.safe_dump(raw))
    cfg = load_config(saved)
    assert cfg.curriculum.critical_patience == 2 and cfg.curriculum.critical_alpha == 0.05


def test_curriculum_stops_at_last_block_or_max_stages_and_round_trips_its_state():
    s = Stages()
    rows = [s.rows[0], s.next(40, 10), s.next(40, 10)]
    cur = Curriculum(CurriculumConfig(max_stages=3, critical_patience=5), num_stages=4, val_images=1000)
    assert cur.num_stages == 3
    assert [cur.stage_done(k, float(c.mean()), c) for k, c in enumerate(rows, 1)] == [False, False, True]
    cur.start_stage(3)
    cur.stop_reason[3] = "plateau"
    restored = Curriculum(CurriculumConfig(max_stages=3, critical_patience=5), num_stages=4, val_images=1000)
    restored.load_state_dict(json.loads(json.dumps(cur.state_dict())))  # progress.json is JSON
    assert restored.stage == 3 and restored.stop_reason[3] == "plateau"
    assert restored.critical.decision() == cur.critical.decision()
    assert np.array_equal(restored.critical.reference_correct, rows[2])


def test_a_resumed_curriculum_decides_as_an_uninterrupted_one():
    s = Stages(images=777)  # not a multiple of 8: the packed bits carry their count
    rows = [s.rows[0], s.next(30, 5), s.next(8, 6), s.next(30, 2), s.next(3, 3), s.next(4, 4), s.next(2, 2)]
    cfg = CurriculumConfig(critical_patience=2)
    whole = Curriculum(cfg, num_stages=7, val_images=777)
    expected = [whole.stage_done(k, float(c.mean()), c) for k, c in enumerate(rows, 1)]
    assert expected == [False] * 5 + [True, True]  # stage 4 pays against stage 2, stages 5 and 6 do not
    assert whole.critical.decision()["critical_layer"] == 4
    for cut in range(1, 7):
        first = Curriculum(cfg, num_stages=7, val_images=777)
        decided = [first.stage_done(k, float(c.mean()), c) for k, c in enumerate(rows[:cut], 1)]
        state = json.loads(json.dumps(first.state_dict()))
        second = Curriculum(cfg, num_stages=7, val_images=777)
        second.load_state_dict(state)
        decided += [second.stage_done(k, float(c.mean()), c) for k, c in enumerate(rows[cut:], cut + 1)]
        assert decided == expected and second.critical.decision() == whole.critical.decision()


def test_a_saved_state_of_the_threshold_rule_cannot_continue_the_paired_rule():
    old = {"best_acc": 0.5, "best_stage": 2, "misses": 0, "history": [], "fired": False, "critical_stage": None,
           "patience": 2, "min_gain": "auto", "z": 2.0, "val_images": 1000}
    state = {"stage": 2, "plateau": {"patience": 3, "min_delta": 0.002, "best": 0.5, "stale": 0},
             "critical": old, "stop_reason": {"1": "budget", "2": "budget"}}
    with pytest.raises(LwtError, match="kept no per-image validation correctness"):
        Curriculum(CurriculumConfig(critical_patience=2), num_stages=4).load_state_dict(state)
    off = Curriculum(CurriculumConfig(), num_stages=4)  # the rule off: nothing to continue, the record is kept
    off.load_state_dict(state)
    assert off.critical.best_stage == 2 and not off.stage_done(3, 0.6)
