"""CIFAR-10/100 as uint8 tensors in memory, read from torchvision's pickle layout.

The pickles are read directly (not through ``torchvision.datasets.CIFAR10``) because that class
refuses copies whose md5 differs from the official files, as the rebuilt copy in ../shared/data does.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lwt.config import DataConfig
from lwt.data.augment import random_crop_flip
from lwt.data.base import InMemoryDataModule
from lwt.errors import LwtError


@dataclass(frozen=True)
class CifarLayout:
    title: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    torchvision_class: str


LAYOUTS = {
    "cifar10": CifarLayout(
        "CIFAR-10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
        "labels", 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "CIFAR10",
    ),
    "cifar100": CifarLayout(
        "CIFAR-100", "cifar-100-python", ("train",), ("test",),
        "fine_labels", 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), "CIFAR100",
    ),
}


def _missing_message(name: str, root: Path, missing: list[str]) -> str:
    layout = LAYOUTS[name]
    folder = root / layout.folder
    what = f"{folder} does not exist" if not folder.is_dir() else f"{folder} lacks {', '.join(missing)}"
    return (f"{layout.title} not found: {what} (expected {', '.join(layout.train_files + layout.test_files)} "
            f"there). Point data.root or LWT_DATA_DIR at the folder that contains {layout.folder}/, or pass "
            f"data.download=true to download it (offline: `lwt data prepare {name} --root DIR` says what to fetch).")


class _ArraysOnly(pickle.Unpickler):
    """The CIFAR pickles hold dicts, lists, str, bytes, ints and numpy arrays, nothing else: any other global
    (os.system, builtins.eval, ...) is refused, so a crafted file cannot run code when it is read."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("_codecs", "encode")}  # encode: bytes in protocol 2

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which no CIFAR file holds (refused unread)")
        return super().find_class(module, name)


def read_cifar_pickle(path: Path):
    """A CIFAR pickle through ``_ArraysOnly``; errors are the caller's to report."""
    with open(path, "rb") as f:
        return _ArraysOnly(f, encoding="latin1").load()


def _read_pickle(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        entry = read_cifar_pickle(path)
        data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(entry[label_key], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, IndexError) as e:
        raise LwtError(f"{path} is corrupt or truncated, or not a CIFAR file ({type(e).__name__}: {e}); "
                       "replace it, or delete it and pass data.download=true") from None
    if len(data) != len(labels):
        raise LwtError(f"{path} is corrupt: {len(data)} images but {len(labels)} labels")
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise LwtError(f"{path} is corrupt: {int(bad.sum())} label(s) outside [0, {num_classes}) (e.g. "
                       f"{int(labels[bad][0])} at index {int(bad.nonzero()[0][0])}); replace it")
    return data, labels


def ensure_cifar(name: str, root: Path, download: bool = False) -> Path:
    """The dataset's folder, downloaded first with torchvision when missing and ``download`` is set."""
    layout = LAYOUTS[name]
    folder = root / layout.folder
    missing = [f for f in layout.train_files + layout.test_files if not (folder / f).is_file()]
    if missing and download:
        import torchvision

        try:
            getattr(torchvision.datasets, layout.torchvision_class)(str(root), train=True, download=True)
        except (OSError, RuntimeError) as e:  # no network (URLError is an OSError), bad archive
            raise LwtError(f"{_missing_message(name, root, missing)} Downloading it failed: {e}") from None
        missing = [f for f in layout.train_files + layout.test_files if not (folder / f).is_file()]
    if missing:
        raise LwtError(_missing_message(name, root, missing))
    return folder


def load_cifar(name: str, root: Path, download: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(train_x, train_y, test_x, test_y); images uint8 (N, 3, 32, 32), labels int64."""
    layout = LAYOUTS[name]
    folder = ensure_cifar(name, root, download)

    def read(files):
        parts = [_read_pickle(folder / f, layout.label_key, layout.num_classes) for f in files]
        return (torch.from_numpy(np.concatenate([p[0] for p in parts])),
                torch.from_numpy(np.concatenate([p[1] for p in parts])))

    return (*read(layout.train_files), *read(layout.test_files))


class CifarDataModule(InMemoryDataModule):
    """CIFAR-10/100 from the pickles; mean/std are the published training-set constants."""

    def __init__(self, cfg: DataConfig, seed: int = 0, root: Path | str = "data"):
        super().__init__(cfg, seed, root)
        self.layout = LAYOUTS[cfg.name]
        self.num_classes = self.layout.num_classes
        self.input_shape = (3, 32, 32)
        self.mean, self.std = torch.tensor(self.layout.mean), torch.tensor(self.layout.std)

    def prepare_data(self) -> None:
        ensure_cifar(self.cfg.name, self.root, self.cfg.download)  # checks, downloads on request

    def load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return load_cifar(self.cfg.name, self.root, self.cfg.download)

    def augment(self, x: Tensor) -> Tensor:
        return random_crop_flip(x, padding=4)  # (B, 3, 32, 32) uint8
