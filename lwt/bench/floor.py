"""(e) How far a greedy stage runs from its floor, and what a stage's evaluation costs.

On the authors' k=2 network (belilovsky_k2), float32, batch 128, in one process:
- **training floor** (stage ``greedy.STAGE``): block k + aux head k alone -- forward, cross-entropy,
  backward, the stage's own SGD step -- on batches of cached prefix features gathered before the clock
  starts. *lwt* is the same stage as a run with ``data.augment=false`` trains it: StageModule in a Lightning
  fit, batches gathered from the PrefixCache, metrics, logging and the lr schedule included. Rounds
  alternate floor / lwt, so load drifts hit both.
- **whole stage** (the last stage, whose prefix is deepest): wall time of building its val/test caches, one
  epoch of lwt's default (augmented) training, the validation and the test pass, with the caches built
  from the previous stage's (``carry``: one block) vs from the images (the whole prefix, as before
  incremental caches). Against it, one block's bare forward over the same evaluated images (what the
  carry must cost; alternated with building the caches from the carry alone, a few more rounds, as the two
  are close) and the stage's own readout (block k + head k) over them.
"""

from __future__ import annotations

import statistics
import time

import lightning as L
import torch
import torch.nn.functional as F

from lwt.bench.common import Clock, Size, best, experiment, spread, sync
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
    timed = Size(warmup=size.floor_warmup, steps=size.floor_steps)
    speeds: dict[str, list[float]] = {"floor": [], "lwt": []}
    floor_loop(StageModule(net, STAGE, cfg.optim, dm.num_classes, 1), batches, size, device)  # untimed warm-up
    for _ in range(size.floor_rounds):
        speeds["floor"].append(floor_loop(StageModule(net, STAGE, cfg.optim, dm.num_classes, 1), batches,
                                          size, device))
        speeds["lwt"].append(lightning_stage(cfg, net, cache, timed, device))
        advance(1, "floor")
    cache.release()
    top = {k: best(v) for k, v in speeds.items()}
    return {"stage": STAGE, "images_per_s": top, "median_images_per_s": {k: statistics.median(v) for k, v in
                                                                          speeds.items()},
            "rounds": speeds, "round_spread": {k: spread(v) for k, v in speeds.items()},
            "lwt_over_floor": top["lwt"] / top["floor"]}


def stage_trainer(device: torch.device, timer: EpochTimer) -> L.Trainer:
    """One epoch with validation, as a run's stage Trainer, minus files (checkpoints, loggers)."""
    return L.Trainer(accelerator=device.type, devices=1, max_epochs=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                     precision="32-true", callbacks=[timer], use_distributed_sampler=False)


def whole_stage(cfg, net, dm, stage: int, carry: dict | None, device: torch.device) -> tuple[dict, PrefixCache]:
    """Seconds of greedy stage ``stage``: caches (from ``carry`` or the images), train, val, test."""
    module = StageModule(net, stage, cfg.optim, dm.num_classes, 1)
    cache = PrefixCache(dm, net, stage, cfg.trainer, augment=cfg.data.augment, carry=carry)
    timer = EpochTimer()
    trainer = stage_trainer(device, timer)
    cache.trainer = trainer  # so setup builds on the trainer's device, in its precision, as in a fit
    sync(device)
    t0 = time.perf_counter()
    cache.setup("fit")
    sync(device)
    t_build = time.perf_counter()
    trainer.fit(module, datamodule=cache)  # setup is done: the fit reuses the caches
    t_test = time.perf_counter()
    trainer.test(module, datamodule=cache, verbose=False)
    sync(device)
    t_end = time.perf_counter()
    build, test = t_build - t0, t_end - t_test
    return {"build_s": build, "train_s": timer.seconds, "val_s": timer.val_seconds, "test_s": test,
            "eval_s": build + timer.val_seconds + test, "stage_s": t_end - t0}, cache


def build_seconds(cfg, net, dm, stage: int, carry: dict, device: torch.device) -> float:
    """Seconds of PrefixCache.setup for ``stage`` from ``carry`` alone, on a Trainer's device, as in a fit."""
    cache = PrefixCache(dm, net, stage, cfg.trainer, augment=cfg.data.augment, carry=carry)
    cache.trainer = stage_trainer(device, EpochTimer())
    sync(device)
    t0 = time.perf_counter()
    cache.setup("fit")
    sync(device)
    seconds = time.perf_counter() - t0
    cache.release()
    return seconds


def forward_seconds(fn, sets: list, batch: int, device: torch.device, module) -> float:
    """Seconds of ``fn`` over every batch of ``sets`` (cached features), eval mode, no autograd."""
    with evaluating(module, device):
        sync(device)
        t0 = time.perf_counter()
        for data in sets:
            for start in range(0, len(data), batch):
                fn(data.x[start:start + batch].to(device).float())
        sync(device)
    return time.perf_counter() - t0


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
