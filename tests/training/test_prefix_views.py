"""Augmented training from cached views (trainer.prefix_views, lwt/training/prefix.py): the cached features
of a view are the frozen prefix on exactly those augmented images, carried views equal views built afresh, an
epoch reads its view, the frozen blocks never move, and a run with views reproduces and resumes exactly."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from lwt.config import load_config
from lwt.data.augment import normalize
from lwt.training import StageModule
from lwt.training.prefix import VIEW_CHUNK, PrefixCache, Views, view_images, view_seed, views_pay
from lwt.training.train import train

from conftest import GREEDY, build_tiny, lwt_error

VIEWS = ["trainer.prefix_views=2"]


def shaken(dm, net, depth: int) -> None:
    """BN statistics that are not the identity, so that eval mode matters."""
    net.train()
    with torch.no_grad():
        net.features(dm.preprocess(dm.train_set.x[:256], train=False), depth)


@pytest.mark.slow
def test_view_features_are_the_prefix_on_those_augmented_images_and_carry_exactly(tiny):
    cfg, dm, net = build_tiny(tiny, *VIEWS, width=16)
    shaken(dm, net, 3)
    assert not views_pay(net, 2, 2, 15, dm.input_shape)  # block 1 is a thin convolution: not worth a cache
    assert views_pay(net, 3, 2, 15, dm.input_shape) and not views_pay(net, 3, 2, 2, dm.input_shape)
    stage3 = PrefixCache(dm, net, 3, cfg.trainer, augment=True, epochs=15, seed=cfg.seed)
    stage3.setup("fit")
    assert stage3.cached == ("val", "train", "test") and isinstance(stage3.sets["train"], Views)
    views = stage3.sets["train"]
    assert views.x.shape[:2] == (2, len(dm.train_set)) and views.x.dtype == torch.float32

    batch = cfg.data.eval_batch_size
    net.eval()
    for v in range(2):  # the views, drawn here independently: dm.augment under the view's seed, in fixed chunks
        torch.manual_seed(view_seed(cfg.seed, v))
        images = torch.cat([dm.augment(c) for c in dm.train_set.x.split(VIEW_CHUNK)])
        assert torch.equal(images, view_images(dm, cfg.seed, v))
        assert not torch.equal(images, dm.train_set.x)  # augmented
        with torch.no_grad():  # in the layout the caches use (the val images'): conv rounding follows the layout
            expected = torch.cat([net.features(normalize(x.contiguous(), dm.mean, dm.std), 2)
                                  for x in images.split(batch)])
        assert torch.equal(views.x[v], expected), v  # float32: exactly the frozen prefix's output
    assert not torch.equal(views.x[0], views.x[1])

    # epoch e reads view e mod 2
    idx = torch.arange(5)
    for epoch in range(4):
        views.epoch = lambda e=epoch: e
        x, y = views[idx]
        assert torch.equal(x, views.x[epoch % 2][:5]) and torch.equal(y, dm.train_set.y[:5])

    # stage 4 from stage 3's views (block 3 alone) equals stage 4 from the images (a resume without a carry)
    carried = PrefixCache(dm, net, 4, cfg.trainer, augment=True, carry=stage3.handoff(), epochs=15, seed=cfg.seed)
    scratch = PrefixCache(dm, net, 4, cfg.trainer, augment=True, epochs=15, seed=cfg.seed)
    for cache in (carried, scratch):
        cache.setup("fit")
    assert carried.carried_from == 3 and scratch.carried_from is None
    for split in ("val", "train", "test"):
        assert torch.equal(carried.sets[split].x, scratch.sets[split].x), split
    assert carried.carry == {}


@pytest.mark.slow
def test_views_spilled_to_the_run_folder_match_and_their_file_goes(tiny, tmp_path):
    cfg, dm, net = build_tiny(tiny, *VIEWS, "trainer.prefix_cache_gb=0.015", "trainer.prefix_cache_dtype=bfloat16",
                              width=16)
    shaken(dm, net, 3)
    memory = PrefixCache(dm, net, 3, cfg.trainer.model_copy(update={"prefix_cache_gb": None}), augment=True, seed=1)
    memory.setup("fit")
    stale = tmp_path / "prefix_views.stage2.rank0.npy"  # left by a killed attempt
    stale.write_bytes(b"x")
    spilled = PrefixCache(dm, net, 3, cfg.trainer, augment=True, seed=1, spill_dir=tmp_path)
    spilled.setup("fit")
    assert memory.place == "device" and spilled.place == "disk"
    assert spilled.sets["train"].x.dtype == torch.bfloat16
    assert torch.equal(spilled.sets["train"].x, memory.sets["train"].x)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prefix_views.stage3.rank0.npy"]
    stage4 = PrefixCache(dm, net, 4, cfg.trainer, augment=True, carry=spilled.handoff(), seed=1, spill_dir=tmp_path)
    stage4.setup("fit")
    assert stage4.carried_from == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prefix_views.stage4.rank0.npy"]  # stage 3's went
    stage4.release()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_stage_on_views_trains_only_its_block_and_head(tiny):
    cfg, dm, net = build_tiny(tiny, *VIEWS, "curriculum.epochs_per_stage=3", width=16)
    shaken(dm, net, 3)
    stage = 3
    cache = PrefixCache(dm, net, stage, cfg.trainer, augment=True, epochs=3, seed=cfg.seed)
    module = StageModule(net, stage, cfg.optim, dm.num_classes, max_epochs=3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    seen: list[torch.Tensor] = []

    class Batches(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(batch[0][:1].clone())  # the first feature map of each batch, as the step got it

    L.Trainer(max_epochs=3, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
              enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
              callbacks=[Batches()]).fit(module, datamodule=cache)
    views, per_epoch = cache.sets["train"], len(seen) // 3
    for epoch in range(3):  # every batch of epoch e is a row of view e mod 2
        first = seen[epoch * per_epoch]
        assert any(torch.equal(first[0], row) for row in views.x[epoch % 2]), epoch
        assert not any(torch.equal(first[0], row) for row in views.x[(epoch + 1) % 2]), epoch
    owned = (f"blocks.{stage - 1}.", f"aux_heads.{stage - 1}.")
    changed = {k for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith(owned) for k in changed), changed  # the prefix is bit-identical


@pytest.mark.slow
def test_a_run_with_views_reproduces_and_a_redone_stage_equals_its_first_training(tiny, tmp_path):
    """Same seed, same numbers; stage 4 retrained after a resume (its views built from the images, not
    carried from stage 3) gives the weights the uninterrupted run gave; no spill file stays behind."""
    args = tiny + [*VIEWS, "model.width=16", "curriculum.epochs_per_stage=3", "analysis.per_layer=false",
                   "trainer.prefix_cache_gb=0.03"]  # views past the budget: spilled to the run folder
    results = []
    for name in ("a", "b"):
        cfg = load_config(GREEDY, [*args, f"run_name={name}"])
        result, net = train(cfg)
        results.append((result, {k: v.clone() for k, v in net.state_dict().items()}))
    (a, weights_a), (b, weights_b) = results
    assert [(s.val_acc, s.test_acc, s.train_acc) for s in a.stages] == [(s.val_acc, s.test_acc, s.train_acc)
                                                                         for s in b.stages]
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    run_dir = a.run_dir
    assert not list(tmp_path.rglob("prefix_views*"))

    cfg = load_config(GREEDY, [*args, "run_name=a"])
    redone, net = train(cfg, resume=run_dir, redo_stage=4)
    assert [s.val_acc for s in redone.stages] == [s.val_acc for s in a.stages]
    assert all(torch.equal(v, weights_a[k]) for k, v in net.state_dict().items())
    assert not list(tmp_path.rglob("prefix_views*"))


@pytest.mark.parametrize("override, fragment", [
    (["trainer.prefix_views=0"], "trainer.prefix_views"),
    (["trainer.prefix_views=2", "data.augment=false"], "data.augment=false"),
    (["trainer.prefix_views=2", "trainer.prefix_cache=never"], "trainer.prefix_cache=never"),
])
def test_prefix_views_that_cannot_apply_are_named(override, fragment, tiny, capsys):
    error = lwt_error(capsys, ["train", GREEDY, *tiny, *override])
    assert fragment in error


def test_prefix_views_in_e2e_is_named(tiny, capsys):
    error = lwt_error(capsys, ["train", GREEDY.with_name("belilovsky_k2_e2e.yaml"), *tiny, "trainer.prefix_views=2"])
    assert "mode=e2e has no frozen prefix" in error
