"""Batches straight out of in-memory tensors, and the seeded splits every dataset shares."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler


class TensorPairs(Dataset):
    """Indexed by a list of indices: returns a whole batch ``(x[idx], y[idx])`` in one gather."""

    def __init__(self, x: Tensor, y: Tensor):
        assert len(x) == len(y)
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, idx):
        idx = torch.as_tensor(idx)
        return self.x[idx], self.y[idx]


class RankBatches(Sampler):
    """Index lists of up to ``batch_size``: all of ``n`` items in one process, this rank's share under DDP.

    The order comes from the global torch RNG, so ``seed`` fixes it and a resumed run draws it again. Every
    rank draws the same order, pads it to a multiple of the world size by repeating its start and keeps
    every world-th index, as DistributedSampler does; so all ranks run equally many, equally sized batches.
    Lightning's sampler replacement stays off (``use_distributed_sampler=False``): it would split the batches
    into single images.
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool):
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle

    @staticmethod
    def _world() -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def _indices(self) -> Tensor:
        order = torch.randperm(self.n) if self.shuffle else torch.arange(self.n)
        rank, world = self._world()
        if world == 1:
            return order
        padded = torch.cat([order, order[: (-self.n) % world]])
        return padded[rank::world]

    def __iter__(self):
        yield from self._indices().split(self.batch_size)

    def __len__(self) -> int:
        _, world = self._world()
        return math.ceil(math.ceil(self.n / world) / self.batch_size)


def batch_loader(data: TensorPairs, batch_size: int, shuffle: bool) -> DataLoader:
    """A DataLoader whose sampler yields index lists, so no per-image collation happens."""
    return DataLoader(data, sampler=RankBatches(len(data), batch_size, shuffle), batch_size=None)


def split_indices(labels: Tensor, val_size: int, subset: int | None, seed: int) -> tuple[Tensor, Tensor]:
    """Seeded split of a training set: (train_idx, val_idx).

    The validation images are carved out first, so changing ``subset`` never changes them. The
    training subset is class-balanced: classes take turns in the seeded order until ``subset`` are
    taken (class sizes may differ by one).
    """
    from lwt.errors import LwtError

    n = len(labels)
    if val_size >= n:
        raise LwtError(f"data.val_size={val_size} leaves no training images (the training set has {n})")
    if subset is not None and subset > n - val_size:  # clamping it would leave a run named for what it lacks
        raise LwtError(f"data.train_subset={subset} is more than the {n - val_size} training images left after "
                       f"data.val_size={val_size} (of {n}); give at most {n - val_size}, or null for all of them")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, pool = perm[:val_size], perm[val_size:]
    if subset is None or subset >= len(pool):
        return pool, val_idx
    return balanced_subset(pool, labels, subset), val_idx


def balanced_subset(pool: Tensor, labels: Tensor, size: int) -> Tensor:
    """The first ``size`` of ``pool`` taken round-robin over classes (keeps ``pool``'s order per class)."""
    pool_labels = labels[pool]
    # rank of each image within its class, in pool order; sorting by rank interleaves the classes
    rank = torch.zeros_like(pool)
    for c in pool_labels.unique():
        members = (pool_labels == c).nonzero().squeeze(1)
        rank[members] = torch.arange(len(members))
    order = torch.argsort(rank * (int(pool_labels.max()) + 1) + pool_labels, stable=True)
    return pool[order[:size]]
