"""ImageFolder / Tiny-ImageNet trees -> uint8 tensors: labels survive decoding, the cache is reused
and rebuilt when it should be, bad input fails with a message naming the culprit; and the real
tiny-imagenet-50 tree through the committed 10-class list and experiment file."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from lwt.config import DataConfig, load_config
from lwt.data import ImageFolderDataModule, build_datamodule, imagefolder
from lwt.data.folders import read_class_list
from lwt.data.imagefolder import channel_stats
from lwt.errors import LwtError
from lwt.models import build_model

from conftest import EXPERIMENTS
from datafiles import TREE_CLASSES, write_image_tree

CLASS_LISTS = EXPERIMENTS / "class_lists"
TEN = CLASS_LISTS / "tiny_imagenet_10.txt"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("LWT_CACHE_DIR", str(path))
    return path


def datamodule(root, **kw) -> ImageFolderDataModule:
    kw = {"name": "imagefolder", "path": "tree", "image_size": 16, "val_size": 2, **kw}
    return ImageFolderDataModule(DataConfig(**kw), seed=0, root=root)


def setup(dm: ImageFolderDataModule) -> ImageFolderDataModule:
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("layout", ["imagefolder", "tiny-imagenet"])
def test_both_layouts_decode_to_labelled_rgb_tensors(tmp_path, layout):
    write_image_tree(tmp_path / "tree", layout)
    dm = setup(datamodule(tmp_path))
    assert dm.classes == list(TREE_CLASSES) and dm.num_classes == 4 and dm.input_shape == (3, 16, 16)
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (14, 2, 8)  # 16 train images, 8 val
    for split in (dm.train_set, dm.val_set, dm.test_set):
        assert split.x.dtype == torch.uint8 and split.x.shape[1:] == (3, 16, 16)
        colours = split.x.float().mean(dim=(2, 3))  # (N, 3)
        for colour, label in zip(colours, split.y.tolist()):
            if label == 3:  # the grayscale class: decoded to three equal channels
                assert torch.allclose(colour, torch.full((3,), 100.0), atol=2)
            else:  # JPEG and PNG, square and non-square: the class's channel stays dominant
                assert int(colour.argmax()) == label and colour.max() > 200
    # mean/std come from all training images (train + carved-out val), in [0, 1] units
    mean, std = channel_stats(torch.cat([dm.train_set.x, dm.val_set.x]))
    assert torch.allclose(dm.mean, mean) and torch.allclose(dm.std, std)
    batch = dm.preprocess(dm.train_set.x[:4], train=True)
    assert batch.dtype == torch.float32 and batch.shape == (4, 3, 16, 16)


def test_cache_is_reused_and_rebuilt_when_the_tree_changes(tmp_path, cache_dir):
    write_image_tree(tmp_path / "tree", "imagefolder")
    first = setup(datamodule(tmp_path))
    (cache_file,) = cache_dir.iterdir()
    stamp = cache_file.stat().st_mtime_ns
    # spoil one image: a cache hit never decodes it again, so setup still succeeds with the same data
    victim = tmp_path / "tree" / "train" / TREE_CLASSES[0] / f"{TREE_CLASSES[0]}_0.JPEG"
    victim.write_bytes(b"not an image")
    second = setup(datamodule(tmp_path))
    assert torch.equal(first.test_set.x, second.test_set.x)
    assert list(cache_dir.iterdir()) == [cache_file] and cache_file.stat().st_mtime_ns == stamp
    # another file changes the key: a new cache is built, which now has to decode the spoilt image
    extra = tmp_path / "tree" / "train" / TREE_CLASSES[0] / "extra.JPEG"
    extra.write_bytes((victim.parent / f"{TREE_CLASSES[0]}_2.JPEG").read_bytes())
    with pytest.raises(LwtError, match=f"cannot read image {victim}"):
        setup(datamodule(tmp_path))
    victim.write_bytes(extra.read_bytes())  # repaired: same file count, so the same new key
    setup(datamodule(tmp_path))
    assert len(list(cache_dir.glob("*.pt"))) == 2  # the old key's file is left alone
    assert len(setup(datamodule(tmp_path, image_size=8)).train_set.x[0, 0]) == 8  # size is in the key too


def test_class_list_selects_and_relabels(tmp_path):
    write_image_tree(tmp_path / "tree", "tiny-imagenet")
    listing = tmp_path / "two.txt"
    listing.write_text(f"# two classes\n{TREE_CLASSES[2]}  # blue\n\n{TREE_CLASSES[0]}\n")
    dm = setup(datamodule(tmp_path, classes=str(listing)))
    assert dm.classes == [TREE_CLASSES[0], TREE_CLASSES[2]] and dm.num_classes == 2
    assert len(dm.train_set) + len(dm.val_set) == 8 and len(dm.test_set) == 4
    blue = dm.test_set.x[dm.test_set.y == 1].float().mean(dim=(0, 2, 3))
    assert int(blue.argmax()) == 2  # label 1 is now the blue class


def test_class_list_naming_unknown_classes_fails(tmp_path):
    write_image_tree(tmp_path / "tree", "imagefolder")
    listing = tmp_path / "bad.txt"
    listing.write_text(f"{TREE_CLASSES[0]}\nn99999999\nn88888888\n")
    dm = datamodule(tmp_path, classes=str(listing))
    with pytest.raises(LwtError, match=r"names 2 classes not in .*tree/train: n88888888, n99999999"):
        dm.prepare_data()


@pytest.mark.parametrize("problem", ["missing", "no classes", "empty class", "no val"])
def test_broken_trees_fail_naming_the_path(tmp_path, problem):
    tree = tmp_path / "tree"
    if problem == "missing":
        expected = f"image tree not found: {tree}"
    elif problem == "no classes":
        (tree / "train").mkdir(parents=True)
        expected = f"{tree / 'train'} holds no class folders"
    elif problem == "empty class":
        write_image_tree(tree, "imagefolder")
        (tree / "train" / "n00000000").mkdir()
        expected = f"{tree / 'train' / 'n00000000'} holds no images"
    else:
        write_image_tree(tree, "imagefolder")
        for f in (tree / "val").rglob("*.JPEG"):
            f.unlink()
        expected = f"{tree / 'val'} holds no images of the selected classes"
    with pytest.raises(LwtError, match=expected):
        setup(datamodule(tmp_path))


def test_committed_class_lists_are_real_tiny_imagenet_ids(data_root):
    wnids = sorted((data_root / "tiny-imagenet-50" / "wnids.txt").read_text().split())
    assert read_class_list(CLASS_LISTS / "tiny_imagenet_50.txt") == wnids
    assert read_class_list(TEN) == wnids[:10]


@pytest.mark.slow
def test_real_tiny_imagenet_ten_classes_and_its_cache(data_root, cache_dir, monkeypatch):
    def build():
        dm = datamodule(data_root, path="tiny-imagenet-50", classes=str(TEN), image_size=32, val_size=500)
        dm.setup("fit")
        return dm

    first = build()
    assert first.num_classes == 10 and first.train_set.x.shape == (4500, 3, 32, 32)
    assert len(first.val_set) == 500 and torch.bincount(first.test_set.y).tolist() == [50] * 10
    assert 0.3 < float(first.mean.mean()) < 0.6 and 0.15 < float(first.std.mean()) < 0.35
    (cache_file,) = cache_dir.iterdir()
    stamp = cache_file.stat().st_mtime_ns

    # The second setup must read the cache, not decode a single JPEG again (checked directly, not by timing).
    def no_decode(*args, **kwargs):
        raise AssertionError("the cache was rebuilt: an image was decoded again")

    monkeypatch.setattr(imagefolder, "decode_image", no_decode)
    second = build()
    assert cache_file.stat().st_mtime_ns == stamp and len(list(cache_dir.iterdir())) == 1
    assert torch.equal(first.val_set.x, second.val_set.x) and torch.equal(first.mean, second.mean)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("shared_cache")


@pytest.mark.slow
@pytest.mark.parametrize("crop", ["pad", "resized"])
def test_tiny_imagenet_experiment_runs_a_batch(data_root, shared_cache, monkeypatch, crop):
    monkeypatch.setenv("LWT_CACHE_DIR", str(shared_cache))  # both crops share one decoded cache
    cfg = load_config(EXPERIMENTS / "tiny_imagenet" / "belilovsky_k2_greedy.yaml", [
        f"data.root={data_root}", "data.path=tiny-imagenet-50", f"data.classes={TEN}", "data.image_size=32",
        "data.val_size=500",
        "data.train_subset=100", f"data.crop={crop}", "model.width=16",
    ])
    dm = build_datamodule(cfg)
    assert isinstance(dm, ImageFolderDataModule)
    dm.prepare_data()
    assert [p.parent for p in shared_cache.iterdir()] == [shared_cache]
    dm.setup("fit")
    assert len(dm.train_set) == 100 and torch.bincount(dm.train_set.y).tolist() == [10] * 10
    L.seed_everything(0, verbose=False)
    x, _ = next(iter(dm.train_dataloader()))
    x = dm.preprocess(x, train=True)  # (B, 3, 32, 32) float, augmented
    assert x.shape == (100, 3, 32, 32) and x.dtype == torch.float32
    net = build_model(cfg.model, dm.num_classes, dm.input_shape)
    assert net(x).shape == (100, 10)
