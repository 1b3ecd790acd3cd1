"""Finding the images of a class-per-folder tree: which files, which labels, which classes.

Two layouts are read (``EXPECTED``; Tiny-ImageNet's is told apart by ``val/val_annotations.txt``, one
``image wnid box`` per line). Nothing here decodes an image; listing a 100k-image tree takes well under a second.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from lwt.errors import LwtError

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".webp", ".ppm", ".gif", ".tif", ".tiff")
TINY_ANNOTATIONS = Path("val") / "val_annotations.txt"
EXPECTED = ("train/<class>/*.JPEG and val/<class>/*.JPEG (ImageFolder), or train/<wnid>/images/*.JPEG, "
            "val/images/*.JPEG and val/val_annotations.txt (Tiny-ImageNet)")


@dataclass
class Split:
    files: list[Path]
    labels: list[int]


def resolve_tree(root: Path | str, path: str | None) -> Path:
    """``data.root / data.path`` as an absolute path (``data.path`` may itself be absolute)."""
    return (Path(root) / path if path else Path(root)).expanduser().resolve()


def layout_of(tree: Path) -> str:
    """"tiny-imagenet" or "imagefolder"; fails when the tree or its train/ folder is missing."""
    if not tree.is_dir():
        raise LwtError(f"image tree not found: {tree}. Expected {EXPECTED} under it; set data.root "
                       f"(or LWT_DATA_DIR) and data.path, or prepare one with `lwt data prepare "
                       f"tiny-imagenet|imagenette|imagenet-subset --root DIR`")
    if not (tree / "train").is_dir():
        raise LwtError(f"{tree} has no train/ folder. Expected {EXPECTED}")
    return "tiny-imagenet" if (tree / TINY_ANNOTATIONS).is_file() else "imagefolder"


def tree_classes(tree: Path) -> list[str]:
    """The class folders under ``train/``, sorted; fails on an empty tree."""
    layout_of(tree)
    classes = sorted(e.name for e in os.scandir(tree / "train") if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise LwtError(f"{tree / 'train'} holds no class folders. Expected {EXPECTED}")
    return classes


def read_class_list(path: Path | str) -> list[str]:
    """One class id per line; ``#`` starts a comment; blank lines are skipped. Returned sorted."""
    from lwt.config.files import find_file  # experiments/class_lists/... also names lwt's own lists when installed

    path = find_file(path, suffix=".txt") or Path(path)
    if not path.is_file():
        raise LwtError(f"class list not found: {path} (data.classes); expected a text file with one "
                       "class id (e.g. n01443537) per line")
    names = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    names = [n for n in names if n]
    bad = [n for n in names if len(n.split()) > 1]
    if bad:
        raise LwtError(f"{path}: one class id per line, got {bad[0]!r}")
    repeated = sorted(n for n, count in Counter(names).items() if count > 1)
    if repeated:
        raise LwtError(f"{path} names classes more than once: {', '.join(repeated[:5])}")
    if not names:
        raise LwtError(f"{path} names no classes")
    return sorted(names)


def select_classes(tree: Path, class_list: Path | str | None) -> list[str]:
    """The classes a run uses: the class list's (checked against the tree), else all of the tree's."""
    available = tree_classes(tree)
    if class_list is None:
        return available
    wanted = read_class_list(class_list)
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise LwtError(f"class list {class_list} names {len(unknown)} classes not in {tree / 'train'}: "
                       f"{', '.join(unknown[:5])}{more} (the tree has {len(available)} classes, "
                       f"e.g. {', '.join(available[:3])})")
    return wanted


def images_in(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted."""
    return sorted(Path(e.path) for e in os.scandir(folder)
                  if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES))


def class_folder(tree: Path, split: str, name: str) -> Path:
    """``split/<class>/``, or ``split/<class>/images/`` where that exists (Tiny-ImageNet's train layout)."""
    folder = tree / split / name
    return folder / "images" if (folder / "images").is_dir() else folder


def train_split(tree: Path, classes: list[str]) -> Split:
    """Images of ``train/<class>/`` (or ``train/<class>/images/``), labelled by position in ``classes``."""
    files, labels = [], []
    for label, name in enumerate(classes):
        folder = class_folder(tree, "train", name)
        found = images_in(folder)
        if not found:
            raise LwtError(f"{folder} holds no images (expected *.JPEG, *.png, ...)")
        files += found
        labels += [label] * len(found)
    return Split(files, labels)


def held_out_split(tree: Path, classes: list[str]) -> Split:
    """The tree's own val/ images of ``classes``: lwt's test set (its val set comes from train/)."""
    index = {name: i for i, name in enumerate(classes)}
    files, labels = [], []
    annotations = tree / TINY_ANNOTATIONS
    if annotations.is_file():
        present = {p.name for p in images_in(tree / "val" / "images")} if (tree / "val" / "images").is_dir() \
            else set()
        for n, line in enumerate(annotations.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise LwtError(f"{annotations}:{n}: expected 'image wnid [box]', got {line!r}")
            if parts[1] not in index:
                continue
            if parts[0] not in present:
                raise LwtError(f"{annotations}:{n} names {parts[0]}, which is not in {tree / 'val' / 'images'}")
            files.append(tree / "val" / "images" / parts[0])
            labels.append(index[parts[1]])
    elif (tree / "val").is_dir():
        for name, label in index.items():
            folder = class_folder(tree, "val", name)
            found = images_in(folder) if folder.is_dir() else []
            files += found
            labels += [label] * len(found)
    else:
        raise LwtError(f"{tree} has no val/ folder (used as the test set). Expected {EXPECTED}")
    if not files:
        raise LwtError(f"{tree / 'val'} holds no images of the selected classes ({', '.join(classes[:3])}, ...)")
    return Split(files, labels)
