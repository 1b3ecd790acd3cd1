"""``lwt data prepare imagenet-subset``: a class list's classes out of an ILSVRC-2012 tree the user has
(ImageNet needs an account), as ``ROOT/<name>/{train,val}/<wnid>/`` for ``data.name=imagefolder``.

The source layouts read (``--source``, see docs/data.md): ImageFolder with val re-foldered; Kaggle's ILSVRC
(``ILSVRC/Data/CLS-LOC`` and ``LOC_val_solution.csv``); or a flat ``val/`` labelled by ``--val-labels``.
Files are copied, or linked (``--link``); the source is only read.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lwt.data.folders import IMAGE_SUFFIXES, images_in, read_class_list
from lwt.data.prepare import publish, staging, writable_root
from lwt.errors import LwtError

LINKS = ("copy", "hardlink", "symlink")
KAGGLE = Path("ILSVRC") / "Data" / "CLS-LOC"
SOLUTION = "LOC_val_solution.csv"


def read_val_labels(path: Path) -> dict[str, str]:
    """Image file name -> wnid, from a LOC_val_solution.csv or 'file wnid' (or 'file,wnid') lines."""
    if not path.is_file():
        raise LwtError(f"--val-labels {path}: no such file")
    labels = {}
    lines = path.read_text().splitlines()
    kaggle = bool(lines) and lines[0].startswith("ImageId")
    for n, line in enumerate(lines[1:] if kaggle else lines, 2 if kaggle else 1):
        parts = line.replace(",", " ").split()
        if not parts:
            continue
        if len(parts) < 2 or not (parts[1].startswith("n") and parts[1][1:].isdigit()):
            raise LwtError(f"{path}:{n}: expected 'image wnid ...' (e.g. ILSVRC2012_val_00000001.JPEG n01751748), "
                           f"got {line[:80]!r}")
        image = parts[0] if parts[0].lower().endswith(IMAGE_SUFFIXES) else parts[0] + ".JPEG"
        labels[image] = parts[1]
    if not labels:
        raise LwtError(f"{path} labels no images")
    return labels


def locate(source: Path, val_labels: str | None) -> tuple[Path, dict[str, list[Path]] | None, Path | None]:
    """(the folder holding train/ and val/, val images per wnid when val/ is foldered, the val labels file)."""
    if not source.is_dir():
        raise LwtError(f"--source {source}: no such folder (expected an ILSVRC-2012 tree: SRC/train/<wnid>/ and "
                       f"SRC/val/, or Kaggle's SRC/{KAGGLE}/)")
    base = source / KAGGLE if (source / KAGGLE / "train").is_dir() else source
    if not (base / "train").is_dir() or not (base / "val").is_dir():
        raise LwtError(f"--source {source} has no train/ and val/ folders (nor {KAGGLE}/train and val); "
                       "point it at the folder that holds them")
    if val_labels is not None:
        return base, None, Path(val_labels).expanduser()
    folders = [e for e in os.scandir(base / "val") if e.is_dir()]
    if folders:
        return base, {e.name: images_in(Path(e.path)) for e in folders}, None
    for candidate in (source / SOLUTION, base / SOLUTION):
        if candidate.is_file():
            return base, None, candidate
    raise LwtError(f"{base / 'val'} holds its images in one folder and no labels were found: pass --val-labels "
                   f"FILE ({SOLUTION} from Kaggle's ILSVRC, or lines 'ILSVRC2012_val_00000001.JPEG n01751748'), or "
                   "re-folder val with torchvision.datasets.ImageNet(ROOT, split='val') (uses the devkit)")


def place(src: Path, dst: Path, link: str) -> None:
    if link == "symlink":
        os.symlink(src.resolve(), dst)
    elif link == "hardlink":
        try:
            os.link(src, dst)
        except OSError as e:
            raise LwtError(f"cannot hard-link {src} into --root ({e.strerror}; hard links need one file system); "
                           "use --link copy or --link symlink") from None
    else:
        shutil.copyfile(src, dst)


def prepare_subset(root: Path | str, source: str | None, classes: str, name: str | None = None,
                   val_labels: str | None = None, link: str = "copy") -> Path:
    """Copy (or link) the listed classes of an ILSVRC tree into ``root/<name>``; returns that folder."""
    if source is None:
        raise LwtError("imagenet-subset needs --source ILSVRC_DIR: ImageNet cannot be downloaded without an "
                       "account (https://image-net.org/download.php); lwt builds the subset from a copy you have")
    if link not in LINKS:
        raise LwtError(f"--link {link}: choose one of {', '.join(LINKS)}")
    wanted = read_class_list(classes)
    name = name or Path(classes).stem.replace("_", "-")
    if name != Path(name).name or name.startswith("."):
        raise LwtError(f"--name {name!r} must be a plain folder name (it becomes ROOT/{name})")
    root = writable_root(root)
    dest = root / name
    if dest.exists():
        print(f"[lwt] {dest} exists already; nothing done (delete it to prepare it again)")
        return dest
    source_path = Path(source).expanduser().resolve()
    base, val_folders, labels_file = locate(source_path, val_labels)
    train = {w: images_in(base / "train" / w) if (base / "train" / w).is_dir() else [] for w in wanted}
    if val_folders is None:
        flat = {p.name: p for p in images_in(base / "val")}
        val = {w: [] for w in wanted}
        for image, wnid in read_val_labels(labels_file).items():
            if wnid in val and image in flat:
                val[wnid].append(flat[image])
    else:
        val = {w: val_folders.get(w, []) for w in wanted}
    for split, found in (("train", train), ("val", val)):
        empty = [w for w in wanted if not found[w]]
        if empty:
            raise LwtError(f"{len(empty)} classes of {classes} have no {split} images in {base / split}: "
                           f"{', '.join(empty[:5])}{' ...' if len(empty) > 5 else ''}")
    with staging(root, name) as stage:
        tree = stage / name
        for split, found in (("train", train), ("val", val)):
            for wnid, files in found.items():
                (tree / split / wnid).mkdir(parents=True)
                for f in sorted(files):
                    place(f, tree / split / wnid / f.name, link)
        (tree / "wnids.txt").write_text("\n".join(wanted) + "\n")
        publish(tree, dest)
    n_train, n_val = sum(map(len, train.values())), sum(map(len, val.values()))
    print(f"[lwt] prepared {dest} from {base} ({link}): {len(wanted)} classes, {n_train:,} train and {n_val:,} "
          f"val images. Use: data.root={root} data.name=imagefolder data.path={name}")
    return dest
