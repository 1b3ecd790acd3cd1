"""Small real dataset files that tests write themselves: CIFAR-100 pickles and image trees.

The image trees encode each image's class in its colour, so a test can check that decoding kept
every label: class i of the RGB classes is dominated by channel i; the last class is grayscale.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

TREE_CLASSES = ("n00000001", "n00000002", "n00000003", "n00000004")  # the last one is grayscale
SIZES = ((40, 40), (48, 36), (36, 48))  # (width, height): square and both non-square shapes


def write_cifar100(root: Path, per_class: int = 2, test_per_class: int = 1, seed: int = 0) -> dict:
    """``root/cifar-100-python/{train,test,meta}`` in the official layout; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    written = {}
    for split, n in (("train", per_class), ("test", test_per_class)):
        labels = np.tile(np.arange(100), n)
        data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        entry = {"filenames": [f"img_{i}.png" for i in range(len(labels))], "batch_label": f"{split} batch",
                 "fine_labels": labels.tolist(), "coarse_labels": (labels // 5).tolist(), "data": data}
        with open(folder / split, "wb") as f:
            pickle.dump(entry, f, protocol=2)  # the official files are Python-2 pickles
        written[split] = (data.reshape(-1, 3, 32, 32), labels)
    meta = {"fine_label_names": [f"class{i}" for i in range(100)],
            "coarse_label_names": [f"super{i}" for i in range(20)]}
    with open(folder / "meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return written


def class_colour(label: int) -> tuple[int, int, int] | int:
    if label == len(TREE_CLASSES) - 1:
        return 100  # grayscale ("L") images
    colour = [40, 40, 40]
    colour[label] = 220
    return tuple(colour)


def _image(label: int, i: int) -> Image.Image:
    colour = class_colour(label)
    return Image.new("L" if isinstance(colour, int) else "RGB", SIZES[i % len(SIZES)], colour)


def write_image_tree(tree: Path, layout: str, train_per_class: int = 4, val_per_class: int = 2) -> None:
    """An ImageFolder ("imagefolder") or Tiny-ImageNet ("tiny-imagenet") tree of solid-colour images."""
    for label, name in enumerate(TREE_CLASSES):
        folder = tree / "train" / name / ("images" if layout == "tiny-imagenet" else "")
        folder.mkdir(parents=True)
        for i in range(train_per_class):
            suffix = "JPEG" if i % 2 == 0 else "png"  # both formats in one class
            _image(label, i).save(folder / f"{name}_{i}.{suffix}")
    lines = []
    for label, name in enumerate(TREE_CLASSES):
        for i in range(val_per_class):
            if layout == "tiny-imagenet":
                folder, file = tree / "val" / "images", f"val_{label * val_per_class + i}.JPEG"
                lines.append(f"{file}\t{name}\t0\t0\t30\t30")
            else:
                folder, file = tree / "val" / name, f"val_{i}.JPEG"
            folder.mkdir(parents=True, exist_ok=True)
            _image(label, i).save(folder / file)
    if layout == "tiny-imagenet":
        (tree / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
        (tree / "wnids.txt").write_text("\n".join(TREE_CLASSES) + "\n")
