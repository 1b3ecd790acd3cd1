"""The swap test's sweep file (experiments/sweeps/swap.yaml, claim C3) on real tiny CIFAR-10 runs: its sources
are C2's own networks (early_overfitting.yaml's every-stage cell at 1,000 images, k = 2), and its arms train end
to end on their frozen blocks 1..j."""

from __future__ import annotations

import pytest
import torch

from lwt.cli import main
from lwt.run.load import load_run
from lwt.sweep import load_sweep

from conftest import EXPERIMENTS

SWAP = EXPERIMENTS / "sweeps" / "swap.yaml"
SOURCES = EXPERIMENTS / "sweeps" / "early_overfitting.yaml"
SOURCE_DIR = "runs/sweeps/early_overfitting_all_stages_cpu/{}/train_subset-1000_k-2_seed{{seed}}"
SHRINK = ["model.widths=[8,8,16,16]", "curriculum.epochs_per_stage=1", "trainer.max_epochs=1",
          "trainer.extra=null", "analysis.per_layer=false"]


def test_the_cpu_arms_pair_both_sources_at_every_dose():
    """18 runs: both sources x j = 1, 2, 3 x seeds 0-2, each E2E for the same 40 epochs on the same network,
    named as experiments/claims.yaml's C3 expects, each reading the source run of its own seed."""
    runs = load_sweep(SWAP, "cpu").runs
    assert len(runs) == 18
    cells = {(r.experiment, r.cfg.curriculum.init_blocks, r.cfg.seed) for r in runs}
    assert cells == {(f"simple_cnn_swap_from_{s}{j}", j, seed) for s in ("e2e", "greedy") for j in (1, 2, 3)
                     for seed in (0, 1, 2)}
    assert {(r.cfg.mode, r.cfg.e2e_epochs(8), r.cfg.optim.lr, repr(r.cfg.model)) for r in runs} == {
        ("e2e", 40, 0.02, repr(runs[0].cfg.model))}
    for r in runs:
        source = "simple_cnn_e2e" if "from_e2e" in r.experiment else "simple_cnn_greedy"
        assert r.cfg.curriculum.init_from == SOURCE_DIR.format(source)
    sources = [r for r in load_sweep(SOURCES, "cpu").runs
               if r.cfg.data.train_subset == 1000 and r.cfg.model.aux.k == 2]
    assert sorted(r.id for r in sources) == sorted(f"{e}/train_subset-1000_k-2_seed{s}"
                                                   for e in ("simple_cnn_e2e", "simple_cnn_greedy") for s in (0, 1, 2))
    for source in sources:  # what the arms train on: every stage, the arms' network, E2E's budget
        assert source.cfg.curriculum.critical_patience is None
        assert repr(source.cfg.model) == repr(runs[0].cfg.model)  # init_from requires the same network
    greedy = next(r.cfg for r in sources if r.cfg.mode == "greedy")
    assert greedy.curriculum.epochs_per_stage == 15 and greedy.optim.lr == 0.1
    e2e = next(r.cfg for r in sources if r.cfg.mode == "e2e")
    assert (e2e.e2e_epochs(8), e2e.optim.lr) == (40, 0.02)


@pytest.mark.slow
def test_sources_then_arms_train_on_the_sources_frozen_blocks(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the arms name their sources as runs/sweeps/early_overfitting_... from here
    shrunk = [o for o in tiny if not o.startswith("logging.out_dir")] + ["logging.out_dir=runs", *SHRINK]
    axis_free = [o for o in shrunk if not o.startswith("data.train_subset")]  # an axis of the source sweep
    assert main(["sweep", str(SOURCES), *axis_free, "--variant", "cpu", "--workers", "1", "--archive", "none",
                 "--select", "data.train_subset=1000", "model.aux.k=2", "seed=0"]) == 0
    for arm in ("simple_cnn_swap_from_greedy2", "simple_cnn_swap_from_e2e2"):
        assert main(["sweep", str(SWAP), *shrunk, "--variant", "cpu", "--workers", "1",
                     "--select", f"experiment={arm}", "seed=0"]) == 0
    capsys.readouterr()
    for arm, source in (("greedy", "simple_cnn_greedy"), ("e2e", "simple_cnn_e2e")):
        run = load_run(tmp_path / "runs" / "sweeps" / "swap_cpu" / f"simple_cnn_swap_from_{arm}2" / "seed0")
        src = load_run(tmp_path / SOURCE_DIR.format(source).format(seed=0))
        ours, theirs = run.net.state_dict(), src.net.state_dict()
        for key, value in theirs.items():
            if key.startswith(("blocks.0.", "blocks.1.", "aux_heads.0.", "aux_heads.1.")):
                assert torch.equal(ours[key], value), key  # frozen: weights and BN statistics
        assert not torch.equal(ours["blocks.2.0.weight"], theirs["blocks.2.0.weight"])  # block 3 trained
        assert run.result.mode == "e2e" and run.cfg.curriculum.init_blocks == 2
        assert [r.depth for r in run.result.stages] == [1, 2, 3, 4]
