"""What every benchmark section shares: the real data and models, one way to time a training loop, and the
Trainer it runs in."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import lightning as L
import torch
import torch.nn.functional as F

from lwt.config import Config, load_config
from lwt.config.files import experiments_dir

EXPERIMENTS = experiments_dir() / "cifar10"  # the checkout's, or a wheel's package data


@dataclass
class Size:
    """How much each section measures: ``steps`` timed batches of 128 after ``warmup`` untimed ones, in
    ``rounds`` alternating rounds (greedy section; the slower E2E section has its own counts)."""

    warmup: int = 2
    steps: int = 8
    rounds: int = 2
    e2e_steps: int = 5
    e2e_rounds: int = 2
    memory_stages: list[int] | None = field(default_factory=lambda: [2])  # None: every stage
    floor_warmup: int = 1  # the floor section (lwt/bench/floor.py): its training rounds ...
    floor_steps: int = 4
    floor_rounds: int = 3
    eval_rounds: int = 2  # ... and its whole-stage rounds (each a stage of floor_warmup + floor_steps batches)

    def images(self, steps: int) -> int:
        return 128 * (self.warmup + steps)


QUICK = Size()  # 2 CPU cores: about 14 minutes (sections a-e; belilovsky_k2 is the slow part)
FULL = Size(warmup=3, steps=30, rounds=3, e2e_steps=15, e2e_rounds=2, memory_stages=None, floor_steps=12,
            floor_rounds=5, eval_rounds=3)


def experiment(name: str, overrides: list[str] = ()) -> Config:
    """An experiment file of experiments/cifar10 with the benchmark's own small splits."""
    return load_config(EXPERIMENTS / f"{name}.yaml", ["data.val_size=500", "data.test_subset=500",
                                                      "logging.wandb=disabled", *overrides])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn) -> float:
    """Seconds of ``fn()``, the work it queued on ``device`` included."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


class Clock(L.Callback):
    """Timestamps after each training step (``tick``, or each batch of a Lightning fit it is a callback of);
    images/s over the steps after the warm-up ones."""

    def __init__(self, warmup: int, device: torch.device):
        self.warmup, self.device = warmup, device
        self.marks: list[tuple[float, int]] = []  # (time after the step, images in the step)

    def tick(self, images: int) -> None:
        sync(self.device)
        self.marks.append((time.perf_counter(), images))

    def images_per_s(self) -> float:
        after = self.marks[self.warmup:]  # from the end of the first step after the warm-up
        assert len(after) >= 2, f"only {len(self.marks)} steps ran, {self.warmup} of them warm-up"
        return sum(n for _, n in after[1:]) / (after[-1][0] - after[0][0])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.tick(len(batch[1]))


def bench_trainer(device: torch.device, callback: L.Callback, steps: int | None = None,
                  precision: str = "32-true") -> L.Trainer:
    """A Trainer as lwt's runs configure it, minus files (checkpoints, loggers) and the progress bar:
    ``steps`` training steps and no validation (a throughput measurement), else one epoch with validation."""
    run = dict(max_steps=steps, max_epochs=-1, limit_val_batches=0) if steps else dict(max_epochs=1)
    return L.Trainer(accelerator=device.type, devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                     precision=precision, callbacks=[callback], use_distributed_sampler=False, **run)


def loss_of(readouts: dict[int, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    return sum(F.cross_entropy(logits, y) for logits in readouts.values())


def best(values: list[float]) -> float:
    """The fastest round: interference from other processes only ever slows a round down."""
    return max(values)


def spread(values: list[float]) -> float:
    return statistics.pstdev(values) / statistics.mean(values) if len(values) > 1 else 0.0
