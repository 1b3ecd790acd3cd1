"""(a) A greedy stage's training throughput: cached prefix, recomputed prefix, and a naive reference loop.

Stage 3 of belilovsky_k2 trains block 3 (+ its auxiliary head) on frozen blocks 1-2.
- cached: lwt's StageModule in a Lightning fit, batches served by PrefixCache (un-augmented pipeline);
- default: the same at lwt's default precision on this device (trainer.precision=auto; bf16 autocast on
  hardware with native bf16), measured only where that is not float32;
- recompute: the same with lwt's default pipeline: batched on-device crop+flip, prefix under inference_mode;
- naive: written here, what a first implementation does: per-image torchvision transforms in a DataLoader
  with default collation, and the prefix run with autograd on (its parameters require grad, so backward
  runs through it too), although only block 3 and its head are optimized.
"""

from __future__ import annotations

from functools import partial

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from lwt.bench.common import Clock, Size, bench_trainer, best, experiment, loss_of, spread, timed
from lwt.console import advance
from lwt.models import build_model
from lwt.run.load import load_datamodule
from lwt.training import StageModule
from lwt.training.compute import resolve_precision
from lwt.training.prefix import PrefixCache, prefix_features

STAGE = 3  # the third stage (a prefix of two blocks)


class PerImage(Dataset):
    """uint8 CIFAR images transformed one at a time, as a torchvision pipeline does."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor):
        self.x, self.y = x, y
        self.transform = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(),
                                     v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean.tolist(), std.tolist())])

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.transform(self.x[i]), int(self.y[i])


def naive_loop(net, dm, size: Size, device: torch.device) -> float:
    block, head = net.blocks[STAGE - 1], net.aux_heads[STAGE - 1]
    for p in net.parameters():
        p.requires_grad_(True)  # the naive loop freezes by leaving the prefix out of the optimizer only
    net.eval()
    block.train()
    head.train()
    opt = torch.optim.SGD([*block.parameters(), *head.parameters()], lr=0.01, momentum=0.9)
    loader = DataLoader(PerImage(dm.train_set.x, dm.train_set.y, dm.mean, dm.std), batch_size=128, shuffle=True)
    clock = Clock(size.warmup, device)
    for step, (x, y) in enumerate(loader):
        if step == size.warmup + size.steps:
            break
        x, y = x.to(device), y.to(device)
        loss = loss_of({0: head(block(net.features(x, STAGE - 1)))}, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        clock.tick(len(y))
    return clock.images_per_s()


def lightning_stage(cfg, net, dm, size: Size, device: torch.device, precision: str = "32-true") -> float:
    module = StageModule(net, STAGE, cfg.optim, dm.num_classes, max_epochs=1)
    clock = Clock(size.warmup, device)
    bench_trainer(device, clock, size.warmup + size.steps, precision).fit(module, datamodule=dm)
    return clock.images_per_s()


def run(size: Size, device: torch.device) -> dict:
    cfg = experiment("belilovsky_k2_greedy", [f"data.train_subset={size.images(size.steps)}"])
    dm = load_datamodule(cfg)
    L.seed_everything(0, verbose=False)
    net = build_model(cfg.model, dm.num_classes, dm.input_shape).to(device)

    build_s = timed(device, lambda: prefix_features(net, STAGE - 1, dm.train_set, partial(dm.preprocess, train=False),
                                                    device, torch.float32, 500))

    # float32 everywhere, so the ratios isolate the prefix and the data path; "default" adds what lwt does
    # by default on this device (trainer.precision=auto), when that is not float32
    precision = resolve_precision(cfg.trainer.model_copy(update={"accelerator": device.type}))
    speeds: dict[str, list[float]] = {"cached": [], "recompute": [], "naive": []}
    if precision != "32-true":
        speeds["default"] = []
    naive_loop(net, dm, size, device)  # untimed: the first steps in a process also pay for allocator growth
    for _ in range(size.rounds):  # alternating, so drifts in machine load hit every variant alike
        cache = PrefixCache(dm, net, STAGE, cfg.trainer, augment=False)
        speeds["cached"].append(lightning_stage(cfg, net, cache, size, device))
        if "default" in speeds:
            speeds["default"].append(lightning_stage(cfg, net, cache, size, device, precision))
        speeds["recompute"].append(lightning_stage(cfg, net, dm, size, device))
        speeds["naive"].append(naive_loop(net, dm, size, device))
        advance(1, "greedy")
    top = {k: best(v) for k, v in speeds.items()}
    top.setdefault("default", top["cached"])
    return {
        "model": "belilovsky_k2", "stage": STAGE, "batch_size": 128, "images_per_round": size.images(size.steps),
        "images_per_s": top, "rounds": speeds, "round_spread": {k: spread(v) for k, v in speeds.items()},
        "cache_build_s": build_s, "cache_build_images": len(dm.train_set),
        "default_precision": precision, "default_over_naive": top["default"] / top["naive"],
        "cached_over_naive": top["cached"] / top["naive"], "recompute_over_naive": top["recompute"] / top["naive"],
        "cached_over_recompute": top["cached"] / top["recompute"],
    }
