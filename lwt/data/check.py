"""What a data root holds: which datasets lwt can read from it, how many images, which classes.

Used by ``scripts/check_data.py``. Problems are reported as warnings, never raised: the point is to
see everything that is (or is not) there in one pass. An md5 that differs from the official CIFAR
files is only a warning, since lwt reads the pickles directly (see lwt/data/cifar.py).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
from pathlib import Path

from lwt.data.cifar import LAYOUTS, _read_pickle, read_cifar_pickle
from lwt.data.folders import held_out_split, layout_of, train_split, tree_classes
from lwt.errors import LwtError

WARNING = "warning: "


def md5sum(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def official_md5s(name: str) -> dict[str, str]:
    """File name -> md5 of the official CIFAR files, as torchvision records them."""
    import torchvision

    cls = getattr(torchvision.datasets, LAYOUTS[name].torchvision_class)
    sums = dict(cls.train_list + cls.test_list)
    sums[cls.meta["filename"]] = cls.meta["md5"]
    return sums


def check_cifar(root: Path, name: str) -> list[str]:
    layout = LAYOUTS[name]
    folder = root / layout.folder
    if not folder.is_dir():
        return [f"{layout.title}: not found ({folder})"]
    lines, counts = [], {}
    for split, files in (("train", layout.train_files), ("test", layout.test_files)):
        counts[split] = 0
        for file in files:
            if not (folder / file).is_file():
                lines.append(f"{WARNING}{folder / file} is missing")
                continue
            try:
                counts[split] += len(_read_pickle(folder / file, layout.label_key, layout.num_classes)[1])
            except LwtError as e:
                lines.append(f"{WARNING}{e}")
    for file, want in official_md5s(name).items():
        if (folder / file).is_file() and (got := md5sum(folder / file)) != want:
            lines.append(f"{WARNING}{folder / file}: md5 {got} differs from the official {want} "
                         f"(torchvision's {layout.torchvision_class} would refuse it; lwt reads it anyway)")
    names = _class_names(folder, name)
    shown = f" ({', '.join(names[:4])}, ...)" if names else ""
    head = (f"{layout.title} ({folder}): {counts['train']:,} train + {counts['test']:,} test images, "
            f"{layout.num_classes} classes{shown}")
    return [head] + ["  " + line for line in lines]


def _class_names(folder: Path, name: str) -> list[str]:
    meta, key = ("batches.meta", "label_names") if name == "cifar10" else ("meta", "fine_label_names")
    try:
        return list(read_cifar_pickle(folder / meta)[key])
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError):
        return []


def check_tree(tree: Path) -> list[str]:
    """An ImageFolder / Tiny-ImageNet tree: layout, classes, train and val image counts (no decoding)."""
    try:
        layout = layout_of(tree)
        classes = tree_classes(tree)
        train = train_split(tree, classes)
        held_out = held_out_split(tree, classes)
    except LwtError as e:
        return [f"{tree.name}: image tree with problems", f"  {WARNING}{e}"]
    shown = ", ".join(classes[:3])
    return [f"{tree.name} ({tree}, {layout} layout): {len(classes)} classes ({shown}, ...), "
            + f"{len(train.files):,} train images, {len(held_out.files):,} val images (lwt's test set)"]


def survey(root: Path) -> list[str]:
    """Report lines for everything under ``root``; lines holding ``warning: `` are problems."""
    root = Path(root)
    if not root.is_dir():
        return [f"{WARNING}data root not found: {root}"]
    lines = [f"data root: {root.resolve()}"]
    for name in LAYOUTS:
        lines += check_cifar(root, name)
    cifar_folders = {layout.folder for layout in LAYOUTS.values()}
    trees = [root] if (root / "train").is_dir() else []
    trees += sorted(Path(e.path) for e in os.scandir(root)
                    if e.is_dir() and e.name not in cifar_folders and (Path(e.path) / "train").is_dir())
    for tree in trees:
        lines += check_tree(tree)
    if not trees:
        lines.append("ImageFolder / Tiny-ImageNet trees: none found (expected <root>/<name>/train/...)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Report which datasets a data root holds (always exits 0).")
    parser.add_argument("root", nargs="?", default=os.environ.get("LWT_DATA_DIR") or "data",
                        help="data root (default: $LWT_DATA_DIR, else ./data)")
    args = parser.parse_args(argv)
    for line in survey(Path(args.root)):
        print(line)
    return 0
