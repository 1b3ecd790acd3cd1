"""Remedies for greedy training's early-layer problem (issue 4), on real tiny CIFAR-10 runs: layer-wise
learning rates and weight decay reach the optimizers, decoupled greedy training detaches, greedy-then-
fine-tune trains (and resumes), and per-stage epoch budgets apply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lwt.config import check_stage_lists, load_config
from lwt.errors import LwtError
from lwt.run.result import RunResult, stage_table
from lwt.training import EndToEndModule, StageModule
from lwt.training.dgl import DecoupledModule
from lwt.training.resume import resume_config
from lwt.training.train import run

from conftest import EXPERIMENTS, GREEDY, build_tiny, crash_in_fresh_dir

E2E = EXPERIMENTS / "cifar10" / "belilovsky_k2_e2e.yaml"
MULTS = [0.1, 0.2, 0.5, 1.0]  # belilovsky_k2 has 4 blocks
DECAYS = [1e-3, 5e-4, 2e-4, 1e-4]


def setup(tiny, *extra, path=GREEDY):
    return build_tiny(tiny, *extra, path=path, width=16)


def stage_rows(result: RunResult) -> list[dict]:
    """What a resumed run must reproduce exactly (not seconds)."""
    return [{k: getattr(row, k) for k in ("depth", "train_acc", "val_acc", "test_acc", "epochs")}
            for row in result.stages]


def group_of(opt: torch.optim.Optimizer) -> dict[int, dict]:
    """id(parameter) -> the param group holding it."""
    return {id(p): g for g in opt.param_groups for p in g["params"]}


def optimizers(module) -> list[torch.optim.Optimizer]:
    out = module.configure_optimizers()
    if isinstance(out, dict):
        return [out["optimizer"]]
    return list(out[0]) if isinstance(out, tuple) else list(out) if isinstance(out, list) else [out]


def test_layerwise_lr_and_weight_decay_land_in_greedy_and_e2e_param_groups(tiny):
    cfg, dm, net = setup(tiny, f"optim.stage_lr_mult={MULTS}", f"optim.stage_weight_decay={DECAYS}")
    lr = cfg.optim.lr
    for k in range(net.num_blocks):  # greedy stage k+1: its one group at lr * mult_k, decay_k
        (opt,) = optimizers(StageModule(net, k + 1, cfg.optim, dm.num_classes, max_epochs=1))
        (group,) = opt.param_groups
        assert group["lr"] == pytest.approx(lr * MULTS[k]) and group["weight_decay"] == DECAYS[k]
    # E2E: every block's parameters at its own multiplier; classifier and readout heads at the last block's
    (opt,) = optimizers(EndToEndModule(net, cfg.optim, dm.num_classes, max_epochs=1))
    assert all(m.training for m in net.modules())  # the stages left blocks frozen in eval mode; E2E undoes it
    groups = group_of(opt)
    for k, block in enumerate(net.blocks):
        for p in block.parameters():
            assert groups[id(p)]["lr"] == pytest.approx(lr * MULTS[k]) and groups[id(p)]["weight_decay"] == DECAYS[k]
    for p in [*net.classifier.parameters(), *net.aux_heads[0].parameters()]:
        assert groups[id(p)]["lr"] == pytest.approx(lr * MULTS[-1])
    assert not any(id(p) in groups for p in net.aux_heads[-1].parameters())  # unused in E2E, as before
    # the geometric rule: lr_k = lr * gamma^(K-k), 1-based k, K = 4 blocks
    cfg = load_config(GREEDY, tiny + ["model.width=16", "optim.stage_lr_gamma=0.5"])
    for k in range(1, 5):
        (opt,) = optimizers(StageModule(net, k, cfg.optim, dm.num_classes, max_epochs=1))
        assert opt.param_groups[0]["lr"] == pytest.approx(lr * 0.5 ** (4 - k))


def test_per_block_lists_must_match_the_network(tiny):
    cfg, _, net = setup(tiny, "optim.stage_lr_mult=[1, 0.5]")
    with pytest.raises(LwtError, match=r"optim.stage_lr_mult has 2 entries but .* has 4 blocks"):
        check_stage_lists(cfg, net.num_blocks)
    with pytest.raises(LwtError, match="curriculum.stage_epochs has 3 entries"):
        run(load_config(GREEDY, tiny + ["model.width=16", "curriculum.stage_epochs=[1, 1, 1]"]))
    with pytest.raises(LwtError, match="give one"):
        load_config(GREEDY, tiny + ["optim.stage_lr_mult=[1, 1, 1, 1]", "optim.stage_lr_gamma=0.5"])


def test_dgl_no_gradient_reaches_an_earlier_block(tiny):
    cfg, dm, net = setup(tiny, "mode=dgl", f"optim.stage_lr_mult={MULTS}")
    module = DecoupledModule(net, cfg.optim, dm.num_classes, max_epochs=1, stages=4)
    opts = optimizers(module)  # one optimizer per stage, holding exactly that stage's block and head
    assert len(opts) == 4
    for k, opt in enumerate(opts):
        assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in module.stage_parameters(k + 1)}
        assert opt.param_groups[0]["lr"] == pytest.approx(cfg.optim.lr * MULTS[k])
    x, y = next(iter(dm.train_dataloader()))
    x = dm.preprocess(x, train=True)
    ce = torch.nn.functional.cross_entropy
    net.zero_grad(set_to_none=True)
    ce(module.readouts(x)[2], y).backward()  # stage 2's loss alone
    assert all(p.grad is None for p in [*net.blocks[0].parameters(), *net.aux_heads[0].parameters()])
    assert all(p.grad is not None for p in net.blocks[1].parameters() if p.requires_grad)
    assert any(p.grad.abs().sum() > 0 for p in net.blocks[1].parameters())


@pytest.mark.slow
def test_dgl_run_has_one_row_per_stage(tiny):
    cfg = load_config(GREEDY, tiny + ["model.width=16", "mode=dgl", "curriculum.epochs_per_stage=1",
                                      "optim.stage_lr_gamma=0.5"])
    assert cfg.e2e_epochs(4) == 4  # the budget: stages x epochs_per_stage, like E2E
    cfg = load_config(GREEDY, tiny + ["model.width=16", "mode=dgl", "trainer.max_epochs=1"])
    result = run(cfg)
    assert result.mode == "dgl" and result.depths == [1, 2, 3, 4]
    assert all(s.epochs == 1 and 0.0 <= s.test_acc <= 1.0 and s.val_acc is not None for s in result.stages)
    assert result.final_test_acc == result.last.test_acc
    assert (Path(result.run_dir) / "checkpoints" / "dgl" / "last.ckpt").is_file()


@pytest.mark.slow
def test_dgl_killed_mid_run_resumes_exactly(tiny, tmp_path, monkeypatch):
    """Manual optimization: four optimizers and their cosine schedulers must come back from the checkpoint."""
    extra = ["model.width=16", "mode=dgl", "trainer.max_epochs=2", "optim.schedule=cosine", "curriculum.max_stages=2"]
    expected = run(load_config(GREEDY, tiny + extra))

    def crash(self):
        if self.current_epoch == 1:
            raise RuntimeError("killed")

    run_dir = crash_in_fresh_dir(tiny, extra, tmp_path, monkeypatch, DecoupledModule, crash)
    result = run(resume_config(run_dir), resume=run_dir)
    assert stage_rows(result) == stage_rows(expected)
    ref, got = (torch.load(Path(r.run_dir) / "model.pt", weights_only=True) for r in (expected, result))
    assert all(torch.equal(ref[k], got[k]) for k in ref)


FINETUNE = ["model.width=16", "curriculum.max_stages=2", "curriculum.epochs_per_stage=1", "finetune.epochs=2",
            "finetune.lr=0.05", "finetune.stage_lr_gamma=0.5", "optim.schedule=cosine"]


@pytest.mark.slow
def test_greedy_then_finetune_trains_end_to_end_and_resumes_exactly(tiny, tmp_path, monkeypatch):
    cfg = load_config(GREEDY, tiny + FINETUNE)
    expected = run(cfg)
    ft = expected.finetune
    assert expected.depths == [1, 2] and ft.depth == 2 and ft.epochs == 2
    assert ft.test_acc_before == expected.last.test_acc
    assert ft.test_acc_after == expected.final_test_acc
    assert "fine-tuned end to end (2 epochs)" in stage_table(expected)
    stage2 = torch.load(Path(expected.run_dir) / "checkpoints" / "stage2" / "last.ckpt", weights_only=True)
    tuned = torch.load(Path(expected.run_dir) / "model.pt", weights_only=True)
    assert not torch.equal(stage2["state_dict"]["net.blocks.0.1.weight"], tuned["blocks.0.1.weight"]), \
        "fine-tuning must move block 1 (frozen after greedy stage 1)"
    # fine-tune optimizer: block k at 0.05 * 0.5^(K'-k), K' = 2 stages trained; the head at 0.05
    ckpt = torch.load(Path(expected.run_dir) / "checkpoints" / "finetune" / "last.ckpt", weights_only=True)
    assert [g["initial_lr"] for g in ckpt["optimizer_states"][0]["param_groups"]] == pytest.approx([0.025, 0.05, 0.05])

    # a kill during fine-tuning (after its first epoch's checkpoint) resumes to the same numbers and weights
    def crash(self):
        if self.through_aux and self.current_epoch == 1:
            raise RuntimeError("killed")

    run_dir = crash_in_fresh_dir(tiny, FINETUNE, tmp_path, monkeypatch, EndToEndModule, crash)
    assert json.loads((run_dir / "progress.json").read_text())["finished"]
    assert torch.load(run_dir / "checkpoints" / "finetune" / "last.ckpt", weights_only=True)["epoch"] == 0
    result = run(resume_config(run_dir), resume=run_dir)
    assert stage_rows(result) == stage_rows(expected)
    assert {k: v for k, v in vars(result.finetune).items() if k not in ("seconds", "depths")} == \
        {k: v for k, v in vars(ft).items() if k not in ("seconds", "depths")}
    ref = torch.load(run_dir / "model.pt", weights_only=True)
    assert all(torch.equal(ref[k], tuned[k]) for k in ref)


@pytest.mark.slow
def test_per_stage_epochs_and_weight_decay_apply(tiny):
    cfg = load_config(GREEDY, tiny + ["model.width=16", "curriculum.max_stages=2",
                                      "curriculum.stage_epochs=[1, 2, 3, 3]", f"optim.stage_weight_decay={DECAYS}"])
    assert cfg.e2e_epochs(4) == 9  # E2E's matching budget is the sum of the stages'
    result = run(cfg)
    assert [s.epochs for s in result.stages] == [1, 2]
    run_dir = Path(result.run_dir)
    for stage in (1, 2):
        ckpt = torch.load(run_dir / "checkpoints" / f"stage{stage}" / "last.ckpt", weights_only=True)
        assert ckpt["optimizer_states"][0]["param_groups"][0]["weight_decay"] == DECAYS[stage - 1]


def test_stage_dropout_acts_on_the_block_being_trained_only(tiny):
    cfg, dm, net = setup(tiny, "model.stage_dropout=[0.5, 0.5, 0.0, 0.0]")
    module = StageModule(net, 2, cfg.optim, dm.num_classes, max_epochs=1)  # trains block 2 on frozen block 1
    module.train()
    x = dm.preprocess(dm.train_set.x[:64], train=False)
    with torch.no_grad():
        prefix = [module.prefix(x) for _ in range(2)]
        trained = [module.block(prefix[0]) for _ in range(2)]
    assert torch.equal(prefix[0], prefix[1])  # block 1's dropout is off: it is frozen, in eval mode
    assert not torch.equal(trained[0], trained[1])  # block 2's is on while it trains
    assert (trained[0] == 0).float().mean() > 0.4  # about half of block 2's outputs dropped (ReLU adds zeros)
    module.eval()
    with torch.no_grad():
        assert torch.equal(module.block(prefix[0]), module.block(prefix[0]))  # and off when evaluating
    with pytest.raises(LwtError, match=r"model.stage_dropout has 2 entries but .* 4 blocks"):
        check_stage_lists(load_config(GREEDY, tiny + ["model.stage_dropout=[0.1, 0.1]"]), 4)
    with pytest.raises(LwtError, match=r"model.stage_dropout=\[1.0, 0.0, 0.0, 0.0\]: every entry must be in \[0, 1\)"):
        load_config(GREEDY, tiny + ["model.stage_dropout=[1.0, 0.0, 0.0, 0.0]"])
