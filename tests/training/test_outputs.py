"""What every run records beside its accuracies, on real tiny CIFAR-10 runs: per-image predictions whose
accuracies are the stage rows' exactly (lwt/training/predictions.py), training FLOPs (lwt/training/flops.py) and
where and how it computed (lwt/training/compute.py provenance)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lwt.config import load_config
from lwt.run.per_image import read_per_image
from lwt.training import StageModule
from lwt.training.compute import resolve_precision
from lwt.training.flops import step_flops
from lwt.training.train import run

from conftest import EXPERIMENTS, GREEDY, build_tiny

E2E = EXPERIMENTS / "cifar10" / "belilovsky_k2_e2e.yaml"
SMALL = ["model.width=16"]


def logged(correct: np.ndarray) -> float:
    """A run's accuracy as its metric logged it: the float32 of correct / n (torchmetrics divides in float32)."""
    return float(np.float32(correct.sum() / correct.size))


def assert_rows_match(per_image, rows, kind="pred") -> None:
    for row in rows:
        assert logged(per_image.correct("val", row.depth, kind)) == row.val_acc
        assert logged(per_image.correct("test", row.depth, kind)) == row.test_acc


def stage_batch(tiny, stage: int, *extra: str):
    """A greedy stage module of the tiny network and its first training batch (normalized images)."""
    cfg, dm, net = build_tiny(tiny, *extra, width=16)
    x, y = dm.train_set[range(cfg.data.batch_size)]
    return StageModule(net, stage, cfg.optim, dm.num_classes, 1), dm.preprocess(x, train=False), y, dm


@pytest.mark.slow
def test_greedy_run_records_provenance_flops_and_its_stages_per_image(tiny):
    cfg = load_config(GREEDY, tiny + SMALL + ["curriculum.max_stages=3", "curriculum.epochs_per_stage=1"])
    result = run(cfg)
    saved = json.loads((Path(result.run_dir) / "result.json").read_text())
    assert saved["precision"] == resolve_precision(cfg.trainer) in ("32-true", "bf16-mixed")
    assert saved["device"].startswith("cpu: ") and len(saved["device"]) > 5
    assert saved["cpu_isa"].split()[0] in ("AMX", "AVX-512-BF16", "AVX-512", "AVX2", "AVX")
    assert saved["torch_version"] == torch.__version__ and saved["threads"] == torch.get_num_threads()

    flops = [s["train_flops"] for s in saved["stages"]]
    assert all(f > 0 for f in flops) and saved["train_flops"] == sum(flops)
    # stage 2 trains on augmented images: the frozen prefix runs forward every step and is counted
    module, x, y, dm = stage_batch(tiny, 2)
    forward, total = step_flops(module, x, y)
    with torch.no_grad():
        features = module.net.features(x, 1)
    block_forward, block_total = step_flops(module, features, y, from_features=True)
    assert forward > block_forward and total - forward == block_total - block_forward  # the prefix: no backward
    assert flops[1] == total * len(dm.train_set) // len(x)  # one epoch of every training image

    per_image = read_per_image(result.run_dir)
    assert per_image.depths == [1, 2, 3]
    assert np.array_equal(per_image.val_labels, dm.val_set.y) and np.array_equal(per_image.test_labels, dm.test_set.y)
    assert np.array_equal(per_image.val_index, dm.val_index) and len(per_image.test_index) == 500
    assert_rows_match(per_image, result.stages)
    ensemble = per_image.accuracy("test", "ensemble_pred")
    assert [ensemble[row.depth] for row in result.stages] == [row.ensemble_test_acc for row in result.stages]


@pytest.mark.slow
def test_a_stage_trained_from_cached_features_counts_no_prefix(tiny):
    """data.augment=false: stage 2's training images are served as the prefix's cached output."""
    cfg = load_config(GREEDY, tiny + SMALL + ["curriculum.max_stages=2", "curriculum.epochs_per_stage=1",
                                              "data.augment=false", "analysis.per_layer=false"])
    result = run(cfg)
    module, x, y, dm = stage_batch(tiny, 2, "data.augment=false")
    with torch.no_grad():
        features = module.net.features(x, 1)
    _, block_total = step_flops(module, features, y, from_features=True)
    assert result.stages[1].train_flops == block_total * len(dm.train_set) // len(x)
    assert_rows_match(read_per_image(result.run_dir), result.stages)  # the ensemble's pass without per_layer
    assert read_per_image(result.run_dir).val_ensemble_pred is not None


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["e2e", "dgl"])
def test_e2e_and_dgl_record_every_depth_and_the_phase_flops(tiny, mode):
    path, extra = (E2E, []) if mode == "e2e" else (GREEDY, ["mode=dgl"])
    result = run(load_config(path, tiny + SMALL + extra + ["trainer.max_epochs=1"]))
    per_image = read_per_image(result.run_dir)
    assert per_image.depths == result.depths == [1, 2, 3, 4]
    assert_rows_match(per_image, result.stages)
    assert (per_image.test_ensemble_pred is not None) == (mode == "dgl")
    assert [row.train_flops for row in result.stages[:-1]] == [None] * 3  # one phase trained every depth
    assert result.train_flops == result.last.train_flops > 0


@pytest.mark.slow
def test_fine_tuned_network_has_its_own_rows(tiny):
    cfg = load_config(GREEDY, tiny + SMALL + ["curriculum.max_stages=2", "curriculum.epochs_per_stage=1",
                                              "finetune.epochs=1", "analysis.per_layer=false"])
    result = run(cfg)
    per_image = read_per_image(result.run_dir)
    assert per_image.depths == per_image.finetune_depths == [1, 2]
    assert_rows_match(per_image, result.stages)
    assert_rows_match(per_image, result.finetune.depths, kind="finetune")
    assert result.finetune.train_flops > 0
    assert result.train_flops == sum(row.train_flops for row in result.stages) + result.finetune.train_flops
