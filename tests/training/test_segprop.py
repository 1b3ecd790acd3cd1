"""The SegProp-style greedy stage (curriculum.stage_head=network, lwt/training/segprop.py) on real tiny CIFAR-10
runs: what each stage trains and what it leaves frozen, that the classifier is its head, and a whole curriculum."""

from __future__ import annotations

import pytest
import torch

from lwt.config import load_config
from lwt.errors import LwtError
from lwt.training.segprop import SegPropStage, check
from lwt.training.stage import StageModule
from lwt.training.train import run

from conftest import EXPERIMENTS, build_tiny, crash_in_fresh_dir, lwt_error

SIMPLE = EXPERIMENTS / "cifar10" / "simple_cnn_greedy.yaml"
NARROW = ["model.widths=[8,8,16,16]", "curriculum.stage_head=network", "curriculum.epochs_per_stage=1"]


def snapshot(net) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def changed(before: dict, net) -> set[str]:
    """The modules (``blocks.i``, ``aux_heads.i``, ``classifier``) whose weights or BN statistics moved."""
    after = net.state_dict()
    moved = {k for k, v in before.items() if not torch.equal(v, after[k])}
    return {".".join(k.split(".")[:2]) if k.startswith(("blocks", "aux_heads")) else k.split(".")[0] for k in moved}


def test_stage_trains_its_block_the_upper_layers_and_its_aux_head_only(tiny):
    """Stage 2 of 4: block 2, blocks 3-4 and the classifier train on the classifier's loss, aux head 2 on its
    detached input; block 1 (the prefix) and the other aux heads do not move, not even their BN statistics."""
    import lightning as L

    cfg, dm, net = build_tiny(tiny, *NARROW, path=SIMPLE, width=8)
    module = SegPropStage(net, 2, cfg.optim, dm.num_classes, 1)
    before = snapshot(net)
    L.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=0, logger=False, enable_checkpointing=False,
              enable_progress_bar=False, enable_model_summary=False).fit(module, datamodule=dm)
    assert changed(before, net) == {"blocks.1", "blocks.2", "blocks.3", "classifier", "aux_heads.1"}
    # every parameter of those modules, and no other, is in one optimizer group
    (opt,) = [module.configure_optimizers()["optimizer"]]
    grouped = {id(p) for g in opt.param_groups for p in g["params"]}
    trained = [*net.blocks[1:], net.classifier, net.aux_heads[1]]
    assert grouped == {id(p) for m in trained for p in m.parameters()}


def test_the_stage_reads_out_through_the_classifier(tiny):
    """The stage's one readout (its row, its validation accuracy) is the whole network's output; the
    auxiliary head's logits are kept beside it, on a detached input."""
    cfg, dm, net = build_tiny(tiny, *NARROW, path=SIMPLE, width=8)
    x = dm.preprocess(dm.train_set[range(16)][0], train=False)  # (16, 3, 32, 32) float, normalized
    module = SegPropStage(net, 2, cfg.optim, dm.num_classes, 1).eval()
    with torch.no_grad():
        (depth, logits), = module.readouts(x).items()
        assert depth == 2
        assert torch.allclose(logits, net.eval()(x), atol=1e-5)  # blocks 1..4, then the classifier
    assert module._aux_logits.shape == logits.shape
    plain = StageModule(net, 2, cfg.optim, dm.num_classes, 1)
    assert not torch.allclose(plain.readouts(x)[2], logits)  # greedy's stage reads its aux head instead


@pytest.mark.slow
def test_a_curriculum_trains_and_its_last_stage_is_the_network(tiny):
    cfg = load_config(SIMPLE, tiny + NARROW)
    result = run(cfg)
    assert [r.depth for r in result.stages] == [1, 2, 3, 4]
    assert all(r.epochs == 1 and r.train_flops > 0 for r in result.stages)
    # stage 1 trains all four blocks and the classifier, stage 4 one block and the classifier
    assert result.stages[0].train_flops > result.stages[3].train_flops
    assert result.final_test_acc == result.stages[-1].test_acc > 0.1  # above chance after 4 epochs of 512 images


def test_refused_outside_greedy_and_with_finetune(tiny, capsys):
    line = lwt_error(capsys, ["train", str(EXPERIMENTS / "cifar10" / "simple_cnn_e2e.yaml"), *tiny,
                              "curriculum.stage_head=network"])
    assert "curriculum.stage_head=network" in line and "mode=greedy" in line
    line = lwt_error(capsys, ["train", str(SIMPLE), *tiny, *NARROW, "finetune.epochs=1"])
    assert "finetune.epochs=1" in line and "stage_head=network" in line
    assert not list((tiny_out(tiny)).rglob("*"))  # refused before any run folder
    with pytest.raises(LwtError, match="mode=dgl"):
        check(load_config(SIMPLE, tiny + ["mode=dgl", "curriculum.stage_head=network"]))
    check(load_config(SIMPLE, tiny + NARROW))  # greedy: accepted


def tiny_out(tiny: list[str]):
    from pathlib import Path

    return Path(next(o for o in tiny if o.startswith("logging.out_dir=")).partition("=")[2])


@pytest.mark.slow
def test_killed_mid_stage_resumes_exactly(tiny, tmp_path, monkeypatch):
    """A kill in stage 2 (Belilovsky's k=2 net): the upper layers, the classifier, the aux head and their optimizer
    state come back from the stage's checkpoint, so the resumed run equals an uninterrupted one bit for bit."""
    from pathlib import Path

    from lwt.training.resume import resume_config

    from conftest import GREEDY

    extra = ["model.width=16", "curriculum.stage_head=network", "curriculum.epochs_per_stage=2",
             "curriculum.max_stages=2", "optim.schedule=cosine"]
    expected = run(load_config(GREEDY, tiny + extra))

    def crash(self):
        if self.stage == 2 and self.current_epoch == 1:
            raise RuntimeError("killed")

    run_dir = crash_in_fresh_dir(tiny, extra, tmp_path, monkeypatch, SegPropStage, crash)
    result = run(resume_config(run_dir), resume=run_dir)
    assert [(r.val_acc, r.test_acc, r.epochs) for r in result.stages] == \
        [(r.val_acc, r.test_acc, r.epochs) for r in expected.stages]
    ref, got = (torch.load(Path(r.run_dir) / "model.pt", weights_only=True) for r in (expected, result))
    assert all(torch.equal(ref[k], got[k]) for k in ref)
