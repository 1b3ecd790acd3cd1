"""(d) Peak memory of training steps: each greedy stage of vgg16 vs E2E, batch 128.

Each measurement runs in its own process (``python -m lwt.bench.memory SPEC``), so no allocation of an
earlier measurement counts: the process loads the data, builds the network and a batch, then resets the
peak (CPU: Linux's VmHWM via /proc/self/clear_refs; GPU: torch's peak counter) and runs 3 optimizer steps.
The delta is that peak minus the memory in use just before the steps: activations kept for backward,
gradients, optimizer state, workspace.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

MODEL, STEPS = "vgg16", 3


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def measure(phase: str, stage: int, device_name: str) -> dict:
    """In the child: peak memory delta of STEPS steps of ``phase`` ("e2e" or "stage" ``stage``, 1-based)."""
    import torch

    from lwt.bench.common import experiment, loss_of
    from lwt.models import build_model
    from lwt.run.load import load_datamodule
    from lwt.training import EndToEndModule, StageModule

    device = torch.device(device_name)
    cfg = experiment(f"{MODEL}_{'e2e' if phase == 'e2e' else 'greedy'}", ["data.train_subset=128"])
    dm = load_datamodule(cfg)
    torch.manual_seed(0)
    net = build_model(cfg.model, dm.num_classes, dm.input_shape).to(device)
    module = (EndToEndModule(net, cfg.optim, dm.num_classes, max_epochs=1) if phase == "e2e"
              else StageModule(net, stage, cfg.optim, dm.num_classes, max_epochs=1))
    module.train()
    opt, _ = module.make_optimizer(module.param_groups())
    x, y = next(iter(dm.train_dataloader()))
    x, y = dm.preprocess(x.to(device), train=True), y.to(device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM (peak RSS) to the current RSS
        before = _status_kb("VmRSS") * 1024
    for _ in range(STEPS):
        loss = loss_of(module.readouts(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak, kind = torch.cuda.max_memory_allocated(device), "cuda max_memory_allocated"
    else:
        peak, kind = _status_kb("VmHWM") * 1024, "RSS (VmHWM)"
    return {"phase": phase, "stage": stage, "delta_bytes": peak - before, "kind": kind, "blocks": net.num_blocks}


def in_child(phase: str, stage: int, device: str) -> dict:
    spec = json.dumps({"phase": phase, "stage": stage, "device": device})
    proc = subprocess.run([sys.executable, "-m", "lwt.bench.memory", spec], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        raise RuntimeError(f"memory measurement {spec} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(stages: list[int] | None, device: str) -> dict:
    """E2E, then the greedy stages ``stages`` (None: all); the ratio uses the hungriest stage measured."""
    from lwt.console import advance, extend

    e2e = in_child("e2e", 0, device)
    advance(1, "memory")
    stages = list(stages or range(1, e2e["blocks"] + 1))
    extend(len(stages) - 1)  # the caller's bar counted one stage before the number of blocks was known
    greedy = []
    for k in stages:
        greedy.append(in_child("stage", k, device))
        advance(1, f"memory: stage {k}")
    worst = max(greedy, key=lambda r: r["delta_bytes"])
    return {
        "model": MODEL, "batch_size": 128, "kind": e2e["kind"], "e2e_bytes": e2e["delta_bytes"],
        "stage_bytes": {r["stage"]: r["delta_bytes"] for r in greedy}, "worst_stage": worst["stage"],
        "greedy_over_e2e": worst["delta_bytes"] / e2e["delta_bytes"],
    }


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    print(json.dumps(measure(spec["phase"], spec["stage"], spec["device"])))
