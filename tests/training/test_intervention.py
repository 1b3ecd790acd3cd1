"""The intervention (curriculum.init_from / init_blocks): greedy training that starts on another run's
blocks 1..j, frozen. Real tiny runs: the copied blocks are bit-identical to the source's, the copied depths
read out exactly as they did in the source run, and only the stages after j train."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lwt.config import load_config
from lwt.errors import LwtError
from lwt.run.load import load_run
from lwt.training.train import run

from conftest import EXPERIMENTS, GREEDY

E2E = EXPERIMENTS / "cifar10" / "belilovsky_k2_e2e.yaml"


@pytest.fixture(scope="module")
def e2e_run(data_root, tmp_path_factory) -> Path:
    """A finished tiny E2E run (seed 1) to start greedy runs from."""
    out = tmp_path_factory.mktemp("source")
    result = run(load_config(E2E, [f"data.root={data_root}", "data.train_subset=512", "data.val_size=256",
                                   "data.test_subset=500", "model.width=8", "trainer.max_epochs=1", "seed=1",
                                   "logging.wandb=disabled", "trainer.progress_bar=false",
                                   f"logging.out_dir={out}", "run_name=e2e_seed1"]))
    return Path(result.run_dir)


def greedy(tiny, source: str, *extra: str):
    return load_config(GREEDY, tiny + ["model.width=8", "seed=1", "curriculum.epochs_per_stage=1",
                                       "curriculum.max_stages=3", f"curriculum.init_from={source}",
                                       "curriculum.init_blocks=2", *extra])


@pytest.mark.slow
def test_greedy_from_e2e_blocks_keeps_them_and_trains_only_the_rest(tiny, e2e_run):
    source = load_run(e2e_run)
    # {seed}: a sweep names one folder pattern and each seed starts from its own source run
    cfg = greedy(tiny, str(e2e_run).replace("seed1", "seed{seed}"))
    result = run(cfg)
    assert [(s.depth, s.epochs, s.stop_reason) for s in result.stages] == [
        (1, 0, "init_from"), (2, 0, "init_from"), (3, 1, "budget")]
    # the copied depths read out exactly as in the source run: same blocks, same heads, same test images
    assert [s.test_acc for s in result.stages[:2]] == [s.test_acc for s in source.result.stages[:2]]
    trained = load_run(result.run_dir).net.state_dict()
    theirs = source.net.state_dict()
    copied = [k for k in theirs if k.startswith(("blocks.0.", "blocks.1.", "aux_heads.0.", "aux_heads.1."))]
    assert any("running_mean" in k for k in copied)
    for key in copied:
        assert torch.equal(trained[key], theirs[key]), f"{key} moved although it was copied and frozen"
    assert any(not torch.equal(trained[k], theirs[k]) for k in theirs if k.startswith("blocks.2."))  # stage 3 trained
    # the critical-layer rule saw the copied stages (stage 3 must beat them) without ending on them
    assert [h["stage"] for h in result.critical["history"]] == [1, 2, 3]


@pytest.mark.slow
def test_a_wrong_intervention_is_one_message_before_any_run_folder(tiny, e2e_run, tmp_path):
    out = Path(tiny[-1].partition("=")[2])
    with pytest.raises(LwtError, match="model.width=8 .this run: 16."):
        run(greedy(tiny, str(e2e_run), "model.width=16"))
    with pytest.raises(LwtError, match="not found"):
        run(greedy(tiny, str(tmp_path / "nowhere")))
    with pytest.raises(LwtError, match="init_blocks=3 leaves no stage to train.*valid: 1 to 2"):
        run(greedy(tiny, str(e2e_run), "curriculum.init_blocks=3"))
    assert not out.exists()  # nothing was made
    with pytest.raises(LwtError, match="init_from and curriculum.init_blocks go together"):
        load_config(GREEDY, tiny + ["curriculum.init_blocks=2"])
    assert load_config(E2E, tiny + [f"curriculum.init_from={e2e_run}", "curriculum.init_blocks=1"])  # swap test


@pytest.mark.slow
def test_swap_test_trains_e2e_above_another_runs_frozen_blocks(tiny, e2e_run):
    """mode=e2e with init_from: blocks 1..j (weights and BN statistics) stay the source's, the rest trains end to
    end, and the copied depths read out as in the source run."""
    source = load_run(e2e_run)
    cfg = load_config(E2E, tiny + ["model.width=8", "seed=1", "trainer.max_epochs=1",
                                   f"curriculum.init_from={e2e_run}", "curriculum.init_blocks=2"])
    result = run(cfg)
    trained, theirs = load_run(result.run_dir).net.state_dict(), source.net.state_dict()
    frozen = [k for k in theirs if k.startswith(("blocks.0.", "blocks.1.", "aux_heads.0.", "aux_heads.1."))]
    assert any("running_mean" in k for k in frozen)
    for key in frozen:
        assert torch.equal(trained[key], theirs[key]), f"{key} moved although it was copied and frozen"
    above = [k for k in theirs if k.startswith(("blocks.2.", "blocks.3.", "classifier."))]
    assert above and all(not torch.equal(trained[k], theirs[k]) for k in above if "num_batches" not in k)
    assert [s.test_acc for s in result.stages[:2]] == [s.test_acc for s in source.result.stages[:2]]


def test_init_from_is_refused_for_dgl_and_with_per_block_rules_in_e2e(tiny):
    with pytest.raises(LwtError, match="mode=dgl does not take it"):
        load_config(GREEDY, tiny + ["mode=dgl", "curriculum.init_from=x", "curriculum.init_blocks=1"])
    with pytest.raises(LwtError, match="copied blocks are frozen"):
        load_config(E2E, tiny + ["curriculum.init_from=x", "curriculum.init_blocks=1", "optim.stage_lr_gamma=0.5"])
