"""Each claim type's verdict rule on tiny tables in the format `lwt results` writes (claim_tables.write):
interaction (heterogeneous / homogeneous), existential (one strong arm, all null, Holm), saturation with TOST,
dose_response, ranking, universal, descriptive probes; power and the underpowered label."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from claim_tables import run, write
from statsmodels.stats.power import TTestPower

from lwt.report.claims import evaluate, load_claims
from lwt.report.claims.spec import Claim

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_claims(ROOT / "experiments" / "claims.yaml")
T = SPEC.thresholds
BIG = 10**8  # a test set so large that its sampling noise is negligible: the seeds decide


def _claim(**changes) -> Claim:
    """C1 with its sides named by mode (the tables below are made up of architectures a, b, c), and changes."""
    sides = {"a": {"mode": ["e2e"]}, "b": {"mode": ["greedy"]}}
    return Claim.model_validate({**SPEC.claims["C1"].model_dump(exclude_defaults=True), **sides, **changes})


C1 = _claim()


def _gap_runs(gaps: dict[str, list[float]], depth_slope: float = 0.0) -> list[dict]:
    """Greedy at 50 % and E2E at 50 % + gap per seed, per architecture; per-depth accuracies over 4 depths
    whose gap grows by ``depth_slope`` per block (E2E's deeper read-outs gain more)."""
    runs = []
    for arch, per_seed in gaps.items():
        for seed, gap in enumerate(per_seed):
            greedy = [0.5 - 0.02 * (4 - d) for d in range(1, 5)]
            e2e = [g + gap - depth_slope * (4 - d) for d, g in zip(range(1, 5), greedy)]
            runs += [run(f"{arch}_greedy", "greedy", seed, greedy[-1], model=arch, stages=greedy),
                     run(f"{arch}_e2e", "e2e", seed, e2e[-1], model=arch, stages=e2e)]
    return runs


def test_interaction_heterogeneous_gaps_are_supported(tmp_path):
    """Three architectures whose gaps differ (2, 10, 20 points) on a 10,000-image test set: the F with the
    test-set noise rejects; the gap grows with depth where the per-depth gaps do."""
    write(tmp_path, "gap_cpu", _gap_runs({"a": [0.02, 0.021, 0.019], "b": [0.10, 0.102, 0.098],
                                          "c": [0.20, 0.199, 0.201]}, depth_slope=0.02))
    r = evaluate(C1, tmp_path, T)
    assert r.verdict == "supported" and len(r.lines) == 3
    assert "F(2, 6)" in r.tests[0] and "**supported**" in r.tests[0]
    assert {x.cols["with depth"] for x in r.lines} == {"grows"}
    assert "grows with depth in 3 of 3" in r.tests[0]


def test_runs_outside_both_sides_are_no_cell_of_the_claim(tmp_path):
    """A claim whose sides name some experiments of a shared table: the other architecture's runs make no row
    (not a "not tested" one), and the verdict is that of the named ones alone."""
    write(tmp_path, "gap_cpu", _gap_runs({"a": [0.02, 0.021, 0.019], "b": [0.10, 0.102, 0.098],
                                          "c": [0.20, 0.199, 0.201]}, depth_slope=0.02))
    named = _claim(a={"experiment": ["a_e2e", "b_e2e"]}, b={"experiment": ["a_greedy", "b_greedy"]})
    r = evaluate(named, tmp_path, T)
    assert [x.label.split(" / ")[-1] for x in r.lines] == ["a", "b"]
    assert r.verdict == "supported" and "F(1, 4)" in r.tests[0]


def test_interaction_homogeneous_gaps_are_not_supported(tmp_path):
    """The same gap (5 points) in every architecture: not supported when the F test had the power to see a
    2-point difference (a huge test set, 10 seeds), inconclusive when it had not (10,000 images: the test-set
    noise alone hides 2 points) -- never supported."""
    jitter = [0.001, -0.001, 0.0005, -0.0005, 0.0, 0.0002, -0.0002, 0.0008, -0.0008, 0.0]
    write(tmp_path, "gap_cpu", _gap_runs({a: [0.05 + j for j in jitter] for a in "abc"}), test_images=BIG)
    r = evaluate(C1, tmp_path, T)
    assert r.verdict == "not supported" and "power to detect" in r.tests[0].lower()
    write(tmp_path, "gap_cpu", _gap_runs({a: [0.05 + j for j in jitter[:3]] for a in "abc"}))
    assert evaluate(C1, tmp_path, T).verdict == "inconclusive"


def _arms(tmp_path, diffs: dict[str, list[float]], test_images: int = BIG) -> None:
    """Plain greedy at 40 % and one arm per key (its config column set to a remedy) at 40 % + diff per seed."""
    runs = [run("net_greedy", "greedy", s, 0.40) for s in range(3)]
    for i, (arm, per_seed) in enumerate(diffs.items()):
        runs += [run(f"net_{arm}", "greedy", s, 0.40 + d, config={"optim.stage_lr_gamma": 0.5 + i / 10})
                 for s, d in enumerate(per_seed)]
    write(tmp_path, "remedies_cpu", runs, test_images=test_images)


def test_existential_one_strong_arm_supports_the_family(tmp_path):
    _arms(tmp_path, {"strong": [0.10, 0.11, 0.12], "null1": [0.001, -0.001, 0.0], "null2": [0.0, 0.001, -0.001]})
    r = evaluate(SPEC.claims["C4"], tmp_path, T)
    verdicts = {x.label.split(" / ")[2].split()[0]: x.verdict for x in r.lines}
    assert verdicts == {"net_strong": "supported", "net_null1": "not supported", "net_null2": "not supported"}
    assert r.verdict == "supported" and "net_strong" in r.tests[0] and "survive" in r.tests[0]


def test_existential_all_null_arms_are_not_supported(tmp_path):
    _arms(tmp_path, {"null1": [0.001, -0.001, 0.0], "null2": [0.0, 0.001, -0.001]})
    r = evaluate(SPEC.claims["C4"], tmp_path, T)
    assert r.verdict == "not supported" and {x.verdict for x in r.lines} == {"not supported"}
    assert "no arm survives Holm" in r.tests[0]
    _arms(tmp_path, {"null1": [0.001, -0.001, 0.0], "null2": [0.0, 0.001, -0.001]}, test_images=10_000)
    assert evaluate(SPEC.claims["C4"], tmp_path, T).verdict == "inconclusive"  # +-1.4 points of test noise


def test_holm_turns_an_arm_that_passes_alone_into_one_that_does_not(tmp_path):
    """An arm at +2, +3, +4 points (one-sided p ~ 0.018) is supported on its own; beside two null arms, Holm
    multiplies its p by 3 and it no longer is."""
    _arms(tmp_path, {"weak": [0.02, 0.03, 0.04]})
    (alone,) = evaluate(SPEC.claims["C4"], tmp_path, T).lines
    assert alone.verdict == "supported" and float(alone.cols["Holm p"]) < 0.05
    _arms(tmp_path, {"weak": [0.02, 0.03, 0.04], "null1": [0.001, -0.001, 0.0], "null2": [0.0, 0.001, -0.002]})
    r = evaluate(SPEC.claims["C4"], tmp_path, T)
    weak = next(x for x in r.lines if "net_weak" in x.label)
    p, adjusted = float(weak.cols["t p (one-sided)"]), float(weak.cols["Holm p"])
    assert p < 0.05 <= adjusted and adjusted == pytest.approx(3 * p, abs=0.002)  # texts of 3 decimals
    assert weak.verdict != "supported" and r.verdict != "supported"


def test_existential_sign_test_at_three_seeds_cannot_reject(tmp_path):
    _arms(tmp_path, {"strong": [0.10, 0.11, 0.12]})
    (x,) = evaluate(SPEC.claims["C4"].model_copy(update={"test": "sign"}), tmp_path, T).lines
    assert x.cols["sign test p"] == "0.125" and x.verdict == "inconclusive"


def _saturation(tmp_path, greedy_after: float, patience: int = 2, test_images: int = BIG,
                matched_gain: float | None = None) -> None:
    """Greedy rises to L* = 4 then moves by ``greedy_after`` per block for ``patience`` more stages; E2E keeps
    gaining 3 points per block to depth 8; with ``matched_gain``, a compute-matched E2E arm gains that much per
    block."""
    runs = []
    for seed, j in enumerate((0.0, 0.002, -0.002)):
        greedy = [0.30 + 0.04 * d + j for d in range(4)]
        greedy += [greedy[-1] + greedy_after * k + (0.001 if k % 2 else -0.001) for k in range(1, patience + 1)]
        e2e = [0.30 + 0.03 * d + j for d in range(8)]
        runs += [run("g", "greedy", seed, greedy[-1], stages=greedy, critical=4,
                     config={"data.train_subset": 1000, "model.aux.k": 2}),
                 run("simple_cnn_e2e", "e2e", seed, e2e[-1], stages=e2e,
                     config={"data.train_subset": 1000, "model.aux.k": 2})]
        if matched_gain is not None:
            matched = [0.30 + matched_gain * d + j for d in range(8)]
            runs.append(run("simple_cnn_e2e_flops_matched", "e2e", seed, matched[-1], stages=matched,
                            config={"data.train_subset": 1000, "model.aux.k": 2}))
    write(tmp_path, "early_overfitting_all_stages_cpu", runs, test_images=test_images)


def test_saturation_with_tost(tmp_path):
    """Greedy flat after L* (TOST shows its gain within +-1 point) while E2E gains 6 points over L*..D:
    supported. Greedy still gaining 3 points per block after L*: not supported. Greedy runs that stop at L*
    give no post-L* gain: not tested, and the reason says so."""
    _saturation(tmp_path, greedy_after=0.0)
    (x,) = evaluate(SPEC.claims["C2"], tmp_path, T).lines
    assert x.verdict == "supported" and x.effect.mean == pytest.approx(0.06, abs=0.003)
    assert float(x.cols["TOST p (+-1.00)"].lstrip("< ")) < 0.05
    _saturation(tmp_path, greedy_after=0.03)
    (x,) = evaluate(SPEC.claims["C2"], tmp_path, T).lines
    gain = x.cols["greedy's own gain L*..D"]  # 2 x 3 points, less the jitter of 0.1
    assert x.verdict == "not supported" and gain.startswith("+5.90")
    _saturation(tmp_path, greedy_after=0.0, patience=0)
    (x,) = evaluate(SPEC.claims["C2"], tmp_path, T).lines
    assert x.verdict == "not tested" and "greedy trained no block past L*" in x.why


def test_the_compute_matched_arm_is_its_own_claim_beside_the_epoch_matched_one(tmp_path):
    """One table holds greedy, E2E (epoch-matched) and E2E trained for greedy's FLOPs: C2 pairs greedy with the
    first only, C2-compute with the second only; without the second, C2-compute is not tested (no runs)."""
    _saturation(tmp_path, greedy_after=0.0, matched_gain=0.002)
    (x,) = evaluate(SPEC.claims["C2"], tmp_path, T).lines
    assert x.verdict == "supported" and x.effect.mean == pytest.approx(0.06, abs=0.003)
    (m,) = evaluate(SPEC.claims["C2-compute"], tmp_path, T).lines  # L*..D = 2 blocks x 0.2 point: below the band
    assert m.effect.mean == pytest.approx(0.005, abs=0.002) and m.verdict == "not supported"
    _saturation(tmp_path, greedy_after=0.0)
    assert evaluate(SPEC.claims["C2-compute"], tmp_path, T).verdict == "not tested"


def test_saturation_takes_lstar_from_a_function_a_paired_test_can_replace(tmp_path):
    from lwt.report.claims.depth import saturation
    from lwt.report.claims.source import load_table

    _saturation(tmp_path, greedy_after=0.0)
    claim = SPEC.claims["C2"]
    table = load_table(tmp_path, claim, T.min_epochs)
    (x,) = saturation(claim, table, T, lstar=lambda table, row: 3).lines  # L* one block earlier: greedy gained 4
    assert x.cols["greedy's own gain L*..D"].startswith("+3.90")


def test_dose_response_swap_test(tmp_path):
    """Blocks on frozen E2E blocks 1..j beat those on frozen greedy blocks by 2, 4, 6 points at j = 1, 2, 3:
    supported; the same 3 points at every j: no dose-response shown, never supported; E2E's blocks worse at every
    j: not supported."""
    names = {side: SPEC.claims["C3"].model_dump()[side]["experiment"] for side in "ab"}  # one, or one per j

    def table(effects):
        runs = []
        for j, effect in zip((1, 2, 3), effects):
            for seed, jitter in enumerate((0.0, 0.002, -0.002)):
                cfg, a, b = {"curriculum.init_blocks": j}, *(n[min(j, len(n)) - 1] for n in names.values())
                runs += [run(b, "greedy", seed, 0.45 + jitter, config=cfg),
                         run(a, "greedy", seed, 0.45 + effect + jitter, config=cfg)]
        write(tmp_path, "swap_cpu", runs, test_images=BIG)
        return evaluate(SPEC.claims["C3"], tmp_path, T)

    r = table([0.02, 0.04, 0.06])
    assert r.verdict == "supported" and len(r.lines) == 3 and "slope" in r.tests[0]
    assert table([0.03, 0.03, 0.03]).verdict in ("inconclusive", "not supported")
    assert table([-0.03, -0.03, -0.03]).verdict == "not supported"


def test_swap_test_from_the_committed_table_and_without_one(tmp_path):
    """C3 on the committed swap runs: one line per j, each E2E-source arm paired with the greedy-source arm of
    the same seed and j, 3 seeds; without the table, not tested with the command that makes it."""
    r = evaluate(SPEC.claims["C3"], ROOT / "results", T)
    doses = {x.label.split(" / ")[-1]: x for x in r.lines}
    assert set(doses) == {"1", "2", "3"} and all(x.effect.n == 3 for x in doses.values())
    assert r.verdict != "not tested" and any("slope" in t for t in r.tests)
    empty = evaluate(SPEC.claims["C3"], tmp_path, T)
    assert empty.verdict == "not tested" and empty.why == "no table results/swap_cpu.csv yet"
    assert "lwt sweep experiments/sweeps/swap.yaml --variant cpu" in SPEC.claims["C3"].command


def test_ranking_holds_above_minus_equiv(tmp_path):
    """k=2 - k=1 and k=3 - k=2 paired by seed: a tie within the 1-point band holds (>=), a clear loss fails."""
    def table(acc):
        runs = [run("b", "greedy", s, a, model=f"belilovsky_k{k}") for k, accs in acc.items()
                for s, a in enumerate(accs)]
        write(tmp_path, "belilovsky_cifar10_cpu", runs, test_images=BIG)
        return evaluate(SPEC.claims["K"], tmp_path, T)

    r = table({1: [0.40, 0.41, 0.42], 2: [0.45, 0.47, 0.46], 3: [0.451, 0.469, 0.461]})
    by = {x.label: x for x in r.lines}
    assert by["cifar10 / k=3 - k=2"].verdict == "supported"  # a tie: k=3 >= k=2 holds
    assert by["cifar10 / k=3 - k=2"].cols["strictly ahead (> 0)"] == "not shown"
    assert by["cifar10 / k=3 - k=1"].verdict == "shown, not in the rule" and r.verdict == "supported"
    r = table({1: [0.40, 0.41, 0.42], 2: [0.45, 0.47, 0.46], 3: [0.40, 0.41, 0.42]})
    assert r.verdict == "not supported"


def test_universal_every_cell_above_the_band(tmp_path):
    """A universal claim: a cell is supported when its interval lies above +EQUIV; one cell below refutes it."""
    claim = _claim(type="universal", cell=["model", "dataset"], factor=None, per_depth=None)
    runs = [r for arch, gap in (("a", 0.05), ("b", 0.06)) for s in range(3) for r in
            (run("g", "greedy", s, 0.5, model=arch), run("e", "e2e", s, 0.5 + gap + 0.001 * s, model=arch))]
    write(tmp_path, "gap_cpu", runs, test_images=BIG)
    assert evaluate(claim, tmp_path, T).verdict == "supported"
    runs += [r for s in range(3) for r in (run("g", "greedy", s, 0.5, model="c"),
                                           run("e", "e2e", s, 0.5 + 0.001 * s, model="c"))]
    write(tmp_path, "gap_cpu", runs, test_images=BIG)
    r = evaluate(claim, tmp_path, T)
    assert r.verdict == "not supported" and [x.verdict for x in r.lines] == ["supported", "supported",
                                                                             "not supported"]


def test_power_and_underpowered_label(tmp_path):
    """C3b compares critical layers (no test-set term): power is TTestPower at d = 1 layer / SD, the seeds
    needed solve_power's n; n = 3 below it is underpowered."""
    runs = []
    for size, layers in ((500, [3, 4, 5]), (2000, [5, 4, 7])):
        runs += [run("g", "greedy", s, 0.4, critical=c, stages=[0.4] * 8,
                     config={"data.train_subset": size, "model.aux.k": 2}) for s, c in enumerate(layers)]
    write(tmp_path, "early_overfitting_all_stages_cpu", runs)
    (x,) = evaluate(SPEC.claims["C3b"], tmp_path, T).lines
    sd = x.effect.sd  # differences 2, 0, 2 layers
    assert x.effect.test_var == 0 and x.power == pytest.approx(TTestPower().power(1 / sd, 3, 0.05))
    assert x.needed == math.ceil(TTestPower().solve_power(effect_size=1 / sd, power=0.8, alpha=0.05)) > 3


def test_interval_is_at_least_the_test_set_noise_bound(tmp_path):
    """Seeds that agree to 0.01 points on a 500-image test set: the interval is still +-1.96 sqrt((p1(1 - p1) +
    p2(1 - p2)) / 500) wide at least."""
    runs = [r for s in range(3) for r in (run("g", "greedy", s, 0.40, model="a"),
                                          run("e", "e2e", s, 0.50 + 0.0001 * s, model="a"),
                                          run("g", "greedy", s, 0.40, model="b"),
                                          run("e", "e2e", s, 0.45 + 0.0001 * s, model="b"))]
    write(tmp_path, "gap_cpu", runs, test_images=500)
    a = next(x for x in evaluate(C1, tmp_path, T).lines if x.label.endswith("/ a"))
    bound = 1.959964 * math.sqrt((0.40 * 0.60 + 0.5001 * 0.4999) / 500)
    assert a.effect.half >= bound * 0.999 and a.effect.test_half == pytest.approx(bound, rel=1e-3)


def test_test_set_size_unknown_is_not_tested(tmp_path):
    _arms(tmp_path, {"strong": [0.10, 0.11, 0.12]}, test_images=None)
    (x,) = evaluate(SPEC.claims["C4"], tmp_path, T).lines
    assert x.verdict == "not tested" and x.why.startswith("test-set size unknown")


def test_probes_per_depth_from_the_committed_reports():
    """C3's probes: greedy - E2E probe test accuracy per depth, paired by seed, per cell (at 1,000 images and
    k = 2 greedy's block 1 is the more linearly separable, E2E's later blocks are)."""
    r = evaluate(SPEC.claims["C3-probes"], ROOT / "results", T)
    cells = {x.label for x in r.lines if x.label.startswith("probe")}
    assert cells >= {f"probe test_acc / simple_cnn / train_subset-{n}_k-{k}" for n in (500, 1000) for k in (1, 2)}
    probes = {x.cols["depth"]: x for x in r.lines if x.label == "probe test_acc / simple_cnn / train_subset-1000_k-2"}
    assert r.verdict == "descriptive" and probes["1"].effect.n == 3
    assert probes["1"].effect.mean == pytest.approx(((0.357 - 0.3313) + (0.3678 - 0.3387) + (0.3484 - 0.3336)) / 3)
    assert probes["5"].effect.mean < 0
