"""What every lwt DataModule shares: uint8 tensors in memory, seeded splits, batched augmentation.

A dataset subclass only says how to read its images (``load``) and how to augment a batch
(``augment``); the splits, loaders and the on-device preprocessing live here once.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch import Tensor

from lwt.config import DataConfig
from lwt.data.augment import normalize
from lwt.data.tensors import TensorPairs, batch_loader, split_indices
from lwt.errors import LwtError


class InMemoryDataModule(L.LightningDataModule):
    """Seeded train/val split, class-balanced train subset, batched augmentation after transfer.

    The validation set is carved out of the training images (it drives curriculum decisions); the
    dataset's own held-out split is the test set. Batches stay uint8 until ``on_after_batch_transfer``,
    where they are augmented (training only) and normalized on the training device.
    Subclasses set ``num_classes``, ``input_shape`` and ``mean``/``std`` (by the end of ``load``).
    """

    num_classes: int
    input_shape: tuple[int, int, int]

    def __init__(self, cfg: DataConfig, seed: int = 0, root: Path | str = "data"):
        super().__init__()
        self.cfg, self.seed, self.root = cfg, seed, Path(root)
        self.mean: Tensor | None = None  # (3,) in [0, 1] units
        self.std: Tensor | None = None
        self.train_set = self.val_set = self.test_set = None
        self.val_index = self.test_index = None  # (N,) positions in the dataset's training / test split
        self._resident: dict[str, TensorPairs] = {}  # data.on_device: the splits moved to the device

    def load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(train_x, train_y, test_x, test_y): uint8 (N, 3, H, W) images, int64 (N,) labels."""
        raise NotImplementedError

    def augment(self, x: Tensor) -> Tensor:
        """A uint8 training batch (B, 3, H, W) -> an augmented batch of the same shape and dtype."""
        return x

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        train_x, train_y, test_x, test_y = self.load()
        train_idx, val_idx = split_indices(train_y, self.cfg.val_size, self.cfg.train_subset, self.seed)
        self.train_set = TensorPairs(train_x[train_idx], train_y[train_idx])
        self.val_set = TensorPairs(train_x[val_idx], train_y[val_idx])
        keep = torch.arange(len(test_y))
        if self.cfg.test_subset is not None and self.cfg.test_subset > len(test_y):
            raise LwtError(f"data.test_subset={self.cfg.test_subset} is more than the test set's {len(test_y)} "
                           f"images; valid: 1 to {len(test_y)}, or null for the full test set")
        if self.cfg.test_subset is not None:
            keep = torch.randperm(len(test_y), generator=torch.Generator().manual_seed(self.seed))
            keep = keep[: self.cfg.test_subset]
            test_x, test_y = test_x[keep], test_y[keep]
        self.test_set = TensorPairs(test_x, test_y)
        # each image's position in the dataset's own training / test split: per-image records name their images
        self.val_index, self.test_index = val_idx.numpy(), keep.numpy()

    def resident(self, split: str, device: torch.device | None) -> TensorPairs:
        """The split batches are drawn from: with ``data.on_device``, its images moved once to ``device`` (the
        training device), so a batch is one gather there and no host-to-device copy; the split itself stays
        on the host for everything else (analysis, caches). The values are the same either way."""
        data = getattr(self, f"{split}_set")
        if not self.cfg.on_device or device is None or device.type == "cpu":
            return data
        held = self._resident.get(split)
        if held is None or held.x.device != device or len(held) != len(data):
            held = self._resident[split] = TensorPairs(data.x.to(device), data.y.to(device))
        return held

    def _device(self) -> torch.device | None:
        return self.trainer.strategy.root_device if self.trainer is not None else None

    def train_dataloader(self):
        return batch_loader(self.resident("train", self._device()), self.cfg.batch_size, shuffle=True)

    def val_dataloader(self):
        return batch_loader(self.resident("val", self._device()), self.cfg.eval_batch_size, shuffle=False)

    def test_dataloader(self):
        return batch_loader(self.resident("test", self._device()), self.cfg.eval_batch_size, shuffle=False)

    def preprocess(self, x: Tensor, train: bool) -> Tensor:
        """uint8 batch -> normalized float batch, augmented when ``train`` and augmentation is on."""
        if train and self.cfg.augment:
            x = self.augment(x)
        return normalize(x, self.mean, self.std)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, y = batch
        training = self.trainer is not None and self.trainer.training
        return self.preprocess(x, train=training), y
