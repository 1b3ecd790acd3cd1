"""Greedy stages and E2E training on real CIFAR-10 batches: what is frozen stays frozen, what is
detached stays detached, and short real runs learn."""

from __future__ import annotations

import json
import math

import lightning as L
import pytest
import torch

from lwt.config import load_config
from lwt.errors import LwtError
from lwt.run.load import load_datamodule
from lwt.run.result import RunResult
from lwt.training import EndToEndModule, StageModule
from lwt.training.base import lr_factor
from lwt.training.dgl import DecoupledModule
from lwt.training.train import run, train

from conftest import EXPERIMENTS, GREEDY, build_tiny

E2E = EXPERIMENTS / "cifar10" / "belilovsky_k2_e2e.yaml"


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def fit_batches(module, dm, batches: int, epochs: int = 1, callbacks=()) -> L.Trainer:
    trainer = L.Trainer(max_epochs=epochs, limit_train_batches=batches, limit_val_batches=1, logger=False,
                        callbacks=list(callbacks), enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu")
    trainer.fit(module, datamodule=dm)
    return trainer


@pytest.mark.slow
def test_frozen_prefix_is_bit_identical_after_greedy_steps(tiny):
    cfg, dm, net = build_tiny(tiny)
    stage = 3  # trains block 3 on top of frozen blocks 1-2 (its parameters: blocks.2.*, aux_heads.2.*)
    before = snapshot(net)
    fit_batches(StageModule(net, stage, cfg.optim, dm.num_classes, max_epochs=1), dm, batches=3)
    after = net.state_dict()
    trained = (f"blocks.{stage - 1}.", f"aux_heads.{stage - 1}.")
    assert any("running_mean" in k for k in before if k.startswith("blocks.0."))  # BN buffers are checked too
    for key, value in before.items():
        if key.startswith(trained):
            continue
        assert torch.equal(value, after[key]), f"{key} changed although it is frozen"
    changed = [k for k in before if k.startswith(trained) and not torch.equal(before[k], after[k])]
    assert any(k.startswith(trained[0]) for k in changed)
    assert any(k.startswith(trained[1]) for k in changed)


@pytest.mark.slow
def test_stage_optimizer_holds_only_the_current_stage(tiny):
    cfg, dm, net = build_tiny(tiny)
    module = StageModule(net, 2, cfg.optim, dm.num_classes, max_epochs=1)
    (opt,) = fit_batches(module, dm, batches=1).optimizers
    in_opt = {id(p) for group in opt.param_groups for p in group["params"]}
    expected = {id(p) for p in [*net.blocks[1].parameters(), *net.aux_heads[1].parameters()]}
    assert in_opt == expected
    assert {id(p) for p in net.parameters() if p.requires_grad} == expected
    module.train()
    assert not net.blocks[0].training and net.blocks[1].training and net.aux_heads[1].training


@pytest.mark.slow
def test_e2e_aux_readouts_do_not_change_the_network_gradients(tiny):
    cfg, dm, net = build_tiny(tiny)
    module = EndToEndModule(net, cfg.optim, dm.num_classes, max_epochs=1)
    x, y = next(iter(dm.train_dataloader()))
    x = dm.preprocess(x, train=False)
    net.eval()  # BN in eval so both passes see the same function

    def block_grads(with_aux: bool):
        net.zero_grad()
        outs = module.readouts(x)
        ce = torch.nn.functional.cross_entropy
        loss = sum(ce(o, y) for o in outs.values()) if with_aux else ce(outs[module.main_depth], y)
        loss.backward()
        return [p.grad.clone() for p in [*net.blocks.parameters(), *net.classifier.parameters()]]

    with_aux = block_grads(True)
    assert net.aux_heads[0][0].weight.grad is not None  # the readout heads themselves do learn
    for g_aux, g_plain in zip(with_aux, block_grads(False)):
        assert torch.allclose(g_aux, g_plain, atol=1e-7)


@pytest.mark.slow
def test_greedy_run_learns_and_writes_its_run_directory(tiny, monkeypatch):
    # The revision recorded is that of the code that trained: read when the run starts, even if the
    # checkout moves on (a commit) while it trains: this stand-in says "after" once stage 1 has a checkpoint.
    cfg = load_config(GREEDY, tiny + ["data.train_subset=1000", "curriculum.max_stages=2",
                                      "curriculum.epochs_per_stage=3", "model.width=16"])
    trained = cfg_run_dir(cfg) / "checkpoints" / "stage1"
    monkeypatch.setattr("lwt.training.train.git_revision", lambda: "after" if trained.exists() else "before")
    result = run(cfg)
    assert result.git_revision == "before"
    run_dir = cfg_run_dir(cfg)
    assert result.depths == [1, 2]
    assert all(s.epochs == 3 for s in result.stages)
    # chance is 0.10 on 500 test images (standard error 0.013), so 0.20 is learning; seeds 0-2 reach 0.24-0.27
    # (width 16, AVX2 CPU, 2026-12-05; width 64 learnt no more in 8x the time)
    assert result.final_test_acc > 0.20, result.stages
    saved = json.loads((run_dir / "result.json").read_text())
    assert saved == result.to_json() and [s["stage"] for s in saved["stages"]] == [1, 2]  # on disk: both keys
    assert RunResult.read(run_dir / "result.json") == result
    for name in ("config.yaml", "meta.json", "metrics.jsonl", "model.pt", "checkpoints/stage2/last.ckpt"):
        assert (run_dir / name).exists(), name
    assert load_config(run_dir / "config.yaml").data.train_subset == 1000  # the resolved config reloads


@pytest.mark.slow
def test_e2e_run_learns_with_one_row_per_block(tiny):
    cfg = load_config(E2E, tiny + ["data.train_subset=1000", "trainer.max_epochs=4", "model.width=16"])
    result = run(cfg)
    assert result.depths == [1, 2, 3, 4]
    assert result.final_test_acc > 0.25, result.stages  # seeds 0-2: 0.31, 0.30, 0.27 (AVX2 CPU, 2026-12-05)
    assert all(0.0 <= s.test_acc <= 1.0 and s.train_acc is not None for s in result.stages)


@pytest.mark.slow
def test_greedy_result_has_the_val_selected_depth_and_the_ensemble(tiny):
    cfg = load_config(GREEDY, tiny + ["curriculum.max_stages=3", "curriculum.epochs_per_stage=1", "model.width=16",
                                      "trainer.precision=32-true"])
    result, net = train(cfg)
    stages = result.stages
    best = max(stages, key=lambda s: s.val_acc)
    assert (result.selected_depth, result.selected_test_acc) == (best.depth, best.test_acc)
    assert result.final_test_acc == stages[-1].test_acc  # "final" stays the last stage
    # the ensemble by hand: Z_k = sum_j 2^j z_j over the aux heads' logits of stages 1..k, on the test set
    dm = load_datamodule(cfg)
    x, y = dm.test_set.x, dm.test_set.y
    net.eval()
    with torch.no_grad():
        h, z, expected = dm.preprocess(x, train=False), 0, []
        for j in range(3):
            h = net.blocks[j](h)
            z = z + 2.0 ** j * net.aux_heads[j](h)
            expected.append(int((z.argmax(1) == y).sum()) / len(y))
    assert [s.ensemble_test_acc for s in stages] == expected
    assert result.ensemble_test_acc == stages[-1].ensemble_test_acc
    assert stages[0].ensemble_test_acc == result.per_layer[0].test_acc  # one stage: its own readout


def cfg_run_dir(cfg):
    from pathlib import Path

    return Path(cfg.logging.out_dir) / cfg.experiment / cfg.run_name


@pytest.mark.slow
def test_plateau_ends_a_stage_early(tiny):
    cfg = load_config(GREEDY, tiny + ["curriculum.max_stages=1", "curriculum.stage_end=plateau",
                                      "curriculum.epochs_per_stage=6", "curriculum.plateau_patience=1",
                                      "curriculum.plateau_min_delta=0.5", "model.width=16"])
    result = run(cfg)
    stage = result.stages[0]
    # no epoch can gain 50 points, so the first epoch after the first is stale and ends the stage
    assert stage.epochs == 2 and stage.stop_reason == "plateau"


@pytest.mark.slow
@pytest.mark.parametrize("mode_file", [GREEDY])
def test_critical_layer_stops_the_curriculum_and_is_recorded(tiny, mode_file):
    # at alpha 1e-9 no gain on 256 validation images is significant, so stage 2 fails to pay and (patience 1)
    # ends the curriculum there; the runner hands the curriculum each stage's per-image val correctness
    cfg = load_config(mode_file, tiny + ["curriculum.epochs_per_stage=1", "curriculum.critical_patience=1",
                                         "curriculum.critical_alpha=1e-9", "model.width=16"])
    result = run(cfg)
    assert len(result.stages) == 2
    crit = result.critical
    assert crit["fired"] and crit["critical_layer"] in (1, 2) and len(crit["history"]) == 2


class LrLog(L.Callback):
    """The learning rate of every group as each optimizer step applies it."""

    def __init__(self):
        self.lrs: list[list[float]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.lrs.append([g["lr"] for g in optimizer.param_groups])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["e2e", "dgl"])
def test_warmup_scales_the_first_steps_of_the_schedule(tiny, mode):
    cfg, dm, net = build_tiny(tiny, f"mode={mode}", "optim.schedule=step", "optim.milestones=[0.5]",
                              "optim.gamma=0.5", "optim.warmup_epochs=1.5", width=16)
    module = (EndToEndModule(net, cfg.optim, dm.num_classes, max_epochs=2) if mode == "e2e"
              else DecoupledModule(net, cfg.optim, dm.num_classes, max_epochs=2, stages=2))
    log = LrLog()
    trainer = fit_batches(module, dm, batches=4, epochs=2, callbacks=[log])
    # 2 epochs x 4 batches = 8 steps, milestone 0.5 at step 4; 1.5 epochs = 6 warm-up steps: factor (s+1)/6
    expected = [0.1 * f / 6 for f in (1, 2, 3, 4)] + [0.05 * 5 / 6, 0.05, 0.05, 0.05]
    per_optimizer = 1 if mode == "e2e" else 2
    got = [lrs[0] for lrs in log.lrs[::per_optimizer]]
    assert got == pytest.approx(expected)
    assert all(len(set(lrs)) == 1 for lrs in log.lrs)  # every group, every optimizer
    assert all(g["lr"] == pytest.approx(0.05) for opt in trainer.optimizers for g in opt.param_groups)


def test_paper_schedule_is_milestone_fractions_of_the_budget():
    """50 epochs of 391 batches (45,000 images / 128): lr / 5 exactly at the first step of epochs 15, 30, 45."""
    o = load_config(GREEDY).optim
    steps, per_epoch = 50 * 391, 391
    factors = {e: lr_factor(o, e * per_epoch, steps) for e in (0, 14, 15, 29, 30, 44, 45, 49)}
    assert factors == pytest.approx({0: 1, 14: 1, 15: 0.2, 29: 0.2, 30: 0.04, 44: 0.04, 45: 0.008, 49: 0.008})
    assert lr_factor(o, 15 * per_epoch - 1, steps) == 1


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["step", "cosine"])
def test_a_three_epoch_stage_anneals_step_by_step(tiny, schedule):
    """The learning rate a greedy stage's optimizer applies at each of its 3 x 4 = 12 steps."""
    cfg, dm, net = build_tiny(tiny, f"optim.schedule={schedule}", width=16)
    log = LrLog()
    fit_batches(StageModule(net, 2, cfg.optim, dm.num_classes, max_epochs=3), dm, batches=4, epochs=3,
                callbacks=[log])
    got = [lrs[0] for lrs in log.lrs]
    if schedule == "step":  # milestones 0.3, 0.6, 0.9 of 12 steps: steps 4, 7, 11
        expected = [0.1] * 4 + [0.02] * 3 + [0.004] * 4 + [0.0008]
    else:
        expected = [0.05 * (1 + math.cos(math.pi * s / 12)) for s in range(12)]
    assert got == pytest.approx(expected)


def test_milestones_must_be_increasing_fractions(tiny):
    with pytest.raises(LwtError, match=r"optim.milestones=\[0.6, 0.3\]: fractions"):
        load_config(GREEDY, tiny + ["optim.milestones=[0.6,0.3]"])


def test_warmup_must_not_be_negative(tiny):
    with pytest.raises(LwtError, match=r"optim.warmup_epochs=-1.0 must be 0 \(off\) or more"):
        load_config(GREEDY, tiny + ["optim.warmup_epochs=-1"])


def test_epoch_timer_counts_the_training_loop_alone():
    """Scripted clock: 2 epochs of 3 training batches (1 s each), each followed by a 10 s validation pass."""
    from types import SimpleNamespace

    from lwt.training.state import EpochTimer

    now = [0.0]
    timer = EpochTimer(clock=lambda: now[0])
    trainer = SimpleNamespace(sanity_checking=False)
    for _ in range(2):
        timer.on_train_epoch_start(trainer, None)
        for b in range(3):
            now[0] += 1
            timer.on_train_batch_end(trainer, None, None, None, b)
        timer.on_validation_epoch_start(trainer, None)
        now[0] += 10
        timer.on_validation_epoch_end(trainer, None)
        now[0] += 5  # the epoch-end checkpoint
        timer.on_train_epoch_end(trainer, None)
    assert (timer.seconds, timer.val_seconds) == (6.0, 20.0)


@pytest.mark.slow
def test_stage_rows_report_training_speed_and_evaluation_time_apart(tiny):
    cfg = load_config(GREEDY, tiny + ["curriculum.max_stages=2", "curriculum.epochs_per_stage=1", "model.width=16"])
    for row in run(cfg).stages:
        assert 0 < row.train_seconds and 0 < row.eval_seconds
        assert row.train_seconds + row.eval_seconds <= row.seconds
        assert row.images_per_s == pytest.approx(512 / row.train_seconds, rel=0.002)  # 512 images, 1 epoch
