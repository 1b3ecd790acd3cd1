"""The frozen-prefix cache (lwt/training/prefix.py): a greedy stage trained from cached prefix features
computes what it computes from images, and a full run gives the same result either way."""

from __future__ import annotations

import pytest
import torch

from lwt.config import load_config
from lwt.errors import LwtError
from lwt.training import StageModule
from lwt.training.prefix import PrefixCache
from lwt.training.train import run

from conftest import GREEDY, build_tiny


@pytest.mark.slow
def test_cached_features_equal_the_prefix_and_give_the_same_stage_outputs(tiny):
    cfg, dm, net = build_tiny(tiny, "data.augment=false")
    stage = 3  # block 3 on top of frozen blocks 1-2
    # train the prefix a little first, so BN statistics are not the identity and eval mode matters
    net.train()
    with torch.no_grad():
        net.features(dm.preprocess(dm.train_set.x[:256], train=False), stage - 1)
    module = StageModule(net, stage, cfg.optim, dm.num_classes, max_epochs=1)
    cache = PrefixCache(dm, net, stage, cfg.trainer, augment=False)
    cache.setup("fit")
    assert cache.cached == ("val", "train", "test")

    x, y = dm.val_set[range(100)]
    images = dm.preprocess(x, train=False)
    module.eval()
    with torch.no_grad():
        expected = net.features(images, stage - 1)
        cached_x, cached_y = cache.sets["val"][range(100)]
        assert torch.equal(cached_y, y)
        torch.testing.assert_close(cached_x, expected, rtol=1e-5, atol=1e-5)
        from_images = module.readouts(images)[stage]
        from_cache = module.head(module.block(cached_x))
    torch.testing.assert_close(from_cache, from_images, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_incremental_cache_equals_the_cache_built_from_scratch(tiny):
    """Stage 3's features as block 2 over stage 2's cache, against blocks 1-2 over the images: equal, float32."""
    cfg, dm, net = build_tiny(tiny, "data.augment=false", width=16)
    net.train()
    with torch.no_grad():  # BN statistics that are not the identity, so eval mode matters
        net.features(dm.preprocess(dm.train_set.x[:256], train=False), 3)
    stage2 = PrefixCache(dm, net, 2, cfg.trainer, augment=False)
    stage2.setup("fit")
    carry = stage2.handoff()
    assert set(carry) == {"val", "train", "test"} and stage2.sets == {}
    incremental = PrefixCache(dm, net, 3, cfg.trainer, augment=False, carry=carry)
    scratch = PrefixCache(dm, net, 3, cfg.trainer, augment=False)
    for cache in (incremental, scratch):
        cache.setup("fit")
    assert incremental.cached == scratch.cached == ("val", "train", "test")
    for split in scratch.cached:
        assert torch.equal(incremental.sets[split].x, scratch.sets[split].x), split
        assert torch.equal(incremental.sets[split].y, scratch.sets[split].y)
    assert incremental.carry == {}  # the carried depth-2 features are dropped once used


@pytest.mark.slow
def test_bfloat16_cache_is_close_and_a_cache_that_does_not_fit_is_named(tiny):
    cfg, dm, net = build_tiny(tiny, "data.augment=false", "trainer.prefix_cache_dtype=bfloat16")
    cache = PrefixCache(dm, net, 2, cfg.trainer, augment=False)
    cache.setup("fit")
    assert cache.sets["train"].x.dtype == torch.bfloat16
    net.eval()
    exact = net.features(dm.preprocess(dm.train_set.x[:50], train=False), 1)
    torch.testing.assert_close(cache.sets["train"].x[:50].float(), exact.detach(), rtol=2e-2, atol=2e-2)

    # 1 MB: the val split of 256 images at 32x16x16 float32 (8 MB) does not fit
    cfg, dm, net = build_tiny(tiny, "trainer.prefix_cache=always", "trainer.prefix_cache_gb=0.001")
    with pytest.raises(LwtError, match=r"prefix cache of stage 2 \(val: 256 images.*prefix_cache_dtype=bfloat16"):
        PrefixCache(dm, net, 2, cfg.trainer, augment=True).setup("fit")
    cfg, dm, net = build_tiny(tiny, "trainer.prefix_cache_gb=0.001")  # auto: recompute instead, with a note
    cache = PrefixCache(dm, net, 2, cfg.trainer, augment=True)
    cache.setup("fit")
    assert cache.cached == ()


@pytest.mark.slow
def test_greedy_run_with_cached_prefix_matches_recomputed_prefix(tiny):
    """A deterministic pipeline (no augmentation): the cache changes where the prefix runs, not the result."""
    results, nets = {}, {}
    for mode in ("always", "never"):
        overrides = [*tiny, "model.width=32", "curriculum.max_stages=2", "curriculum.epochs_per_stage=2",
                     "data.augment=false", f"trainer.prefix_cache={mode}", f"run_name=cache-{mode}"]
        results[mode] = run(load_config(GREEDY, overrides))
        nets[mode] = torch.load(f"{results[mode].run_dir}/model.pt", weights_only=True)
    for key, value in nets["never"].items():
        torch.testing.assert_close(nets["always"][key], value, rtol=1e-4, atol=1e-5, msg=lambda m, k=key: f"{k}: {m}")
    for on, off in zip(results["always"].stages, results["never"].stages):
        assert on.val_acc == pytest.approx(off.val_acc, abs=1 / 256)
        assert on.test_acc == pytest.approx(off.test_acc, abs=2 / 500)
    assert results["always"].stages[1].test_acc > 0.15  # and it learned: chance is 0.1 (SE 0.013 on 500)
