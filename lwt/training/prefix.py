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

Augmented training images (``trainer.prefix_views=V``, opt-in; null, the default, augments every batch
afresh): a stage's ``Views`` are the prefix's output on V augmented views of every training image, computed
when the stage starts; epoch e trains on view ``e mod V`` of every image (a fixed cycle, not a random pick,
so a resumed epoch reads the view it read before). The views are the same at every stage: view v is drawn
with its own seed (``view_seed``: the run's seed and v, not the stage), so stage k+1's view features are
block k run once over stage k's, as for val and test, and a resumed stage that has no carry draws the same
views and runs the whole prefix over them (equal in float32). Where views pay is ``views_pay``: from stage 2
on, when the prefix's forward FLOPs per image are at least ``VIEW_RULE`` times those of the block and head
being trained (recomputing the prefix would cost about a tenth of a training step or more), and V is below
the stage's epochs (V views cost V prefix passes, per-batch augmentation one per epoch); every other stage
augments per batch. The views live on the training device if they fit the budget, else in host memory (a
GPU run), else in a numpy memmap file in the run folder (``prefix_views.stage<k>.rank<r>.npy``), removed as
soon as the next stage has built its own from it, or when the curriculum ends.
"""

from __future__ import annotations

import copy
import math
import os
import shutil
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lwt.config import Config, TrainerConfig
from lwt.data.tensors import TensorPairs, batch_loader
from lwt.errors import LwtError
from lwt.models import StagedNet
from lwt.training.compute import evaluating

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
NUMPY = {torch.float32: np.float32, torch.float16: np.float16, torch.bfloat16: np.uint16}  # memmap storage
GB = 2**30
VIEW_RULE = 0.3  # views pay when prefix forward FLOPs >= VIEW_RULE x (block + head) forward FLOPs (~0.1 x a step)
VIEW_CHUNK = 1024  # images augmented per draw: fixed, so a view does not depend on data.eval_batch_size
VIEW_TAG = 0x76696577  # "view": keeps the views' seeds apart from the stages' (state.stage_seed)
SPILL = "prefix_views.stage{stage}.rank{rank}.npy"


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


def layout(h: Tensor) -> torch.memory_format:
    """``h``'s memory format (B, C, H, W): a cache keeps it, so that the next block reads the stored features
    with the strides it would read the prefix's output with (conv kernels, and their rounding, follow the
    layout), and a cache carried a block deeper equals the one built from the images."""
    if h.dim() == 4 and not h.is_contiguous() and h.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def prefix_features(net: StagedNet, depth: int, data: TensorPairs, preprocess, device: torch.device,
                    dtype: torch.dtype, batch_size: int, out: Tensor | None = None) -> TensorPairs:
    """``blocks[:depth]`` of every image of ``data`` (``preprocess``: uint8 batch -> normalized, un-augmented
    batch), in eval mode (BN on its running statistics, as the frozen prefix during the stage), stored as
    ``dtype`` on ``device``: (N, C, H, W) features with the same labels. ``out``: an (N, C, H, W) tensor to
    write them into instead (any device or storage: one view of a ``Views``); the labels then stay where
    ``data``'s are."""
    given = out is not None
    with evaluating(net, device):
        for start in range(0, len(data), batch_size):
            x, _ = data[range(start, min(start + batch_size, len(data)))]
            h = net.features(preprocess(x.to(device)), depth)  # (B, C, H, W)
            if out is None:
                out = torch.empty((len(data), *h.shape[1:]), dtype=dtype, device=device, memory_format=layout(h))
            out[start:start + len(h)].copy_(h)
    return TensorPairs(out, data.y if given else data.y.to(device))


def next_features(block, data: TensorPairs, device: torch.device, dtype: torch.dtype, batch_size: int,
                  out: Tensor | None = None) -> TensorPairs:
    """``block`` (frozen, eval mode) over cached features: the depth-d cache becomes the depth-(d+1) one.
    ``out`` as in ``prefix_features``."""
    given = out is not None
    with evaluating(block, device):
        for start in range(0, len(data), batch_size):
            h = block(data.x[start:start + batch_size].to(device).float())  # (B, C, H, W)
            if out is None:
                out = torch.empty((len(data), *h.shape[1:]), dtype=dtype, device=device, memory_format=layout(h))
            out[start:start + len(h)].copy_(h)
    return TensorPairs(out, data.y if given else data.y.to(device))


def view_seed(seed: int, view: int) -> int:
    """The seed view ``view`` of the training images is drawn with: the run's ``seed`` and the view, not
    the stage, so every stage gets the same views (and stage k+1's are one block from stage k's)."""
    return int(np.random.SeedSequence([seed, VIEW_TAG, view]).generate_state(1)[0])


def view_images(dm, seed: int, view: int) -> Tensor:
    """View ``view`` of every training image: ``dm.augment`` of the uint8 images, (N, C, H, W) uint8, drawn
    on the host under ``view_seed`` in chunks of ``VIEW_CHUNK``; the global RNG streams are left as they were.
    Contiguous, as the val and test images are, so the prefix runs on them in the layout the caches' ``plan``
    saw (an augmentation may return another layout; the values are the same)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(view_seed(seed, view))
        return torch.cat([dm.augment(chunk) for chunk in dm.train_set.x.split(VIEW_CHUNK)]).contiguous()


def forward_flops(fn, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """(forward FLOPs of ``fn`` on one input of ``shape``, its output's shape), counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.empty((1, *shape), device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        h = fn(x)
    return int(counter.get_total_flops()), tuple(h.shape[1:])


def views_pay(net: StagedNet, stage: int, views: int, epochs: float, input_shape) -> bool:
    """Whether greedy stage ``stage`` trains from ``views`` cached views (module docstring): stage >= 2,
    ``views`` < ``epochs``, and the prefix's forward FLOPs per image >= ``VIEW_RULE`` x those of block
    ``stage`` + its auxiliary head (counted on a meta copy of ``net``, so nothing is computed)."""
    if stage < 2 or views >= epochs:
        return False
    meta = copy.deepcopy(net).to("meta").eval()
    prefix, shape = forward_flops(lambda x: meta.features(x, stage - 1), tuple(input_shape))
    block, _ = forward_flops(lambda h: meta.aux_heads[stage - 1](meta.blocks[stage - 1](h)), shape)
    return prefix >= VIEW_RULE * block


class Views(Dataset):
    """A stage's training set as cached features of ``V`` augmented views: ``x`` (V, N, C, H, W) in
    ``prefix_cache_dtype`` (on the device, in host memory, or a memmap of ``file``), ``y`` (N,). A batch
    ``[idx]`` is view ``epoch() mod V`` of those images; ``epoch`` reads the Trainer's current epoch."""

    def __init__(self, x: Tensor, y: Tensor, epoch: Callable[[], int], file: Path | None = None):
        self.x, self.y, self.epoch, self.file = x, y, epoch, file

    @property
    def count(self) -> int:
        return len(self.x)

    def __len__(self) -> int:
        return len(self.y)

    def view(self, v: int) -> TensorPairs:
        return TensorPairs(self.x[v], self.y)

    def __getitem__(self, idx):
        idx = torch.as_tensor(idx)
        return self.x[self.epoch() % self.count][idx], self.y[idx.to(self.y.device)]

    def release(self) -> None:
        """Drop the features; a memmap's file is removed."""
        self.x = self.y = None
        if self.file is not None:
            self.file.unlink(missing_ok=True)
            self.file = None


def release_views(sets: dict) -> None:
    """Release the ``Views`` among ``sets``' values (their spill file goes with them) and drop them."""
    for key in [k for k, v in sets.items() if isinstance(v, Views)]:
        sets.pop(key).release()


class PrefixCache(L.LightningDataModule):
    """The run's DataModule as greedy stage ``stage`` (1-based, at least 2) sees it: the splits in
    ``wanted`` are served as cached prefix features, computed in ``setup`` on the training device (per
    rank under DDP); ``cached`` lists those that fit the memory budget. Other splits pass through as images.
    ``carry``: the previous stage's cached features (``handoff()``), from which this stage's are one block away.

    With ``trainer.prefix_views=V`` and augmentation on, the training split is cached too, as ``Views`` (module
    docstring), where ``views_pay`` says so for this stage and its ``epochs``; ``seed``: the run's, which the
    views are drawn from; ``spill_dir``: the run folder, where views that fit neither the budget nor host
    memory go as a memmap file (None: such a stage augments per batch instead, as a note says).
    """

    def __init__(self, dm, net: StagedNet, stage: int, cfg: TrainerConfig, augment: bool,
                 carry: dict[str, TensorPairs | Views] | None = None, *, epochs: int | None = None, seed: int = 0,
                 spill_dir: Path | str | None = None):
        super().__init__()
        assert stage >= 2, "stage 1 has no prefix to cache"
        self.dm, self.net, self.stage, self.cfg = dm, net, stage, cfg
        self.prefix = stage - 1  # blocks in the frozen prefix
        self.num_classes = dm.num_classes
        self.carry = dict(carry or {})
        self.seed, self.spill_dir = seed, None if spill_dir is None else Path(spill_dir)
        views = cfg.prefix_views if augment and cfg.prefix_cache != "never" else None
        pays = views is not None and views_pay(net, stage, views, math.inf if epochs is None else epochs,
                                               dm.input_shape)
        self.views = views if pays else None
        # val and (un-augmented, or cached as views) train are read every epoch; test once per stage, but it
        # carries forward
        self.wanted = ("val", "test") if augment and not self.views else ("val", "train", "test")
        self.sets: dict[str, TensorPairs | Views] = {}
        self.cached: tuple[str, ...] = ()
        self.place = "device"  # where the training views are: device, host or disk (plan)
        self.carried_from: int | None = None  # the stage whose views this stage's were built from (None: images)
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

    def _fits_elsewhere(self, need: int, device: torch.device) -> str:
        """Where training views over the budget go: host memory (a GPU run without trainer.prefix_cache_gb),
        else a memmap file in ``spill_dir`` if its disk has the room and 1 GB to spare; "none": nowhere."""
        if device.type != "cpu" and self.cfg.prefix_cache_gb is None and \
                need <= available_bytes(torch.device("cpu")) // 2:
            return "host"
        if self.spill_dir is not None and need <= shutil.disk_usage(self.spill_dir).free - GB:
            return "disk"
        return "none"

    def plan(self, device: torch.device) -> tuple[str, ...]:
        """The wanted splits that fit the budget, in order (val, train, test); the others are named once.
        Training views over the budget go to host memory or disk (``place``) before they are given up."""
        dtype = DTYPES[self.cfg.prefix_cache_dtype]
        x = self._images("val")[range(min(2, len(self._images("val"))))][0].to(device)
        with evaluating(self.net, device):  # eval: a train-mode BN would move its statistics on these images
            h = self.net.features(self.dm.preprocess(x, train=False), self.prefix)
        shape, self.layout = h.shape[1:], layout(h)
        self.shape = tuple(shape)
        per_image = math.prod(shape) * dtype.itemsize
        budget, used, keep = self.budget(device), 0, []
        for split in self.wanted:
            views = self.views if split == "train" and self.views else None
            need = (views or 1) * len(self._images(split)) * per_image
            if used + need <= budget:
                keep.append(split)
                used += need
                continue
            what = (f"the prefix cache of stage {self.stage} ({split}: {len(self._images(split))} images x "
                    + (f"{views} views x " if views else "")
                    + f"{tuple(shape)} {self.cfg.prefix_cache_dtype}) needs {need / GB:.2f} GB more than the "
                    f"{(budget - used) / GB:.2f} GB left of its budget ({budget / GB:.2f} GB, "
                    + ("trainer.prefix_cache_gb" if self.cfg.prefix_cache_gb else "half the free memory") + ")")
            if views:
                self.place = self._fits_elsewhere(need, device)
                if self.place != "none":
                    keep.append(split)
                    where = "host memory" if self.place == "host" else f"a memmap file in {self.spill_dir}"
                    print(f"[lwt] note: {what}; the views go to {where}", flush=True)
                    continue
            fixes = ("trainer.prefix_cache_dtype=bfloat16 halves it; or raise trainer.prefix_cache_gb, "
                     + ("or lower trainer.prefix_views" if views else "or set trainer.prefix_cache=never"))
            if self.cfg.prefix_cache == "always":
                raise LwtError(f"{what}. {fixes}")
            instead = "its images are augmented every batch" if views else "its prefix is recomputed every batch"
            print(f"[lwt] note: {what}; {instead} instead ({fixes})", flush=True)
        return tuple(keep)

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def build_views(self, carried: Views | None, device: torch.device, dtype: torch.dtype, batch: int) -> Views:
        """This stage's ``Views`` in ``place``: block ``stage-1`` over ``carried`` (the previous stage's,
        released after), else the whole prefix over the views drawn afresh (``view_images``)."""
        full = (self.views, len(self.dm.train_set), *self.shape)
        last = self.layout == torch.channels_last  # stored as (V, N, H, W, C), seen as (V, N, C, H, W)
        stored_shape = (*full[:2], *full[3:], full[2]) if last else full
        file = None
        if self.place == "disk":
            rank = self.trainer.global_rank if self.trainer is not None else 0
            keep = carried.file if carried is not None else None
            for stale in self.spill_dir.glob(SPILL.format(stage="*", rank=rank)):  # left by a killed attempt
                if stale != keep:
                    stale.unlink(missing_ok=True)
            file = self.spill_dir / SPILL.format(stage=self.stage, rank=rank)
            stored = np.lib.format.open_memmap(file, mode="w+", dtype=NUMPY[dtype], shape=stored_shape)
            x = torch.from_numpy(stored).view(dtype)  # bfloat16: stored as its 16 bits
        else:
            x = torch.empty(stored_shape, dtype=dtype, device=device if self.place == "device" else "cpu")
        x = x.permute(0, 1, 4, 2, 3) if last else x
        labels = self.dm.train_set.y
        for v in range(self.views):
            if carried is not None and carried.count == self.views:  # the same views, one block deeper
                next_features(self.net.blocks[self.prefix - 1], carried.view(v), device, dtype, batch, out=x[v])
            else:
                prefix_features(self.net, self.prefix, TensorPairs(view_images(self.dm, self.seed, v), labels),
                                lambda im: self.dm.preprocess(im, train=False), device, dtype, batch, out=x[v])
        if carried is not None:
            self.carried_from = self.stage - 1 if carried.count == self.views else None
            carried.release()
        return Views(x, labels.to(device) if self.place == "device" else labels, self._epoch, file)

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
                if split == "train" and self.views:
                    self.sets[split] = self.build_views(carried if isinstance(carried, Views) else None, device,
                                                        dtype, batch)
                elif carried is not None:  # the previous stage's features: one block to go
                    self.sets[split] = next_features(self.net.blocks[self.prefix - 1], carried, device, dtype, batch)
                else:
                    self.sets[split] = prefix_features(self.net, self.prefix, self._images(split),
                                                       lambda x: self.dm.preprocess(x, train=False), device,
                                                       dtype, batch)
            del carried
        release_views(self.carry)  # splits that no longer fit (training views: their spill file too)
        self.carry.clear()
        self._ready = True

    def release(self) -> None:
        """Drop the cached features (the stage is over); training views' spill file is removed."""
        release_views(self.sets)
        self.sets.clear()
        self.cached, self._ready = (), False

    def handoff(self) -> dict[str, TensorPairs | Views]:
        """The cached features, for the next stage's ``carry``; this cache is released. Training ``Views``
        (and their spill file) are the next stage's to release."""
        sets = dict(self.sets)
        self.sets.clear()
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


def check_views(cfg: Config) -> None:
    """trainer.prefix_views needs what it caches: greedy stages, augmented training images, a prefix cache."""
    views = cfg.trainer.prefix_views
    if views is None:
        return
    if cfg.mode != "greedy":
        raise LwtError(f"trainer.prefix_views={views} caches the augmented views a greedy stage's frozen prefix "
                       f"sees; mode={cfg.mode} has no frozen prefix: leave trainer.prefix_views null")
    if not cfg.data.augment:
        raise LwtError(f"trainer.prefix_views={views} caches augmented views, but data.augment=false: the training "
                       "images are then cached as they are (trainer.prefix_cache); leave trainer.prefix_views null")
    if cfg.trainer.prefix_cache == "never":
        raise LwtError(f"trainer.prefix_views={views} is a prefix cache, but trainer.prefix_cache=never turns "
                       "caching off; give trainer.prefix_cache=auto (or always), or leave trainer.prefix_views null")
