"""``lwt data prepare`` on small archives and ILSVRC-like trees built here from real images (CIFAR-10 pixels
and Tiny-ImageNet JPEGs from the shared data): the prepared tree loads with lwt's DataModules with the right
shapes, labels and class counts; wrong checksums, missing archives and bad sources fail with one line; a
failure leaves nothing behind and nothing is ever written outside --root."""

from __future__ import annotations

import io
import os
import pickle
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from lwt.cli import main
from lwt.config import DataConfig, load_config
from lwt.data import CifarDataModule, ImageFolderDataModule
from lwt.data.cifar import read_cifar_pickle
from lwt.data.folders import read_class_list
from lwt.data.prepare import md5sum, prepare
from lwt.data.prepare_imagenet import prepare_subset
from lwt.data.sources import ARCHIVES, IMAGENETTE
from lwt.errors import LwtError

from conftest import EXPERIMENTS

TINY_WNIDS = ("n01443537", "n01629819", "n01641577")  # the first three of tiny-imagenet-50


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LWT_CACHE_DIR", str(tmp_path / "cache"))


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` -> (size, mtime_ns): two equal snapshots mean nothing there was touched."""
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*")}


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def cifar_archive(data_root: Path, path: Path, name: str, per_file: int = 8) -> dict:
    """A CIFAR-10 or -100 tarball in the official python layout holding real CIFAR-10 images."""
    source = read_cifar_pickle(data_root / "cifar-10-batches-py" / "data_batch_1")
    images = np.asarray(source["data"], dtype=np.uint8)
    if name == "cifar10":
        folder, files, key = "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], "labels"
    else:
        folder, files, key = "cifar-100-python", ["train", "test"], "fine_labels"
    written = {}
    with tarfile.open(path, "w:gz") as tar:
        for i, f in enumerate(files):
            data = images[i * per_file:(i + 1) * per_file]
            labels = [(7 * (i * per_file + j)) % (10 if name == "cifar10" else 100) for j in range(per_file)]
            entry = {"batch_label": f, "data": data, key: labels}
            if name == "cifar100":
                entry["coarse_labels"] = [label // 5 for label in labels]
            add_bytes(tar, f"{folder}/{f}", pickle.dumps(entry, protocol=2))
            written[f] = (data.reshape(-1, 3, 32, 32), labels)
        add_bytes(tar, f"{folder}/{'batches.meta' if name == 'cifar10' else 'meta'}", pickle.dumps({}, protocol=2))
    return written


def tiny_val_rows(data_root: Path, per_class: int = 2) -> list[list[str]]:
    rows, counts = [], dict.fromkeys(TINY_WNIDS, 0)
    for line in (data_root / "tiny-imagenet-50" / "val" / "val_annotations.txt").read_text().splitlines():
        parts = line.split("\t")
        if parts[1] in counts and counts[parts[1]] < per_class:
            counts[parts[1]] += 1
            rows.append(parts)
    return rows


def real_jpegs(data_root: Path, wnid: str, n: int) -> list[Path]:
    return sorted((data_root / "tiny-imagenet-50" / "train" / wnid / "images").iterdir())[:n]


def tiny_zip(data_root: Path, path: Path, train_per_class: int = 4) -> list[list[str]]:
    """A tiny-imagenet-200.zip in the original layout: real JPEGs of three classes, val_annotations.txt."""
    src = data_root / "tiny-imagenet-50"
    rows = tiny_val_rows(data_root)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("tiny-imagenet-200/wnids.txt", "\n".join(TINY_WNIDS) + "\n")
        for wnid in TINY_WNIDS:
            for jpeg in real_jpegs(data_root, wnid, train_per_class):
                z.write(jpeg, f"tiny-imagenet-200/train/{wnid}/images/{jpeg.name}")
            z.writestr(f"tiny-imagenet-200/train/{wnid}/{wnid}_boxes.txt", "")
        for row in rows:
            z.write(src / "val" / "images" / row[0], f"tiny-imagenet-200/val/images/{row[0]}")
        z.writestr("tiny-imagenet-200/val/val_annotations.txt", "\n".join("\t".join(r) for r in rows) + "\n")
        z.write(src / "val" / "images" / rows[0][0], "tiny-imagenet-200/test/images/test_0.JPEG")  # unlabelled
    return rows


def image_tree_config(path: str, **kw) -> DataConfig:
    return DataConfig(**{"name": "imagefolder", "path": path, "image_size": 32, "val_size": 3, **kw})


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_tarball_prepares_to_what_the_loader_reads(data_root, tmp_path, name):
    root, archive = tmp_path / "root", tmp_path / "downloads" / ARCHIVES[name].filename
    archive.parent.mkdir()
    written = cifar_archive(data_root, archive, name)
    before = snapshot(tmp_path)
    prepare(name, root, archive=str(archive), md5=md5sum(archive))
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("root")} == before  # only --root changed
    assert sorted(p.name for p in root.iterdir()) == [ARCHIVES[name].folder]  # no staging folder left
    dm = CifarDataModule(DataConfig(name=name, val_size=4), root=root)
    dm.setup("fit")
    train_files = [f for f in written if f not in ("test_batch", "test")]
    assert len(dm.train_set) + len(dm.val_set) == 8 * len(train_files) and len(dm.test_set) == 8
    test = written["test_batch" if name == "cifar10" else "test"]
    assert torch.equal(dm.test_set.x, torch.from_numpy(test[0])) and dm.test_set.x.shape == (8, 3, 32, 32)
    assert dm.test_set.y.tolist() == test[1] and dm.num_classes == (10 if name == "cifar10" else 100)


def test_checksum_mismatch_is_refused_and_leaves_nothing(data_root, tmp_path, capsys):
    root = tmp_path / "root"
    root.mkdir()
    cifar_archive(data_root, root / "cifar-10-python.tar.gz", "cifar10")  # found under --root by its name
    assert main(["data", "prepare", "cifar10", "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"md5 {md5sum(root / 'cifar-10-python.tar.gz')} differs" in err
    assert "c58f30108f718f92721af3b95e74349a" in err and "--md5" in err
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-python.tar.gz"]
    with pytest.raises(LwtError, match="differs from the given --md5"):
        prepare("cifar10", root, md5="0" * 32)


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "tiny-imagenet", "imagenette"])
def test_offline_without_an_archive_names_url_file_and_destination(tmp_path, capsys, name):
    root = tmp_path / "nowhere"
    assert main(["data", "prepare", name, "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    a = ARCHIVES.get(name)
    url, md5 = (a.url, a.md5) if a else IMAGENETTE["full"]
    filename = url.rsplit("/", 1)[1]
    assert len(err.splitlines()) == 1 and url in err and md5 in err and str(root / filename) in err
    assert not root.exists()  # nothing was written, not even the root folder


@pytest.mark.slow
def test_tiny_imagenet_zip_is_refoldered_and_loads(data_root, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    rows = tiny_zip(data_root, root / "tiny-imagenet-200.zip")
    before = snapshot(data_root / "tiny-imagenet-50")
    tree = prepare("tiny-imagenet", root, md5=md5sum(root / "tiny-imagenet-200.zip"))
    assert snapshot(data_root / "tiny-imagenet-50") == before
    assert tree == root / "tiny-imagenet-200" and not (tree / "val" / "val_annotations.txt").exists()
    for image, wnid, *box in rows:
        assert (tree / "val" / wnid / "images" / image).is_file()
        assert "\t".join([image, *box]) in (tree / "val" / wnid / f"{wnid}_boxes.txt").read_text()
    dm = ImageFolderDataModule(image_tree_config("tiny-imagenet-200"), root=root)
    dm.setup("fit")
    assert dm.classes == list(TINY_WNIDS) and dm.num_classes == 3
    assert len(dm.train_set) + len(dm.val_set) == 12 and dm.test_set.x.shape == (6, 3, 32, 32)
    _, test = dm.splits()
    assert [dm.classes[y] for y in test.labels] == [dict((r[0], r[1]) for r in rows)[f.name] for f in test.files]
    # the same classes through the committed 50-class list (the experiments' option), a prefix of it here
    assert read_class_list(EXPERIMENTS / "class_lists" / "tiny_imagenet_50.txt")[:3] == list(TINY_WNIDS)


def test_tiny_imagenet_zip_without_annotations_is_refused(data_root, tmp_path):
    archive = tmp_path / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(archive, "w") as z:
        jpeg = real_jpegs(data_root, TINY_WNIDS[0], 1)[0]
        z.write(jpeg, f"tiny-imagenet-200/train/{TINY_WNIDS[0]}/images/{jpeg.name}")
    with pytest.raises(LwtError, match="lacks tiny-imagenet-200/val/val_annotations.txt"):
        prepare("tiny-imagenet", tmp_path / "root", archive=str(archive), md5="none")
    assert [p.name for p in (tmp_path / "root").iterdir()] == []  # the staging folder is gone


def annotated_zip(path: Path, rows: list[str], members: tuple[str, ...] = ()) -> None:
    """A small tiny-imagenet-200.zip of placeholder images whose val_annotations.txt holds ``rows``."""
    with zipfile.ZipFile(path, "w") as z:
        for wnid in TINY_WNIDS:
            z.writestr(f"tiny-imagenet-200/train/{wnid}/images/{wnid}_0.JPEG", b"jpeg")
        z.writestr("tiny-imagenet-200/val/images/val_0.JPEG", b"jpeg")
        z.writestr("tiny-imagenet-200/val/val_annotations.txt", "\n".join(rows) + "\n")
        for name in members:
            z.writestr(name, b"evil")


def prepare_error(capsys, root: Path, archive: Path) -> str:
    assert main(["data", "prepare", "tiny-imagenet", "--root", str(root), "--archive", str(archive),
                 "--md5", "none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lwt: error: ") and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("image, wnid", [
    ("../../../../../outside/keep.JPEG", TINY_WNIDS[0]),  # from val/images/ up out of the staging folder and --root
    ("{outside}/keep.JPEG", TINY_WNIDS[0]),  # an absolute path
    ("sub/val_0.JPEG", TINY_WNIDS[0]),
    ("sub\\val_0.JPEG", TINY_WNIDS[0]),
    ("..", TINY_WNIDS[0]),
    (".", TINY_WNIDS[0]),
    ("val_0.JPEG", "../../../../../outside"),
    ("val_0.JPEG", ".."),
])
def test_val_annotations_naming_paths_are_refused_and_nothing_outside_root_is_touched(tmp_path, capsys, image,
                                                                                      wnid):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.JPEG").write_text("the user's file")
    root, archive = tmp_path / "root", tmp_path / "tiny-imagenet-200.zip"
    image = image.format(outside=outside)
    annotated_zip(archive, [f"val_0.JPEG\t{TINY_WNIDS[0]}\t0\t0\t1\t1", f"{image}\t{wnid}\t0\t0\t1\t1"])
    before = snapshot(outside)
    line = prepare_error(capsys, root, archive)
    assert "val_annotations.txt:2" in line and (repr(image) in line or image in line or wnid in line)
    assert snapshot(outside) == before and (outside / "keep.JPEG").read_text() == "the user's file"
    assert [p.name for p in root.iterdir()] == []  # nothing moved into place, the staging folder is gone


@pytest.mark.parametrize("kind", ["zip", "tar"])
@pytest.mark.parametrize("member", ["../../outside/evil.txt", "tiny-imagenet-200/../../outside/evil.txt",
                                    "/tmp/lwt-evil-member.txt"])
def test_archive_members_that_lead_out_of_the_target_folder_are_refused(tmp_path, capsys, kind, member):
    outside = tmp_path / "outside"
    outside.mkdir()
    root, archive = tmp_path / "root", tmp_path / f"tiny-imagenet-200.{kind}"
    if kind == "zip":
        annotated_zip(archive, [f"val_0.JPEG\t{TINY_WNIDS[0]}\t0\t0\t1\t1"], members=(member,))
    else:
        with tarfile.open(archive, "w:gz") as tar:
            add_bytes(tar, f"tiny-imagenet-200/train/{TINY_WNIDS[0]}/images/a.JPEG", b"jpeg")
            add_bytes(tar, member, b"evil")
    line = prepare_error(capsys, root, archive)
    assert repr(member) in line or member in line
    assert list(outside.iterdir()) == [] and not Path("/tmp/lwt-evil-member.txt").exists()
    assert [p.name for p in root.iterdir()] == []


def test_imagenette_tgz_loads(data_root, tmp_path):
    archive = tmp_path / "imagenette2-160.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for wnid in TINY_WNIDS[:2]:
            for i, jpeg in enumerate(real_jpegs(data_root, wnid, 5)):
                tar.add(jpeg, f"imagenette2-160/{'val' if i == 4 else 'train'}/{wnid}/{jpeg.name}")
        add_bytes(tar, "imagenette2-160/noisy_imagenette.csv", b"path,noisy_labels_0\n")
    tree = prepare("imagenette", tmp_path / "root", archive=str(archive), md5=md5sum(archive), size="160px")
    dm = ImageFolderDataModule(image_tree_config("imagenette2-160", val_size=2), root=tmp_path / "root")
    dm.setup("fit")
    assert tree.name == "imagenette2-160" and dm.num_classes == 2
    assert len(dm.train_set) + len(dm.val_set) == 8 and dm.test_set.y.tolist() == [0, 1]


def ilsvrc_kaggle(data_root: Path, src: Path) -> dict[str, str]:
    """Kaggle's ILSVRC layout: four classes of real JPEGs, a flat val/ and LOC_val_solution.csv."""
    wnids = read_class_list(EXPERIMENTS / "class_lists" / "tiny_imagenet_10.txt")[:4]
    base = src / "ILSVRC" / "Data" / "CLS-LOC"
    labels, rows = {}, ["ImageId,PredictionString"]
    for c, wnid in enumerate(wnids):
        (base / "train" / wnid).mkdir(parents=True)
        (base / "val").mkdir(parents=True, exist_ok=True)
        for i, jpeg in enumerate(real_jpegs(data_root, wnid, 4)):
            if i < 3:
                (base / "train" / wnid / f"{wnid}_{i}.JPEG").write_bytes(jpeg.read_bytes())
            else:
                image = f"ILSVRC2012_val_{c + 1:08d}"
                (base / "val" / f"{image}.JPEG").write_bytes(jpeg.read_bytes())
                rows.append(f"{image},{wnid} 1 2 30 40 {wnid} 5 6 20 20")
                labels[f"{image}.JPEG"] = wnid
    (src / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    return labels


def test_imagenet_subset_from_kaggle_ilsvrc(data_root, tmp_path, capsys):
    src, root = tmp_path / "ilsvrc", tmp_path / "root"
    labels = ilsvrc_kaggle(data_root, src)
    wanted = sorted(labels.values())[1:]  # three of the four classes
    (tmp_path / "my_subset.txt").write_text("# three classes\n" + "\n".join(wanted) + "\n")
    before = snapshot(src)
    argv = ["data", "prepare", "imagenet-subset", "--root", str(root), "--source", str(src),
            "--classes", str(tmp_path / "my_subset.txt")]
    assert main(argv) == 0
    assert "3 classes, 9 train and 3 val images" in capsys.readouterr().out
    assert snapshot(src) == before
    dm = ImageFolderDataModule(image_tree_config("my-subset"), root=root)
    dm.setup("fit")
    assert dm.classes == wanted and dm.test_set.x.shape == (3, 3, 32, 32) and dm.test_set.y.tolist() == [0, 1, 2]
    _, test = dm.splits()
    assert [labels[f.name] for f in test.files] == wanted
    assert [p.name for p in root.iterdir()] == ["my-subset"]


def test_imagenet_subset_from_imagefolder_with_symlinks_and_bad_inputs(data_root, tmp_path):
    src = tmp_path / "imagenet"
    for split, n in (("train", 3), ("val", 1)):
        for wnid in TINY_WNIDS:
            (src / split / wnid).mkdir(parents=True)
            for jpeg in real_jpegs(data_root, wnid, 4)[:n] if split == "train" else real_jpegs(data_root, wnid, 4)[3:]:
                (src / split / wnid / jpeg.name).write_bytes(jpeg.read_bytes())
    listing = tmp_path / "three.txt"
    listing.write_text("\n".join(TINY_WNIDS) + "\n")
    tree = prepare_subset(tmp_path / "root", str(src), str(listing), name="sub", link="symlink")
    assert all(p.is_symlink() for p in (tree / "train").rglob("*.JPEG"))
    dm = ImageFolderDataModule(image_tree_config("sub"), root=tmp_path / "root")
    dm.setup("fit")
    assert dm.num_classes == 3 and len(dm.test_set) == 3
    listing.write_text(f"{TINY_WNIDS[0]}\nn09999999\n")
    with pytest.raises(LwtError, match=r"1 classes of .* have no train images .*: n09999999"):
        prepare_subset(tmp_path / "root2", str(src), str(listing))
    with pytest.raises(LwtError, match="needs --source"):
        prepare_subset(tmp_path / "root2", None, str(listing))
    for wnid in TINY_WNIDS:  # a flat val/ without labels: the message says which labels files are read
        for f in (src / "val" / wnid).iterdir():
            f.rename(src / "val" / f.name)
        (src / "val" / wnid).rmdir()
    with pytest.raises(LwtError, match="pass --val-labels FILE"):
        prepare_subset(tmp_path / "root2", str(src), str(listing))
    assert not (tmp_path / "root2").exists()


def test_published_checksums_agree_with_torchvision():
    from torchvision.datasets import CIFAR10, CIFAR100, Imagenette

    for cls, name in ((CIFAR10, "cifar10"), (CIFAR100, "cifar100")):
        a = ARCHIVES[name]
        assert (a.url, a.filename, a.md5, a.folder) == (cls.url, cls.filename, cls.tgz_md5, cls.base_folder)
    assert IMAGENETTE == dict(Imagenette._ARCHIVES)


def test_imagenet_100_list_is_cmc_and_solo_learns():
    names = read_class_list(EXPERIMENTS / "class_lists" / "imagenet_100.txt")
    assert len(names) == len(set(names)) == 100 and all(re.fullmatch(r"n\d{8}", n) for n in names)
    assert "HobbitLong/CMC" in (EXPERIMENTS / "class_lists" / "imagenet_100.txt").read_text()


def test_download_flag_is_refused_for_image_trees():
    with pytest.raises(LwtError, match="lwt data prepare"):
        load_config(EXPERIMENTS / "tiny_imagenet" / "belilovsky_k2_greedy.yaml", ["data.download=true"])


def test_prepare_refuses_a_root_it_cannot_write(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LwtError, match="is not a folder this user can write to"):
        prepare("cifar10", blocker / "data")
    assert os.listdir(tmp_path) == ["file"]


def test_failed_download_names_the_url_and_leaves_nothing(tmp_path, monkeypatch):
    import urllib.error

    import torchvision.datasets.utils

    def no_network(url, root, filename=None, md5=None):  # what urllib raises here, where there is no network
        (Path(root) / filename).write_bytes(b"partial")  # a download cut off halfway
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", no_network)
    with pytest.raises(LwtError) as err:
        prepare("tiny-imagenet", tmp_path / "root", download=True)
    message = str(err.value)
    assert f"downloading {ARCHIVES['tiny-imagenet'].url} failed" in message
    assert str(tmp_path / "root" / "tiny-imagenet-200.zip") in message
    assert list((tmp_path / "root").iterdir()) == []  # the partial file went with the staging folder


def test_archive_members_pointing_outside_are_refused(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add_bytes(tar, "cifar-10-batches-py/data_batch_1", b"x")
        add_bytes(tar, "../escaped.txt", b"x")
    with pytest.raises(LwtError, match=r"refused, it holds an unsafe member .*escaped\.txt"):
        prepare("cifar10", tmp_path / "root", archive=str(archive), md5="none")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-python.tar.gz", "root"]
    assert list((tmp_path / "root").iterdir()) == []
