"""`lwt bench` measures the right things; its numbers are for the benchmark, never asserted here."""

from __future__ import annotations

import torch

from lwt.bench import greedy
from lwt.bench.common import Clock, Size
from lwt.cli import main

from conftest import build_tiny


def test_naive_reference_loop_trains_only_the_stage(tiny):
    """The naive loop is slow on purpose (per-image transforms, autograd through the prefix) but must be a
    correct greedy stage, or comparing with it would mean nothing: the prefix stays bit-identical."""
    _, dm, net = build_tiny(tiny)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    speed = greedy.naive_loop(net, dm, Size(warmup=1, steps=2), torch.device("cpu"))
    after = net.state_dict()
    stage = (f"blocks.{greedy.STAGE}.", f"aux_heads.{greedy.STAGE}.")
    for key, value in before.items():
        if not key.startswith(stage):
            assert torch.equal(value, after[key]), f"{key} changed in the naive loop"
    conv = next(k for k in before if k.startswith(f"blocks.{greedy.STAGE}.") and k.endswith(".weight"))
    assert not torch.equal(before[conv], after[conv])
    assert speed > 0


def test_clock_times_the_steps_after_the_warmup():
    clock = Clock(warmup=2, device=torch.device("cpu"))
    clock.marks = [(0.0, 128), (5.0, 128), (10.0, 128), (11.0, 128), (12.0, 64)]
    # timed from the end of the 3rd step (t=10) to the end of the 5th: 128 + 64 images in 2 s
    assert clock.images_per_s() == 96.0


def test_unknown_section_is_named(capsys):
    assert main(["bench", "--sections", "greedy,speed"]) == 2
    assert "--sections: unknown speed; choose from greedy, e2e, memory, floor" in capsys.readouterr().err


def test_floor_loop_trains_only_block_and_head(tiny):
    """The floor is block k + head k alone on pre-made feature batches: nothing else may move."""
    from lwt.bench import floor
    from lwt.training import StageModule
    from lwt.training.prefix import prefix_features

    cfg, dm, net = build_tiny(tiny)
    feats = prefix_features(net, greedy.STAGE, dm.train_set, lambda x: dm.preprocess(x, train=False),
                            torch.device("cpu"), torch.float32, 256)
    batches = [feats[range(i, i + 128)] for i in (0, 128, 256)]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    module = StageModule(net, greedy.STAGE, cfg.optim, dm.num_classes, 1)
    assert floor.floor_loop(module, batches, Size(floor_warmup=1), torch.device("cpu")) > 0
    stage = (f"blocks.{greedy.STAGE}.", f"aux_heads.{greedy.STAGE}.")
    changed = {k for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith(stage) for k in changed), changed


def test_whole_stage_rows_compare_the_same_work(tiny):
    """Incremental and recomputed caches of the last stage hold the same features (so the before/after
    row times equal work), and a stage's seconds are its parts."""
    from lwt.bench import floor
    from lwt.training.prefix import prefix_features

    cfg, dm, net = build_tiny(tiny, "trainer.prefix_cache_dtype=float32")
    last, cpu = net.num_blocks - 1, torch.device("cpu")
    carry = {s: prefix_features(net, last - 1, getattr(dm, f"{s}_set"), lambda x: dm.preprocess(x, train=False),
                                cpu, torch.float32, 256) for s in floor.EVAL_SPLITS}
    inc, inc_cache = floor.whole_stage(cfg, net, dm, last, carry, cpu)
    rec, rec_cache = floor.whole_stage(cfg, net, dm, last, None, cpu)
    for split in floor.EVAL_SPLITS:
        assert torch.equal(inc_cache.sets[split].x, rec_cache.sets[split].x)
    for row in (inc, rec):
        assert row["eval_s"] == row["build_s"] + row["val_s"] + row["test_s"]
        assert row["stage_s"] >= row["train_s"] + row["eval_s"] > 0
