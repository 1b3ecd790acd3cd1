"""(g) Augmented training from cached views (``trainer.prefix_views``), stage by stage, against the floor
(belilovsky_k2, float32, batch 128, one process; opt-in: ``--sections views``).

For each greedy stage k >= 2 of the authors' k=2 network, in alternating rounds:
- *floor*: block k + aux head k alone (forward, cross-entropy, backward, SGD step) on batches of cached view
  features gathered before the clock starts (floor.floor_loop);
- *views*: stage k as lwt trains it with ``trainer.prefix_views=V`` (StageModule in a Lightning fit on the
  PrefixCache serving the views);
- *no cache*: stage k as lwt trains it by default, ``prefix_views=null``: each batch augmented on the fly and
  the frozen prefix run under inference mode.
The views' build is timed once per stage as a fit builds it: stage 3's from the images (the whole prefix over V
fresh views), stage 4's from stage 3's (block 3 alone). Its cost is amortised over the stage's epochs (the
experiment's ``curriculum.epochs_per_stage``, and the CPU sweep's 15): with N training images, E epochs and
the loop's rate r, ``amortised = 1 / (1 / r + build_s / (N * E))``. Stages where ``views_pay`` keeps the
cache off (stage 2: its prefix is one thin convolution) are named and not measured.
"""

from __future__ import annotations

import statistics

import lightning as L
import torch

from lwt.bench.common import Clock, Size, bench_trainer, best, experiment, spread, timed
from lwt.bench.floor import floor_loop
from lwt.console import advance
from lwt.models import build_model
from lwt.run.load import load_datamodule
from lwt.training import StageModule
from lwt.training.prefix import PrefixCache, Views, views_pay

VIEWS = 4  # the largest V of experiments/sweeps/view_cache.yaml
SWEEP_EPOCHS = 15  # the CPU sweep's epochs per stage (experiments/sweeps/view_cache.yaml)


def fit_rate(cfg, net, dm, stage: int, size: Size, device: torch.device) -> float:
    """images/s of lwt's StageModule in a Lightning fit on ``dm`` (timed steps after the warm-up)."""
    module = StageModule(net, stage, cfg.optim, dm.num_classes, max_epochs=1)
    clock = Clock(size.floor_warmup, device)
    bench_trainer(device, clock, size.floor_warmup + size.floor_steps).fit(module, datamodule=dm)
    return clock.images_per_s()


def view_cache(cfg, net, dm, stage: int, carry: dict, epochs: int, device: torch.device) -> tuple[PrefixCache, float]:
    """Stage ``stage``'s training views as a fit builds them (from ``carry``'s when given), and the seconds
    it took; the val/test caches are left out (they are built with or without views)."""
    cache = PrefixCache(dm, net, stage, cfg.trainer, augment=True, carry=carry, epochs=epochs, seed=cfg.seed)
    cache.wanted = ("train",)
    cache.trainer = bench_trainer(device, Clock(0, device), 1)  # its device and precision
    seconds = timed(device, lambda: cache.setup("fit"))
    cache.trainer = None
    return cache, seconds


def amortised(rate: float, build_s: float, images: int, epochs: int) -> float:
    """images/s over a stage of ``epochs`` epochs of ``images`` images at ``rate``, the views' build included."""
    return 1 / (1 / rate + build_s / (images * epochs))


def stage_rates(cfg, net, dm, stage: int, cache: PrefixCache, build_s: float, epochs: int, size: Size,
                device: torch.device) -> dict:
    views: Views = cache.sets["train"]
    first = views.view(0)
    batches = [first[idx] for idx in torch.randperm(len(first)).split(cfg.data.batch_size)]  # (B, C, H, W)
    speeds: dict[str, list[float]] = {"floor": [], "views": [], "no_cache": []}
    floor_loop(StageModule(net, stage, cfg.optim, dm.num_classes, 1), batches, size, device)  # untimed warm-up
    for i in range(size.floor_rounds):  # alternating order, so load drifts hit every variant
        order = ("floor", "views", "no_cache") if i % 2 == 0 else ("no_cache", "views", "floor")
        for variant in order:
            if variant == "floor":
                rate = floor_loop(StageModule(net, stage, cfg.optim, dm.num_classes, 1), batches, size, device)
            else:
                rate = fit_rate(cfg, net, cache if variant == "views" else dm, stage, size, device)
            speeds[variant].append(rate)
        advance(1, f"views: stage {stage}")
    top = {k: best(v) for k, v in speeds.items()}
    n = len(dm.train_set)
    row = {"stage": stage, "cached": True, "views": views.count, "train_images": n, "images_per_s": top,
           "median_images_per_s": {k: statistics.median(v) for k, v in speeds.items()}, "rounds": speeds,
           "round_spread": {k: spread(v) for k, v in speeds.items()}, "build_s": build_s,
           "build_from": "images" if cache.carried_from is None else f"stage {cache.carried_from}",
           "views_over_floor": top["views"] / top["floor"], "no_cache_over_floor": top["no_cache"] / top["floor"]}
    for tag, e in (("", epochs), (f"_{SWEEP_EPOCHS}", SWEEP_EPOCHS)):
        rate = amortised(top["views"], build_s, n, e)
        row[f"amortised{tag}"] = {"epochs": e, "images_per_s": rate, "over_floor": rate / top["floor"]}
    return row


def run(size: Size, device: torch.device, views: int = VIEWS) -> dict:
    cfg = experiment("belilovsky_k2_greedy", [f"data.train_subset={128 * (size.floor_warmup + size.floor_steps)}",
                                               f"trainer.prefix_views={views}"])
    dm = load_datamodule(cfg)
    L.seed_everything(0, verbose=False)
    net = build_model(cfg.model, dm.num_classes, dm.input_shape).to(device)
    stages, carry = [], {}
    for stage in range(2, net.num_blocks + 1):
        epochs = cfg.stage_epochs(stage)
        if not views_pay(net, stage, views, epochs, dm.input_shape):
            stages.append({"stage": stage, "cached": False, "views": views})
            continue
        cache, build_s = view_cache(cfg, net, dm, stage, carry, epochs, device)
        stages.append(stage_rates(cfg, net, dm, stage, cache, build_s, epochs, size, device))
        carry = cache.handoff()
    for key in list(carry):
        carry.pop(key).release()
    return {"model": "belilovsky_k2", "batch_size": cfg.data.batch_size, "views": views,
            "epochs_per_stage": cfg.curriculum.epochs_per_stage, "stages": stages,
            "by_stage": {str(s["stage"]): s for s in stages}}


def lines(v: dict) -> list[str]:
    out = [f"  view cache (trainer.prefix_views={v['views']}), {v['model']}, images/s best of rounds "
           f"(fraction of the block+head floor):"]
    for s in v["stages"]:
        if not s["cached"]:
            out.append(f"    stage {s['stage']}: not cached (views_pay: the prefix is cheap next to block + head)")
            continue
        ips, a, a15 = s["images_per_s"], s["amortised"], s[f"amortised_{SWEEP_EPOCHS}"]
        out.append(f"    stage {s['stage']}: floor {ips['floor']:.1f}, views {ips['views']:.1f} "
                   f"({s['views_over_floor']:.2f}), no cache {ips['no_cache']:.1f} ({s['no_cache_over_floor']:.2f}); "
                   f"build {s['build_s']:.1f}s for {s['views']} x {s['train_images']} images from {s['build_from']}; "
                   f"amortised over {a['epochs']} epochs {a['over_floor']:.2f}, over {a15['epochs']} "
                   f"{a15['over_floor']:.2f}")
    return out
