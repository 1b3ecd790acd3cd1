"""A greedy stage's inputs: the frozen prefix's output, computed once per stage wherever it is deterministic.

Stage k trains block k on ``blocks[:k-1](x)``. The prefix is frozen, so for an un-augmented image its output
never changes during the stage: computing it once and training block k from the stored tensors removes the
prefix from every later epoch. Validation and test images are never augmented, so their features are
always cached; training images are when ``data.augment=false``. Augmented training batches stay images and
the stage module runs the prefix on them under ``torch.inference_mode``.

The caches are built incrementally: stage k+1's features are block k run once over stage k's (``carry``),
so building them, and evaluating a stage, costs one block's forward pass, not the whole prefix's. In
float32 storage the result is exactly the from-scratch prefix (same batches, same kernels); bfloat16
storage rounds at every depth instead of once.
"""

from __future__ import annotations

import math
import os
from contextlib import nullcontext

import lightning as L
import torch

from lwt.config import TrainerConfig
from lwt.data.tensors import TensorPairs, batch_loader
from lwt.errors import LwtError
from lwt.models import StagedNet
from lwt.training.compute import evaluating

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
GB = 2**30


def available_bytes(device: torch.device) -> int:
    """Memory free now on ``device``: CUDA's free memory, or the host's MemAvailable (Linux)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def prefix_features(net: StagedNet, depth: int, data: TensorPairs, preprocess, device: torch.device,
                    dtype: torch.dtype, batch_size: int) -> TensorPairs:
    """``blocks[:depth]`` of every image of ``data`` (``preprocess``: uint8 batch -> normalized, un-augmented
    batch), in eval mode (BN on its running statistics, as the frozen prefix during the stage), stored as
    ``dtype`` on ``device``: (N, C, H, W) features with the same labels."""
    out = None
    with evaluating(net, device):
        for start in range(0, len(data), batch_size):
            x, _ = data[range(start, min(start + batch_size, len(data)))]
            h = net.features(preprocess(x.to(device)), depth)  # (B, C, H, W)
            if out is None:
                out = torch.empty((len(data), *h.shape[1:]), dtype=dtype, device=device)
            out[start:start + len(h)] = h.to(dtype)
    return TensorPairs(out, data.y.to(device))


def next_features(block, data: TensorPairs, device: torch.device, dtype: torch.dtype, batch_size: int) -> TensorPairs:
    """``block`` (frozen, eval mode) over cached features: the depth-d cache becomes the depth-(d+1) one."""
    out = None
    with evaluating(block, device):
        for start in range(0, len(data), batch_size):
            h = block(data.x[start:start + batch_size].to(device).float())  # (B, C, H, W)
            if out is None:
                out = torch.empty((len(data), *h.shape[1:]), dtype=dtype, device=device)
            out[start:start + len(h)] = h.to(dtype)
    return TensorPairs(out, data.y.to(device))


class PrefixCache(L.LightningDataModule):
    """The run's DataModule as greedy stage ``stage`` (1-based, at least 2) sees it: the splits in
    ``wanted`` are served as cached prefix features, computed in ``setup`` on the training device (per
    rank under DDP); ``cached`` lists those that fit the memory budget. Other splits pass through as images.
    ``carry``: the previous stage's cached features (``handoff()``), from which this stage's are one block away.
    """

    def __init__(self, dm, net: StagedNet, stage: int, cfg: TrainerConfig, augment: bool,
                 carry: dict[str, TensorPairs] | None = None):
        super().__init__()
        assert stage >= 2, "stage 1 has no prefix to cache"
        self.dm, self.net, self.stage, self.cfg = dm, net, stage, cfg
        self.prefix = stage - 1  # blocks in the frozen prefix
        self.num_classes = dm.num_classes
        self.carry = dict(carry or {})
        # val and (un-augmented) train are read every epoch; test once per stage, but it carries forward
        self.wanted = ("val", "test") if augment else ("val", "train", "test")
        self.sets: dict[str, TensorPairs] = {}
        self.cached: tuple[str, ...] = ()
        self._ready = False

    @property
    def train_set(self):
        return self.dm.train_set

    def _images(self, split: str) -> TensorPairs:
        return getattr(self.dm, f"{split}_set")

    def budget(self, device: torch.device) -> int:
        if self.cfg.prefix_cache_gb is not None:
            return int(self.cfg.prefix_cache_gb * GB)
        return available_bytes(device) // 2

    def plan(self, device: torch.device) -> tuple[str, ...]:
        """The wanted splits that fit the budget, in order (val, train); the others are named once."""
        dtype = DTYPES[self.cfg.prefix_cache_dtype]
        x = self._images("val")[[0]][0].to(device)
        with evaluating(self.net, device):  # eval: a train-mode BN would move its statistics on this one image
            shape = self.net.features(self.dm.preprocess(x, train=False), self.prefix).shape[1:]
        per_image = math.prod(shape) * dtype.itemsize
        budget, used, keep = self.budget(device), 0, []
        for split in self.wanted:
            need = len(self._images(split)) * per_image
            if used + need <= budget:
                keep.append(split)
                used += need
                continue
            what = (f"the prefix cache of stage {self.stage} ({split}: {len(self._images(split))} images x "
                    f"{tuple(shape)} {self.cfg.prefix_cache_dtype}) needs {need / GB:.2f} GB more than the "
                    f"{(budget - used) / GB:.2f} GB left of its budget ({budget / GB:.2f} GB, "
                    + ("trainer.prefix_cache_gb" if self.cfg.prefix_cache_gb else "half the free memory") + ")")
            fixes = ("trainer.prefix_cache_dtype=bfloat16 halves it; or raise trainer.prefix_cache_gb, "
                     "or set trainer.prefix_cache=never")
            if self.cfg.prefix_cache == "always":
                raise LwtError(f"{what}. {fixes}")
            print(f"[lwt] note: {what}; its prefix is recomputed every batch instead ({fixes})", flush=True)
        return tuple(keep)

    def setup(self, stage: str | None = None) -> None:
        self.dm.setup(stage)
        if self._ready:
            return
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        self.net.to(device)
        self.cached = self.plan(device)
        dtype = DTYPES[self.cfg.prefix_cache_dtype]
        batch = self.dm.cfg.eval_batch_size
        for split in self.cached:
            carried = self.carry.pop(split, None)
            # in the precision the stage trains in (bf16 autocast, ...): the features the prefix would give
            with self.trainer.precision_plugin.forward_context() if self.trainer is not None else nullcontext():
                if carried is not None:  # the previous stage's features: one block to go
                    self.sets[split] = next_features(self.net.blocks[self.prefix - 1], carried, device, dtype, batch)
                else:
                    self.sets[split] = prefix_features(self.net, self.prefix, self._images(split),
                                                       lambda x: self.dm.preprocess(x, train=False), device,
                                                       dtype, batch)
            del carried
        self.carry.clear()  # splits that no longer fit
        self._ready = True

    def release(self) -> None:
        """Drop the cached features (the stage is over)."""
        self.sets.clear()
        self.cached, self._ready = (), False

    def handoff(self) -> dict[str, TensorPairs]:
        """The cached features, for the next stage's ``carry``; this cache is released."""
        sets = dict(self.sets)
        self.release()
        return sets

    def _loader(self, split: str, shuffle: bool):
        batch = self.dm.cfg.batch_size if split == "train" else self.dm.cfg.eval_batch_size
        if split in self.sets:
            return batch_loader(self.sets[split], batch, shuffle=shuffle)
        device = self.trainer.strategy.root_device if self.trainer is not None else None
        return batch_loader(self.dm.resident(split, device), batch, shuffle=shuffle)  # images (data.on_device)

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val", shuffle=False)

    def test_dataloader(self):
        return self._loader("test", shuffle=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, y = batch
        if x.dtype == torch.uint8:  # a split that stayed images
            return self.dm.preprocess(x, train=self.trainer is not None and self.trainer.training), y
        return x.float(), y  # cached features, stored in prefix_cache_dtype


def cache_wanted(cfg: TrainerConfig, stage: int) -> bool:
    """Whether greedy stage ``stage`` reads its inputs through a PrefixCache (stage 1 has no prefix)."""
    return cfg.prefix_cache != "never" and stage >= 2
