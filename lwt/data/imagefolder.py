"""ImageNet subsets (ImageFolder or Tiny-ImageNet trees) as uint8 tensors in memory.

The first run decodes every image once (RGB, short side resized to ``data.image_size``, centre square) and
saves it with the training images' per-channel mean/std as one file under ``$LWT_CACHE_DIR`` (default
``./data/cache``), keyed on the tree's path, the classes, the image size and the number of files; later runs
load it in about a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from lwt.config import DataConfig
from lwt.data.augment import random_crop_flip, random_resized_crop_flip
from lwt.data.base import InMemoryDataModule
from lwt.data.folders import Split, held_out_split, resolve_tree, select_classes, train_split
from lwt.errors import LwtError

CACHE_VERSION = 1  # bump when the decoding changes, so old cache files are not reused


def cache_dir() -> Path:
    return Path(os.environ.get("LWT_CACHE_DIR") or Path("data") / "cache")


def decode_image(path: Path, size: int) -> np.ndarray:
    """One image file -> (size, size, 3) uint8: RGB, short side resized to ``size``, centre square."""
    try:
        with Image.open(path) as im:
            im.draft("RGB", (size, size))  # JPEG: let libjpeg decode at a reduced scale (>= size)
            im = im.convert("RGB")  # grayscale, palette and CMYK images become 3-channel
            w, h = im.size
            s = min(w, h)
            box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
            # PIL's bilinear filter widens with the scale factor, so downscaling is antialiased
            return np.asarray(im.resize((size, size), Image.Resampling.BILINEAR, box=box))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise LwtError(f"cannot read image {path}: {e}. Replace or delete the file") from None


def decode_all(files: list[Path], size: int) -> Tensor:
    """Files -> uint8 (N, 3, size, size). PIL releases the GIL while decoding, so threads help."""
    out = np.empty((len(files), size, size, 3), dtype=np.uint8)

    def work(i: int) -> None:
        out[i] = decode_image(files[i], size)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with ThreadPoolExecutor(min(8, cores)) as pool:
        for _ in pool.map(work, range(len(files))):
            pass  # re-raises the first LwtError
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def channel_stats(x: Tensor, chunk: int = 2048) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std of uint8 (N, 3, H, W) images in [0, 1] units, as float32 (3,); summed in
    float64 chunks, so a 100k-image set never needs a float copy of itself."""
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk].to(torch.float64).div_(255.0)
        total += part.sum(dim=(0, 2, 3))
        squares += part.square().sum(dim=(0, 2, 3))
    count = x.numel() // x.shape[1]
    mean = total / count
    std = (squares / count - mean.square()).clamp_(min=0).sqrt()
    return mean.float(), std.float()


def cache_file(tree: Path, classes: list[str], size: int, num_files: int) -> Path:
    key = json.dumps([CACHE_VERSION, str(tree), classes, size, num_files])
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return cache_dir() / f"{tree.name}-{len(classes)}cls-{size}px-{digest}.pt"


def build_cache(path: Path, train: Split, test: Split, classes: list[str], size: int) -> dict:
    """Decode both splits, compute the training images' mean/std, save atomically, return the dict."""
    start = time.perf_counter()
    print(f"[lwt] decoding {len(train.files) + len(test.files):,} images at {size} px into {path} "
          "(once; later runs load the file)", flush=True)
    train_x = decode_all(train.files, size)
    mean, std = channel_stats(train_x)
    data = {
        "train_x": train_x, "train_y": torch.tensor(train.labels, dtype=torch.int64),
        "test_x": decode_all(test.files, size), "test_y": torch.tensor(test.labels, dtype=torch.int64),
        "classes": classes, "mean": mean, "std": std,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)  # readers never see a half-written file; concurrent builders both succeed
    print(f"[lwt] image cache built in {time.perf_counter() - start:.1f} s", flush=True)
    return data


def read_cache(path: Path) -> dict | None:
    """The cached tensors, or None when the file is missing or unreadable (it is then rebuilt)."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as e:
        # a truncated or foreign file (torch.load raises these): rebuilding is always safe
        warnings.warn(f"ignoring unreadable image cache {path} ({type(e).__name__}); rebuilding it", stacklevel=2)
        return None


class ImageFolderDataModule(InMemoryDataModule):
    """An ImageFolder / Tiny-ImageNet tree, optionally restricted to a class list, at one image size.

    ``prepare_data`` builds the cache (Lightning runs it once per node, so DDP ranks do not all
    decode); ``setup`` loads it, building it too when ``prepare_data`` was skipped.
    """

    def __init__(self, cfg: DataConfig, seed: int = 0, root: Path | str = "data"):
        super().__init__(cfg, seed, root)
        self.tree = resolve_tree(self.root, cfg.path)
        self.input_shape = (3, cfg.image_size, cfg.image_size)
        self._classes: list[str] | None = None
        self._splits: tuple[Split, Split] | None = None

    @property
    def classes(self) -> list[str]:
        """Class ids (wnids), sorted; label i is ``classes[i]``. Listing the tree is cheap."""
        if self._classes is None:
            self._classes = select_classes(self.tree, self.cfg.classes)
        return self._classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def splits(self) -> tuple[Split, Split]:
        if self._splits is None:
            self._splits = train_split(self.tree, self.classes), held_out_split(self.tree, self.classes)
        return self._splits

    def cache_path(self) -> Path:
        train, test = self.splits()
        return cache_file(self.tree, self.classes, self.cfg.image_size, len(train.files) + len(test.files))

    def prepare_data(self) -> None:
        if self.train_set is None and not self.cache_path().is_file():
            build_cache(self.cache_path(), *self.splits(), self.classes, self.cfg.image_size)

    def load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        path = self.cache_path()
        data = read_cache(path) or build_cache(path, *self.splits(), self.classes, self.cfg.image_size)
        self.mean, self.std = data["mean"], data["std"]
        return data["train_x"], data["train_y"], data["test_x"], data["test_y"]

    def augment(self, x: Tensor) -> Tensor:
        if self.cfg.crop == "resized":
            return random_resized_crop_flip(x)
        return random_crop_flip(x, padding=max(1, self.cfg.image_size // 8))  # 4 px at 32, 8 px at 64
