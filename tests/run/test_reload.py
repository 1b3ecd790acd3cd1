"""A finished run comes back in Python: ``lwt.load_run`` (network + config) and Lightning's own
``load_from_checkpoint`` on a stage and an E2E checkpoint give the logits the run recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import lwt
from lwt.config import load_config
from lwt.errors import LwtError
from lwt.training.e2e import EndToEndModule
from lwt.training.stage import StageModule
from lwt.training.train import run

from conftest import EXPERIMENTS


@pytest.fixture(scope="module")
def finished(data_root, tmp_path_factory):
    """A tiny real greedy run (2 stages of 1 epoch) and a tiny E2E one, float32 so a reload is bit-exact."""
    out = tmp_path_factory.mktemp("reload") / "runs"
    common = [f"data.root={data_root}", "data.train_subset=512", "data.val_size=256", "data.test_subset=500",
              "logging.wandb=disabled", "trainer.progress_bar=false", f"logging.out_dir={out}", "model.width=16",
              "trainer.precision=32-true", "curriculum.max_stages=2", "curriculum.epochs_per_stage=1"]
    greedy = run(load_config(EXPERIMENTS / "cifar10" / "belilovsky_k2_greedy.yaml", common))
    e2e = run(load_config(EXPERIMENTS / "cifar10" / "belilovsky_k2_e2e.yaml", [*common, "trainer.max_epochs=1"]))
    return greedy, e2e


def held_out(loaded) -> tuple[torch.Tensor, torch.Tensor]:
    dm = loaded.datamodule()
    x, y = dm.test_set.x, dm.test_set.y
    return dm.preprocess(x, train=False), y


def accuracy(model, x, y) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


@pytest.mark.slow
def test_load_run_gives_the_network_and_config_that_reach_the_recorded_test_accuracy(finished):
    greedy, e2e = finished
    for result in (greedy, e2e):
        loaded = lwt.load_run(result.run_dir)
        assert loaded.cfg.mode == result.mode and loaded.cfg.model.width == 16 and loaded.result == result
        x, y = held_out(loaded)
        for row in result.stages:  # every trained depth, read out by the head trained for it
            assert accuracy(loaded.classifier(row.depth), x, y) == pytest.approx(row.test_acc, abs=1e-6)
        assert accuracy(loaded.classifier(), x, y) == pytest.approx(result.final_test_acc, abs=1e-6)
    with pytest.raises(LwtError, match="depth 3 was not trained"):
        loaded = lwt.load_run(greedy.run_dir)
        loaded.classifier(3)
    with pytest.raises(LwtError, match="holds no result.json"):
        lwt.load_run(Path(greedy.run_dir).parent)


@pytest.mark.slow
def test_lightning_load_from_checkpoint_rebuilds_a_stage_and_an_e2e_module(finished):
    greedy, e2e = finished
    loaded = lwt.load_run(greedy.run_dir)
    x, _ = held_out(loaded)
    stage = StageModule.load_from_checkpoint(Path(greedy.run_dir) / "checkpoints" / "stage2" / "last.ckpt")
    assert stage.stage == 2 and stage.hparams["num_classes"] == 10 and stage.optim_cfg == loaded.cfg.optim
    with torch.no_grad():
        assert torch.equal(stage.eval()(x), loaded.classifier()(x))  # the stage's readout = the final network
    loaded = lwt.load_run(e2e.run_dir)
    module = EndToEndModule.load_from_checkpoint(Path(e2e.run_dir) / "checkpoints" / "e2e" / "last.ckpt")
    with torch.no_grad():
        assert torch.equal(module.eval()(x), loaded.classifier()(x))
