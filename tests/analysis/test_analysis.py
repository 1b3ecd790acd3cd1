"""lwt.analysis: probes reach what an independent linear classifier reaches, CKA has its invariances,
the per-layer table measures un-augmented accuracy, the critical report reads a curriculum right, and
the `lwt gap/probe/cka/critical` commands work on real tiny finished runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lwt.analysis.cka import block_grams, cka_matrix, linear_cka
from lwt.analysis.critical import critical_report
from lwt.analysis.probes import probe_network
from lwt.cli import main
from lwt.config import AnalysisConfig, load_config
from lwt.errors import LwtError
from lwt.models import StagedNet
from lwt.run.load import load_datamodule, load_network, open_run
from lwt.run.result import RunResult
from lwt.training.compute import autocast, resolve_precision
from lwt.training.train import run

from conftest import EXPERIMENTS

GREEDY = EXPERIMENTS / "cifar10" / "belilovsky_k2_greedy.yaml"
E2E = EXPERIMENTS / "cifar10" / "belilovsky_k2_e2e.yaml"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def runs(data_root, tmp_path_factory) -> dict[str, Path]:
    """One tiny finished greedy run (2 stages of 4; W&B offline, to see the per-layer table there) and one tiny
    E2E run."""
    shrink = [f"data.root={data_root}", "data.train_subset=512", "data.val_size=256", "data.test_subset=500",
              "trainer.progress_bar=false", "model.width=16", f"logging.out_dir={tmp_path_factory.mktemp('runs')}"]
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("WANDB_MODE", raising=False)
        greedy = run(load_config(GREEDY, shrink + ["curriculum.epochs_per_stage=1", "curriculum.max_stages=2",
                                                   "logging.wandb=offline"]))
    e2e = run(load_config(E2E, shrink + ["trainer.max_epochs=1", "logging.wandb=disabled"]))
    return {"greedy": Path(greedy.run_dir), "e2e": Path(e2e.run_dir)}


def lwt(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_analysis_settings_are_validated_and_stay_out_of_the_run_name():
    cfg = load_config(GREEDY, ["analysis.probe_epochs=5", "analysis.train_eval_size=null", "seed=1"])
    assert cfg.analysis.probe_epochs == 5 and cfg.analysis.train_eval_size is None
    assert cfg.run_name == "seed1"  # measured after training: the same training lands in the same folder
    with pytest.raises(LwtError, match="valid keys in section 'analysis': per_layer, train_eval_size"):
        load_config(GREEDY, ["analysis.probe_epoch=5"])
    with pytest.raises(LwtError, match="analysis.probe_pool=0 must be at least 1"):
        load_config(GREEDY, ["analysis.probe_pool=0"])


# ---------------------------------------------------------------- probes


@pytest.mark.slow
def test_probe_on_raw_input_matches_an_independent_linear_classifier(data_root):
    cfg = load_config(GREEDY, [f"data.root={data_root}", "data.train_subset=2000", "data.val_size=256",
                               "data.test_subset=1000"])
    dm = load_datamodule(cfg)
    acfg = AnalysisConfig(probe_pool=4, probe_epochs=8, probe_lr=1e-2, probe_batch_size=128, seed=3)
    net = StagedNet([nn.Identity(), nn.Identity()], nn.Identity(), widths=[3, 3])  # block outputs = the input
    rows = probe_network(net, dm, [1, 2], acfg, CPU)

    # the same protocol written out by hand: pixels pooled 32x32 -> 4x4 by a strided mean, z-scored with
    # training statistics, softmax regression from zeros, Adam, epochs in a seeded order
    def pixels(s):  # (N, 3, 32, 32) uint8 -> (N, 48)
        return F.avg_pool2d(dm.preprocess(s.x, train=False), kernel_size=8).reshape(len(s.x), -1)

    x_train, x_test = pixels(dm.train_set), pixels(dm.test_set)
    mean, std = x_train.mean(0), x_train.std(0)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    w = torch.zeros(48, 10, requires_grad=True)
    b = torch.zeros(10, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=1e-2)
    order = torch.Generator().manual_seed(3)
    y_train, y_test = dm.train_set.y, dm.test_set.y
    for _ in range(8):
        perm = torch.randperm(len(y_train), generator=order)
        for i in range(0, len(perm), 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            F.cross_entropy(x_train[idx] @ w + b, y_train[idx]).backward()
            opt.step()
    with torch.no_grad():
        train_acc = ((x_train @ w + b).argmax(1) == y_train).float().mean().item()
        test_acc = ((x_test @ w + b).argmax(1) == y_test).float().mean().item()

    assert test_acc > 0.2, test_acc  # the baseline itself learns (chance is 0.1)
    for row in rows:
        assert row["features"] == 48
        assert abs(row["train_acc"] - train_acc) <= 0.01, (row, train_acc)
        assert abs(row["test_acc"] - test_acc) <= 0.01, (row, test_acc)


# ---------------------------------------------------------------- CKA


def test_cka_is_one_for_itself_and_invariant_to_rotation_scaling_and_shift():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 50, generator=g)
    q, _ = torch.linalg.qr(torch.randn(50, 50, generator=g))  # random orthogonal matrix
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, x @ q) == pytest.approx(1.0, abs=1e-6)
    assert linear_cka(x, 3.7 * x) == pytest.approx(1.0, abs=1e-6)
    assert linear_cka(x, x + 5.0) == pytest.approx(1.0, abs=1e-6)  # centred over examples
    y = torch.randn(200, 50, generator=g)  # unrelated features
    assert linear_cka(x, y) < 0.4
    assert linear_cka(x @ q * 0.1, y) == pytest.approx(linear_cka(x, y), abs=1e-6)
    # the feature-space form (n >= p + q) and the Gram form (n < p + q) agree
    wide = torch.randn(200, 30, generator=g)
    mixed = x[:, :30] + 0.5 * wide
    assert linear_cka(x[:20], mixed[:20]) == pytest.approx(  # Gram form: 20 < 80 features
        float(_gram_form(x[:20], mixed[:20])), abs=1e-9)
    assert linear_cka(x, mixed) == pytest.approx(float(_gram_form(x, mixed)), abs=1e-9)  # feature form


def _gram_form(x, y):
    x, y = (t.double() - t.double().mean(0) for t in (x, y))
    k, m = x @ x.T, y @ y.T
    return (k * m).sum() / (k.norm() * m.norm())


def test_block_by_block_cka_matrix_matches_pairwise_cka():
    torch.manual_seed(0)
    net = StagedNet([nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()),
                     nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.ReLU()),
                     nn.Sequential(nn.Conv2d(8, 4, 3, padding=1), nn.ReLU())], nn.Identity(), widths=[8, 8, 4])
    x = torch.randint(0, 256, (60, 3, 8, 8), dtype=torch.uint8)

    def prep(xb, train):
        return xb.float() / 255

    grams = block_grams(net, x, prep, [1, 2, 3], batch_size=16, device=CPU)
    matrix = torch.tensor(cka_matrix(grams, grams))
    feats = net.block_outputs(prep(x, False))
    expected = torch.tensor([[linear_cka(a.detach(), b.detach()) for b in feats] for a in feats])
    assert torch.allclose(matrix, expected, atol=1e-6)
    assert torch.allclose(matrix.diagonal(), torch.ones(3, dtype=matrix.dtype), atol=1e-9)


# ---------------------------------------------------------------- per-layer gap


@pytest.mark.slow
def test_per_layer_rows_measure_unaugmented_training_accuracy(runs):
    greedy = open_run(runs["greedy"])
    rows, stages = greedy.result.per_layer, greedy.result.stages
    assert [r.depth for r in rows] == greedy.result.depths == [1, 2]  # one row per trained stage
    dm = load_datamodule(greedy.cfg)
    net = load_network(greedy, dm)
    x, y = dm.train_set.x, dm.train_set.y
    for row, stage in zip(rows, stages):
        d = row.depth
        assert row.train_images == len(y) == 512  # train_eval_size (10000) exceeds the training set
        # val/test readouts are the ones the stage itself reported; the gap is train - test
        assert row.val_acc == pytest.approx(stage.val_acc, abs=1e-6)
        assert row.test_acc == pytest.approx(stage.test_acc, abs=1e-6)
        assert row.gap == pytest.approx(row.train_acc - row.test_acc)
        with torch.no_grad(), autocast(resolve_precision(greedy.cfg.trainer), torch.device("cpu")):  # as the run
            clean = net.aux_heads[d - 1](net.features(dm.preprocess(x, train=False), d)).argmax(1)
            torch.manual_seed(0)
            augmented = net.aux_heads[d - 1](net.features(dm.preprocess(x, train=True), d)).argmax(1)
        assert row.train_acc == pytest.approx((clean == y).float().mean().item(), abs=1e-9)
        assert (clean != augmented).any()  # augmentation would have changed the measurement
    (table,) = runs["greedy"].glob("wandb/offline-run-*/files/media/table/per_layer_*.table.json")
    logged = json.loads(table.read_text())
    assert logged["data"] == [[r.to_json()[c] for c in logged["columns"]] for r in rows]  # the same rows, in W&B

    e2e = open_run(runs["e2e"]).result
    assert [r.depth for r in e2e.per_layer] == [1, 2, 3, 4]
    for row, stage in zip(e2e.per_layer, e2e.stages):  # depth 4 is read out by the classifier
        assert row.test_acc == pytest.approx(stage.test_acc, abs=1e-6)


# ---------------------------------------------------------------- critical-layer report


def scripted_result(val, test, patience):
    """A result.json whose online stop used a fixed threshold of 0.01 over the best val acc, recorded as lwt
    recorded that rule (committed results hold such records)."""
    best, best_stage, misses, history, critical = -1.0, None, 0, [], None
    for stage, acc in enumerate(val, start=1):
        pays = stage == 1 or acc > best + 0.01
        misses = 0 if pays else misses + 1
        history.append({"stage": stage, "val_acc": acc, "gain_over_best": None if stage == 1 else acc - best,
                        "threshold": None if stage == 1 else 0.01, "pays": pays})
        best_stage = stage if acc > best else best_stage
        best = max(best, acc)
        if critical is None and patience is not None and misses >= patience:
            critical = best_stage
    decision = {"critical_layer": critical, "fired": critical is not None, "best_stage": best_stage,
                "best_val_acc": best, "patience": patience, "min_gain": 0.01, "z": None, "val_images": None,
                "history": history}
    stages = [{"stage": i, "depth": i, "val_acc": v, "test_acc": t} for i, (v, t) in enumerate(zip(val, test), 1)]
    return {"experiment": "x", "run_name": "y", "mode": "greedy", "model": "m", "dataset": "d",
            "stages": stages, "critical": decision}


def test_critical_report_on_a_scripted_curriculum(tmp_path, capsys):
    result = scripted_result([0.40, 0.50, 0.495, 0.49], [0.38, 0.47, 0.49, 0.46], patience=2)
    report = critical_report(RunResult.from_json(result))
    curve = report["curve"]
    assert [r["depth"] for r in curve] == [1, 2, 3, 4]
    assert curve[0]["val_gain"] is None
    assert [round(r["val_gain"], 4) for r in curve[1:]] == [0.1, -0.005, -0.005]
    assert [round(r["test_gain"], 4) for r in curve[1:]] == [0.09, 0.02, -0.03]
    assert [r["pays"] for r in curve] == [True, True, False, False]  # stages 3, 4 do not beat 0.50 by 0.01
    c = report["criterion"]
    assert c["enabled"] and c["fired"] and c["critical_layer"] == 2 and c["fired_at_stage"] == 4
    assert report["best_val_stage"] == 2 and report["best_test_stage"] == 3  # test may disagree with val
    assert report["test_acc_at_critical"] == 0.47

    off = critical_report(RunResult.from_json(scripted_result([0.4, 0.5], [0.4, 0.5], patience=None)))
    assert not off["criterion"]["enabled"] and not off["criterion"]["fired"]
    assert off["criterion"]["fired_at_stage"] is None
    with pytest.raises(LwtError, match="needs a greedy run"):
        critical_report(RunResult.from_json({**result, "mode": "e2e"}))

    (tmp_path / "result.json").write_text(json.dumps(result))  # the command reads nothing but result.json
    code, out, _ = lwt(capsys, "critical", tmp_path)
    assert code == 0 and "criterion fired after stage 4: critical layer = stage 2 (patience 2, min gain 0.01)" in out
    assert "paired test: no per-image predictions in this run folder" in out
    assert json.loads((tmp_path / "critical.json").read_text()) == json.loads(json.dumps(report))


# ---------------------------------------------------------------- the commands on finished runs


@pytest.mark.slow
def test_gap_and_probe_commands(runs, capsys, monkeypatch):
    code, out, err = lwt(capsys, "gap", runs["greedy"], "analysis.train_eval_size=100")
    assert code == 0 and "gap" in out
    assert "[lwt]" not in err  # stderr is not a terminal here: no progress bar
    gap = json.loads((runs["greedy"] / "gap.json").read_text())
    per_layer = json.loads((runs["greedy"] / "result.json").read_text())["per_layer"]
    assert [r["train_images"] for r in gap["rows"]] == [100, 100]
    assert [r["test_acc"] for r in gap["rows"]] == [r["test_acc"] for r in per_layer]

    monkeypatch.setenv("LWT_PROGRESS", "1")  # bars as on a terminal: features, then 4 depths x 2 epochs
    code, out, err = lwt(capsys, "probe", runs["e2e"], "analysis.probe_epochs=2")
    assert code == 0 and "linear probes" in out
    assert "[lwt] probe features: 100%" in err and "[lwt] probes: 100%" in err and "8/8" in err
    assert "depth 4" in err  # the bar names the depth being probed
    probes = json.loads((runs["e2e"] / "probes.json").read_text())
    assert [r["depth"] for r in probes["rows"]] == [1, 2, 3, 4]
    assert probes["protocol"]["epochs"] == 2 and probes["protocol"]["train_images"] == 512
    assert all(0.0 <= r["train_acc"] <= 1.0 and 0.0 <= r["test_acc"] <= 1.0 for r in probes["rows"])


@pytest.mark.slow
def test_cka_and_critical_commands(runs, capsys, tmp_path):
    g, e = runs["greedy"], runs["e2e"]
    code, out, _ = lwt(capsys, "cka", g, e, "analysis.cka_samples=200", "--out", tmp_path / "heat")
    assert code == 0 and "linear CKA on 200 test images" in out
    (written,) = g.glob("cka_belilovsky_k2_e2e__*.json")
    report = json.loads(written.read_text())
    matrix = torch.tensor(report["cka"])
    assert matrix.shape == (2, 4)  # greedy trained 2 stages; E2E has 4 blocks
    assert ((matrix > 0) & (matrix <= 1 + 1e-9)).all()
    assert (tmp_path / "heat.png").stat().st_size > 0 and (tmp_path / "heat.pdf").stat().st_size > 0

    code, _, _ = lwt(capsys, "cka", e, e, "analysis.cka_samples=100", "--out", tmp_path / "self")
    (self_json,) = e.glob("cka_*.json")
    diagonal = torch.tensor(json.loads(self_json.read_text())["cka"]).diagonal()
    assert code == 0 and torch.allclose(diagonal, torch.ones(4, dtype=diagonal.dtype), atol=1e-6)

    code, out, _ = lwt(capsys, "critical", g)
    assert code == 0 and "online stop: off" in out
    assert ("critical layer L* = stage" in out) == (g / "per_image.npz").is_file()  # the paired test's L*
    assert json.loads((g / "critical.json").read_text())["stages_trained"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("args, fragment", [
    (["gap", "{empty}"], "holds no result.json, so it is not a finished lwt run"),
    (["probe", "{greedy}", "model.width=32"], "cannot override model.width=32"),
    (["critical", "{e2e}"], "needs a greedy run"),
])
def test_command_errors_are_one_line(runs, capsys, tmp_path, args, fragment):
    args = [a.format(empty=tmp_path, **runs) for a in args]
    code, _, err = lwt(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("lwt: error: ") and fragment in lines[0], err
