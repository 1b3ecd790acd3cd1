"""(b) E2E training throughput through Lightning vs a bare PyTorch loop, and (c) the data path's share of a step.

Both loops train lwt's EndToEndModule (vgg11: the network through its classifier, aux readouts on detached
features) on the same batches from lwt's data path (in-memory uint8, on-device crop+flip). Lightning also
updates the torchmetrics accuracies and logs, as a real run does; the bare loop does only the arithmetic.
"""

from __future__ import annotations

import time

import lightning as L
import torch

from lwt.bench.common import Clock, Size, bench_trainer, best, experiment, loss_of, spread, sync
from lwt.console import advance
from lwt.models import build_model
from lwt.run.load import load_datamodule
from lwt.training import EndToEndModule

MODEL = "vgg11"


def bare_loop(module: EndToEndModule, dm, size: Size, device: torch.device) -> tuple[float, float]:
    """images/s, and the share of the timed steps spent getting an augmented batch onto the device."""
    opt, _ = module.make_optimizer(module.param_groups())
    module.train()
    clock = Clock(size.warmup, device)
    data_s = 0.0
    batches = iter(dm.train_dataloader())
    for step in range(size.warmup + size.e2e_steps):
        t0 = time.perf_counter()
        x, y = next(batches)
        x, y = dm.preprocess(x.to(device), train=True), y.to(device)
        sync(device)
        if step > size.warmup:  # the steps Clock times: after the first timed mark
            data_s += time.perf_counter() - t0
        loss = loss_of(module.readouts(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        clock.tick(len(y))
    timed = clock.marks[-1][0] - clock.marks[size.warmup][0]
    return clock.images_per_s(), data_s / timed


def run(size: Size, device: torch.device) -> dict:
    cfg = experiment(f"{MODEL}_e2e", [f"data.train_subset={size.images(size.e2e_steps)}"])
    dm = load_datamodule(cfg)
    L.seed_everything(0, verbose=False)
    net = build_model(cfg.model, dm.num_classes, dm.input_shape).to(device)
    module = EndToEndModule(net, cfg.optim, dm.num_classes, max_epochs=1)
    speeds: dict[str, list[float]] = {"lightning": [], "bare": []}
    shares = []
    bare_loop(module, dm, size, device)  # untimed: the first steps in a process also pay for allocator growth
    for _ in range(size.e2e_rounds):
        clock = Clock(size.warmup, device)
        bench_trainer(device, clock, size.warmup + size.e2e_steps).fit(module, datamodule=dm)
        speeds["lightning"].append(clock.images_per_s())
        ips, share = bare_loop(module, dm, size, device)
        speeds["bare"].append(ips)
        shares.append(share)
        advance(1, "e2e")
    top = {k: best(v) for k, v in speeds.items()}
    return {
        "model": MODEL, "batch_size": cfg.data.batch_size, "images_per_round": size.images(size.e2e_steps),
        "images_per_s": top, "rounds": speeds, "round_spread": {k: spread(v) for k, v in speeds.items()},
        "lightning_over_bare": top["lightning"] / top["bare"],
        "data_share": min(shares), "data_share_rounds": shares,
    }
