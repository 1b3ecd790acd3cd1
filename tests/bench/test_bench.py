"""`lwt bench` measures the right things; its numbers are for the benchmark, never asserted here."""

from __future__ import annotations

import pytest
import torch

from lwt.bench import greedy
from lwt.bench.common import Clock, Size
from lwt.cli import main

from conftest import build_tiny


@pytest.mark.slow
def test_naive_reference_loop_trains_only_the_stage(tiny):
    """The naive loop is slow on purpose (per-image transforms, autograd through the prefix) but must be a
    correct greedy stage, or comparing with it would mean nothing: the prefix stays bit-identical."""
    _, dm, net = build_tiny(tiny)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    speed = greedy.naive_loop(net, dm, Size(warmup=1, steps=2), torch.device("cpu"))
    after = net.state_dict()
    stage = (f"blocks.{greedy.STAGE - 1}.", f"aux_heads.{greedy.STAGE - 1}.")
    for key, value in before.items():
        if not key.startswith(stage):
            assert torch.equal(value, after[key]), f"{key} changed in the naive loop"
    conv = next(k for k in before if k.startswith(f"blocks.{greedy.STAGE - 1}.") and k.endswith(".weight"))
    assert not torch.equal(before[conv], after[conv])
    assert speed > 0


def test_clock_times_the_steps_after_the_warmup():
    clock = Clock(warmup=2, device=torch.device("cpu"))
    clock.marks = [(0.0, 128), (5.0, 128), (10.0, 128), (11.0, 128), (12.0, 64)]
    # timed from the end of the 3rd step (t=10) to the end of the 5th: 128 + 64 images in 2 s
    assert clock.images_per_s() == 96.0


def test_unknown_section_is_named(capsys):
    assert main(["bench", "--sections", "greedy,speed"]) == 2
    assert "--sections: unknown speed; choose from greedy, e2e, memory, floor, views, cpu" in capsys.readouterr().err


@pytest.mark.slow
def test_floor_loop_trains_only_block_and_head(tiny):
    """The floor is block k + head k alone on pre-made feature batches: nothing else may move."""
    from lwt.bench import floor
    from lwt.training import StageModule
    from lwt.training.prefix import prefix_features

    cfg, dm, net = build_tiny(tiny)
    feats = prefix_features(net, greedy.STAGE - 1, dm.train_set, lambda x: dm.preprocess(x, train=False),
                            torch.device("cpu"), torch.float32, 256)
    batches = [feats[range(i, i + 128)] for i in (0, 128, 256)]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    module = StageModule(net, greedy.STAGE, cfg.optim, dm.num_classes, 1)
    assert floor.floor_loop(module, batches, Size(floor_warmup=1), torch.device("cpu")) > 0
    stage = (f"blocks.{greedy.STAGE - 1}.", f"aux_heads.{greedy.STAGE - 1}.")
    changed = {k for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith(stage) for k in changed), changed


@pytest.mark.slow
def test_whole_stage_rows_compare_the_same_work(tiny):
    """Incremental and recomputed caches of the last stage hold the same features (so the before/after
    row times equal work), and a stage's seconds are its parts."""
    from lwt.bench import floor
    from lwt.training.prefix import prefix_features

    cfg, dm, net = build_tiny(tiny, "trainer.prefix_cache_dtype=float32")
    last, cpu = net.num_blocks, torch.device("cpu")  # the last stage; stage last-1's cache: last-2 blocks
    carry = {s: prefix_features(net, last - 2, getattr(dm, f"{s}_set"), lambda x: dm.preprocess(x, train=False),
                                cpu, torch.float32, 256) for s in floor.EVAL_SPLITS}
    inc, inc_cache = floor.whole_stage(cfg, net, dm, last, carry, cpu)
    rec, rec_cache = floor.whole_stage(cfg, net, dm, last, None, cpu)
    for split in floor.EVAL_SPLITS:
        assert torch.equal(inc_cache.sets[split].x, rec_cache.sets[split].x)
    for row in (inc, rec):
        assert row["eval_s"] == row["build_s"] + row["val_s"] + row["test_s"]
        assert row["stage_s"] >= row["train_s"] + row["eval_s"] > 0


@pytest.mark.slow
def test_gpu_protocol_script_runs_from_the_source_tree_without_wandb(data_root, tmp_path):
    """scripts/gpu_belilovsky_k2.sh on the CPU with a tiny budget, where importing wandb fails (as on a GPU
    machine without it): the protocol's 4 stages train and their images/s and the wall time are printed."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    blocker = tmp_path / "no_wandb" / "wandb"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('wandb is not installed here')\n")
    script = Path(__file__).resolve().parents[2] / "scripts" / "gpu_belilovsky_k2.sh"
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(blocker.parent), "LWT_OUT": str(tmp_path / "runs")}
    tiny = ["data.train_subset=256", "data.val_size=256", "data.test_subset=256", "model.width=16",
            "curriculum.epochs_per_stage=1", "analysis.train_eval_size=256"]
    proc = subprocess.run(["bash", str(script), str(data_root), *tiny], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[protocol]")]
    assert [int(line.split()[2].rstrip(":")) for line in lines if line.startswith("[protocol] stage")] == [1, 2, 3, 4]
    assert "total wall time" in lines[-1] and "wandb imported: False" in lines[-1]
    assert "channels_last=true" in lines[0] and "on_device=true" in lines[0]


@pytest.mark.slow
def test_gpu_protocol_script_names_a_missing_data_dir(tmp_path):
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "gpu_belilovsky_k2.sh"
    proc = subprocess.run(["bash", str(script), str(tmp_path / "nowhere")], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "must hold cifar-10-batches-py" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_on_device_moves_each_split_once_and_leaves_the_host_copy(tiny):
    """data.on_device (the GPU protocol's): batches come from a copy on the training device, made once per
    split; the host split stays for analysis and caches; on the CPU nothing moves. ("meta" stands in for
    a GPU: a real device type without one.)"""
    _, dm, _ = build_tiny(tiny, "data.on_device=true")
    assert dm.resident("train", torch.device("cpu")) is dm.train_set
    moved = dm.resident("train", torch.device("meta"))
    assert moved.x.device.type == "meta" and moved.x.shape == dm.train_set.x.shape
    assert dm.resident("train", torch.device("meta")) is moved and dm.train_set.x.device.type == "cpu"
    _, dm_off, _ = build_tiny(tiny)
    assert dm_off.resident("train", torch.device("meta")) is dm_off.train_set


def test_view_cache_build_is_amortised_over_the_stage():
    from lwt.bench.views import amortised

    # 100 images/s and a 20 s build for 1,000 images: 10 s per epoch + 20 s once
    assert amortised(100.0, 20.0, 1000, 10) == pytest.approx(1000 * 10 / (10 * 10 + 20))
    assert amortised(100.0, 0.0, 1000, 10) == pytest.approx(100.0)


@pytest.mark.slow
def test_view_section_times_the_same_stage_three_ways(tiny):
    """Stage 3's views built from the images and stage 4's from stage 3's (block 3 alone) equal views built
    afresh; each variant's rate is measured and the amortised rate counts the build."""
    from lwt.bench import views
    from lwt.training.prefix import PrefixCache

    cfg, dm, net = build_tiny(tiny, "trainer.prefix_views=2", width=16)
    cpu, size = torch.device("cpu"), Size(floor_warmup=1, floor_steps=2, floor_rounds=1)
    stage3, build3 = views.view_cache(cfg, net, dm, 3, {}, 15, cpu)
    assert stage3.cached == ("train",) and stage3.carried_from is None and build3 > 0
    row = views.stage_rates(cfg, net, dm, 3, stage3, build3, 15, size, cpu)
    assert row["build_from"] == "images" and all(v > 0 for v in row["images_per_s"].values())
    assert row["amortised"]["images_per_s"] < row["images_per_s"]["views"]
    stage4, _ = views.view_cache(cfg, net, dm, 4, stage3.handoff(), 15, cpu)
    fresh = PrefixCache(dm, net, 4, cfg.trainer, augment=True, epochs=15, seed=cfg.seed)
    fresh.wanted = ("train",)
    fresh.setup("fit")
    assert stage4.carried_from == 3 and torch.equal(stage4.sets["train"].x, fresh.sets["train"].x)
