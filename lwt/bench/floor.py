"""(e) How far a greedy stage runs from its floor, and what a stage's evaluation costs (belilovsky_k2,
float32, batch 128, one process).

- **training floor** (stage ``greedy.STAGE``): block k + aux head k alone (forward, cross-entropy, backward,
  SGD step) on cached prefix features gathered before the clock starts, against *lwt*: the same stage as a
  run with ``data.augment=false`` trains it (StageModule in a Lightning fit on the PrefixCache). Rounds
  alternate, so load drifts hit both.
- **whole stage** (the last, deepest prefix): seconds of building its val/test caches, one augmented training
  epoch, validation and test, with the caches built from the previous stage's (``carry``: one block) vs from
  the images (the whole prefix). Against it: one block's bare forward over the evaluated images (what the
  carry must cost) and the stage's own readout (block k + head k) over them.
"""

from __future__ import annotations

import statistics

import lightning as L
import torch
import torch.nn.functional as F

from lwt.bench.common import Clock, Size, bench_trainer, best, experiment, spread, timed
from lwt.bench.greedy import STAGE, lightning_stage
from lwt.console import advance
from lwt.models import build_model
from lwt.run.load import load_datamodule
from lwt.training import StageModule
from lwt.training.compute import evaluating
from lwt.training.prefix import PrefixCache, prefix_features
from lwt.training.state import EpochTimer

EVAL_SPLITS = ("val", "test")


def floor_loop(module: StageModule, batches: list, size: Size, device: torch.device) -> float:
    """images/s of block + head forward/backward + SGD step over ``batches`` (pre-made, on ``device``)."""
    opt, _ = module.make_optimizer(module.param_groups())
    module.train()
    clock = Clock(size.floor_warmup, device)
    for x, y in batches:
        loss = F.cross_entropy(module.head(module.block(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        clock.tick(len(y))
    return clock.images_per_s()


def training_floor(cfg, net, dm, size: Size, device: torch.device) -> dict:
    feats = prefix_features(net, STAGE - 1, dm.train_set, lambda x: dm.preprocess(x, train=False), device,
                            torch.float32, cfg.data.eval_batch_size)
    batches = [feats[idx] for idx in torch.randperm(len(feats)).split(cfg.data.batch_size)]  # (B, C, H, W)
    cache = PrefixCache(dm, net, STAGE, cfg.trainer, augment=False)  # built once, in the first fit
    assert len(batches) == size.floor_steps + size.floor_warmup  # train_subset: exactly these batches
    lwt_size = Size(warmup=size.floor_warmup, steps=size.floor_steps)
    speeds: dict[str, list[float]] = {"floor": [], "lwt": []}
    floor_loop(StageModule(net, STAGE, cfg.optim, dm.num_classes, 1), batches, size, device)  # untimed warm-up
    for _ in range(size.floor_rounds):
        speeds["floor"].append(floor_loop(StageModule(net, STAGE, cfg.optim, dm.num_classes, 1), batches,
                                          size, device))
        speeds["lwt"].append(lightning_stage(cfg, net, cache, lwt_size, device))
        advance(1, "floor")
    cache.release()
    top = {k: best(v) for k, v in speeds.items()}
    return {"stage": STAGE, "images_per_s": top, "median_images_per_s": {k: statistics.median(v) for k, v in
                                                                          speeds.items()},
            "rounds": speeds, "round_spread": {k: spread(v) for k, v in speeds.items()},
            "lwt_over_floor": top["lwt"] / top["floor"]}


def stage_cache(cfg, net, dm, stage: int, carry: dict | None, trainer: L.Trainer) -> PrefixCache:
    """The PrefixCache of ``stage`` (from ``carry`` or the images), attached to ``trainer`` so that its setup
    builds on the trainer's device, in its precision, as in a fit."""
    cache = PrefixCache(dm, net, stage, cfg.trainer, augment=cfg.data.augment, carry=carry)
    cache.trainer = trainer
    return cache


def whole_stage(cfg, net, dm, stage: int, carry: dict | None, device: torch.device) -> tuple[dict, PrefixCache]:
    """Seconds of greedy stage ``stage``: caches (from ``carry`` or the images), train, val, test."""
    module = StageModule(net, stage, cfg.optim, dm.num_classes, 1)
    timer = EpochTimer()
    trainer = bench_trainer(device, timer)
    cache = stage_cache(cfg, net, dm, stage, carry, trainer)
    build = timed(device, lambda: cache.setup("fit"))
    fit = timed(device, lambda: trainer.fit(module, datamodule=cache))  # setup is done: the fit reuses the caches
    test = timed(device, lambda: trainer.test(module, datamodule=cache, verbose=False))
    return {"build_s": build, "train_s": timer.seconds, "val_s": timer.val_seconds, "test_s": test,
            "eval_s": build + timer.val_seconds + test, "stage_s": build + fit + test}, cache


def build_seconds(cfg, net, dm, stage: int, carry: dict, device: torch.device) -> float:
    """Seconds of PrefixCache.setup for ``stage`` from ``carry`` alone, as in a fit."""
    cache = stage_cache(cfg, net, dm, stage, carry, bench_trainer(device, EpochTimer()))
    seconds = timed(device, lambda: cache.setup("fit"))
    cache.release()
    return seconds


def forward_seconds(fn, sets: list, batch: int, device: torch.device, module) -> float:
    """Seconds of ``fn`` over every batch of ``sets`` (cached features), eval mode, no autograd."""
    def forward_all():
        for data in sets:
            for x in data.x.split(batch):
                fn(x.to(device).float())

    with evaluating(module, device):
        return timed(device, forward_all)


def evaluation(cfg, net, dm, size: Size, device: torch.device) -> dict:
    last = net.num_blocks  # the last stage
    batch = cfg.data.eval_batch_size
    net.to(device)
    carry = {s: prefix_features(net, last - 2, getattr(dm, f"{s}_set"), lambda x: dm.preprocess(x, train=False),
                                device, torch.float32, batch) for s in EVAL_SPLITS}  # the previous stage's
    block, head = net.blocks[last - 2], net.aux_heads[last - 1]  # block: stage last-1's cache -> this stage's
    rows: dict[str, list[dict]] = {"incremental": [], "recompute": []}
    block_s, readout_s = [], []
    for i in range(size.eval_rounds):  # alternating which goes first: the first stage-4 steps warm up
        for variant in ("incremental", "recompute")[:: 1 if i % 2 == 0 else -1]:
            row, cache = whole_stage(cfg, net, dm, last, carry if variant == "incremental" else None, device)
            rows[variant].append(row)
            if variant == "incremental":
                evaluated = [cache.sets[s] for s in EVAL_SPLITS]
                readout_s.append(forward_seconds(lambda x: head(net.blocks[last - 1](x)), evaluated, batch,
                                                 device, net))
            cache.release()
        block_s.append(forward_seconds(block, list(carry.values()), batch, device, block))
        advance(1, "floor: whole stage")
    build_s = [r["build_s"] for r in rows["incremental"]]
    for _ in range(size.floor_rounds):  # the two numbers of the eval target, alternating, a few more times
        build_s.append(build_seconds(cfg, net, dm, last, carry, device))
        block_s.append(forward_seconds(block, list(carry.values()), batch, device, block))
        advance(1, "floor: caches")
    fast = {k: {key: min(r[key] for r in v) for key in v[0]} for k, v in rows.items()}  # fastest round
    inc, rec, one_block, readout = fast["incremental"], fast["recompute"], min(block_s), min(readout_s)
    return {
        "stage": last, "train_images": len(dm.train_set), "evaluated_images": sum(len(s) for s in carry.values()),
        "seconds": fast, "rounds": rows, "block_forward_s": one_block, "readout_forward_s": readout,
        "block_forward_rounds": block_s, "build_rounds": build_s,
        "stage_recompute_over_incremental": rec["stage_s"] / inc["stage_s"],
        "eval_recompute_over_incremental": rec["eval_s"] / inc["eval_s"],
        "build_over_block": min(build_s) / one_block, "build_recompute_over_block": rec["build_s"] / one_block,
        "eval_over_floor": inc["eval_s"] / (one_block + readout),
    }


def run(size: Size, device: torch.device) -> dict:
    cfg = experiment("belilovsky_k2_greedy", [f"data.train_subset={128 * (size.floor_warmup + size.floor_steps)}"])
    dm = load_datamodule(cfg)
    L.seed_everything(0, verbose=False)
    net = build_model(cfg.model, dm.num_classes, dm.input_shape).to(device)
    return {"model": "belilovsky_k2", "batch_size": cfg.data.batch_size,
            "training": training_floor(cfg, net, dm, size, device),
            "evaluation": evaluation(cfg, net, dm, size, device)}
