"""``lwt data prepare NAME --root DIR``: turn a downloaded archive into the tree lwt's loaders read
(docs/data.md says what each dataset becomes).

Find the archive (``--archive``, else its usual name under ``--root``, else ``--download``), check its md5,
unpack and rearrange it in a hidden staging folder under ``--root``, then rename the finished folder into
place: a failure leaves no partial tree, and nothing is written outside ``--root``.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

from lwt.data.check import md5sum
from lwt.data.sources import Archive, archive_for, describe
from lwt.errors import LwtError

DATASETS = ("cifar10", "cifar100", "tiny-imagenet", "imagenette", "imagenet-subset")


def writable_root(root: Path | str) -> Path:
    """``--root`` as an absolute path, refused when it cannot be written (e.g. a read-only shared copy)."""
    root = Path(root).expanduser().resolve()
    probe = root
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise LwtError(f"--root {root}: {probe} is not a folder this user can write to; pick another --root")
    return root


@contextmanager
def staging(root: Path, folder: str):
    """A hidden folder under ``root`` (same file system, so the final rename is atomic), always removed."""
    stage = root / f".{folder}.prepare-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir()
    except OSError as e:
        raise LwtError(f"--root {root}: cannot write there ({e.strerror}); pick another --root") from None
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def publish(built: Path, dest: Path) -> None:
    """Move the finished tree into place; refuses to replace anything that appeared meanwhile."""
    try:
        os.rename(built, dest)
    except OSError as e:
        raise LwtError(f"cannot move the prepared tree to {dest}: {e.strerror}; nothing was changed there") from None


def local_archive(a: Archive, root: Path, archive: str | None, download: bool) -> Path | None:
    """The archive named by ``--archive``, else the one under ``root``; None when ``download`` should fetch it."""
    if archive is not None:
        path = Path(archive).expanduser().resolve()
        if not path.is_file():
            raise LwtError(f"--archive {path}: no such file (expected {a.filename} from {a.url})")
        return path
    if (root / a.filename).is_file():
        return root / a.filename
    if not download:
        raise LwtError(f"{a.title} archive not found: download {describe(a)} and put it at {root / a.filename}, "
                       f"or name it with --archive PATH, or pass --download (needs a network)")
    return None


def fetch(a: Archive, root: Path, stage: Path) -> Path:
    """Download into ``stage`` (a failed download leaves nothing under ``root``)."""
    from torchvision.datasets.utils import download_url

    print(f"[lwt] downloading {a.url} into {root}", flush=True)
    try:
        download_url(a.url, str(stage), filename=a.filename)
    except (OSError, RuntimeError) as e:  # URLError is an OSError: no network, DNS, HTTP errors
        raise LwtError(f"downloading {a.url} failed ({e}); download {describe(a)} by hand and put it at "
                       f"{root / a.filename}") from None
    return stage / a.filename


def check_md5(path: Path, a: Archive, md5: str | None) -> None:
    """``md5``: the caller's expected value (``none`` skips the check); default the published one."""
    if md5 is not None and md5.lower() == "none":
        return
    want = (md5 or a.md5).lower()
    got = md5sum(path)
    if got != want:
        whose = "the given --md5" if md5 else f"the published {want} ({a.md5_source})"
        raise LwtError(f"{path}: md5 {got} differs from {whose}: the file is damaged or another version; "
                       f"download it again from {a.url}, or pass --md5 {got} if you trust this copy")


def check_member(archive: Path, name: str, into: Path) -> None:
    """LwtError unless archive member ``name`` is a relative path that stays inside ``into`` once unpacked."""
    parts = name.replace("\\", "/").split("/")
    inside = (into / name).resolve().is_relative_to(into.resolve())
    if name.startswith(("/", "\\")) or ".." in parts or (parts[0][1:2] == ":") or "\0" in name or not inside:
        raise LwtError(f"{archive}: refused, it holds an unsafe member {name!r} (it points outside the archive's "
                       "folder); nothing was unpacked")


def unpack(path: Path, into: Path, folder: str) -> Path:
    """Unpack a .tar.gz/.tgz or .zip into ``into``; returns ``into / folder``, which it must hold."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():  # zipfile strips these too; refusing says the archive is suspect
                    check_member(path, name, into)
                z.extractall(into)
        else:
            with tarfile.open(path) as t:
                for name in t.getnames():
                    check_member(path, name, into)
                t.extractall(into, filter="data")  # also refuses links out and devices
    except tarfile.FilterError as e:  # an absolute path, '..', a link out of the folder, a device file
        raise LwtError(f"{path}: refused, it holds an unsafe member ({e}); is it the right archive?") from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise LwtError(f"{path} is not a readable .tar.gz or .zip archive ({type(e).__name__}: {e}); "
                       "download it again") from None
    tree = into / folder
    if not tree.is_dir():
        held = sorted(p.name for p in into.iterdir() if not p.name.startswith("."))
        raise LwtError(f"{path} does not unpack to {folder}/ (it holds {', '.join(held[:5]) or 'nothing'}); "
                       "is it the right archive?")
    return tree


def check_cifar(name: str, tree: Path) -> str:
    from lwt.data.cifar import LAYOUTS, _read_pickle

    layout = LAYOUTS[name]
    counts = []
    for files in (layout.train_files, layout.test_files):
        n = 0
        for f in files:
            if not (tree / f).is_file():
                raise LwtError(f"the archive lacks {layout.folder}/{f}; is it the python version of {layout.title}?")
            n += len(_read_pickle(tree / f, layout.label_key, layout.num_classes)[1])
        counts.append(n)
    return f"{layout.num_classes} classes, {counts[0]:,} train and {counts[1]:,} test images"


def plain_name(name: str) -> bool:
    """One file or folder name: no path separator, not ``.`` or ``..``, no NUL."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in ("/", "\\", "\0", os.sep))


def refolder_tiny_val(tree: Path) -> None:
    """``val/images/*.JPEG`` + ``val/val_annotations.txt`` -> ``val/<wnid>/images/*.JPEG`` + per-class boxes."""
    notes = tree / "val" / "val_annotations.txt"
    if not notes.is_file():
        raise LwtError("the archive lacks tiny-imagenet-200/val/val_annotations.txt; is it Tiny-ImageNet-200?")
    classes = {p.name for p in (tree / "train").iterdir() if p.is_dir()} if (tree / "train").is_dir() else set()
    rows, seen = [], set()
    for n, line in enumerate(notes.read_text().splitlines(), 1):  # all checked before anything is moved
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2 or not plain_name(parts[1]) or parts[1] not in classes:
            raise LwtError(f"val_annotations.txt:{n}: expected 'image wnid box' with a wnid of train/, got {line!r}")
        if not plain_name(parts[0]):
            raise LwtError(f"val_annotations.txt:{n}: image name {parts[0]!r} is not a plain file name (no path "
                           "separators, not '.' or '..'); refused, nothing was moved")
        image = tree / "val" / "images" / parts[0]
        if image.is_symlink() or not image.is_file():
            raise LwtError(f"val_annotations.txt:{n} names {parts[0]}, which is not in val/images/")
        if parts[0] in seen:
            raise LwtError(f"val_annotations.txt:{n} names {parts[0]} a second time")
        seen.add(parts[0])
        rows.append(parts)
    boxes: dict[str, list[str]] = {}
    for parts in rows:
        image = tree / "val" / "images" / parts[0]
        target = tree / "val" / parts[1] / "images"
        target.mkdir(parents=True, exist_ok=True)
        os.rename(image, target / parts[0])
        boxes.setdefault(parts[1], []).append("\t".join(parts[:1] + parts[2:]))
    for wnid, rows in boxes.items():  # the same format as train/<wnid>/<wnid>_boxes.txt
        (tree / "val" / wnid / f"{wnid}_boxes.txt").write_text("\n".join(rows) + "\n")
    left = [p.name for p in (tree / "val" / "images").iterdir()]
    if left:
        raise LwtError(f"val/images/ holds {len(left)} images that val_annotations.txt does not label, e.g. {left[0]}")
    (tree / "val" / "images").rmdir()
    notes.unlink()  # its rows now live in the per-class boxes files; kept, it would mark the old layout


def tree_summary(tree: Path) -> str:
    from lwt.data.folders import held_out_split, train_split, tree_classes

    classes = tree_classes(tree)
    train, val = train_split(tree, classes), held_out_split(tree, classes)
    missing = sorted(set(classes) - {classes[i] for i in set(val.labels)})
    if missing:
        raise LwtError(f"val/ has no images of {len(missing)} classes of train/, e.g. {missing[0]}")
    return f"{len(classes)} classes, {len(train.files):,} train and {len(val.files):,} val images"


def prepare(name: str, root: Path | str, archive: str | None = None, download: bool = False,
            md5: str | None = None, size: str = "full") -> Path:
    """Prepare archive dataset ``name`` under ``root``; returns the tree (also when it was there already)."""
    if name == "imagenet-subset":  # nothing to download: built from the user's own ILSVRC copy
        raise LwtError("imagenet-subset is built from an ILSVRC copy: lwt.data.prepare_imagenet.prepare_subset "
                       "(lwt data prepare imagenet-subset --source DIR)")
    if name not in DATASETS:
        raise LwtError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    a = archive_for(name, size)
    root = writable_root(root)
    dest = root / a.folder
    if dest.exists():
        print(f"[lwt] {dest} exists already; nothing done (delete it to prepare it again)")
        return dest
    path = local_archive(a, root, archive, download)  # before anything is written: offline, nothing is
    with staging(root, a.folder) as stage:
        if path is None:
            path = fetch(a, root, stage)
        print(f"[lwt] checking the md5 of {path}", flush=True)
        check_md5(path, a, md5)
        print(f"[lwt] unpacking {path.name}", flush=True)
        tree = unpack(path, stage, a.folder)
        if name.startswith("cifar"):
            summary = check_cifar(name, tree)
        else:
            if name == "tiny-imagenet":
                refolder_tiny_val(tree)
            summary = tree_summary(tree)
        if path.parent == stage:  # a download: keep the verified archive, so a rerun need not fetch it again
            os.replace(path, root / a.filename)
        publish(tree, dest)
    use = f"data.name={name}" if name.startswith("cifar") else f"data.name=imagefolder data.path={a.folder}"
    print(f"[lwt] prepared {a.title} in {dest}: {summary}. Use: data.root={root} {use}")
    return dest
