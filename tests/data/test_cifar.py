"""CIFAR loaders: CIFAR-100 from pickles in the official layout (written here, since the shared data
lacks it), and the seeded, class-balanced, disjoint split on the real CIFAR-10."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lwt.config import load_config
from lwt.data import CifarDataModule, build_datamodule
from lwt.data.cifar import load_cifar
from lwt.data.tensors import split_indices
from lwt.errors import LwtError

from datafiles import write_cifar100


def test_cifar100_reads_the_official_layout(tmp_path):
    written = write_cifar100(tmp_path, per_class=3)
    cfg = load_config(None, ["data.name=cifar100", f"data.root={tmp_path}", "data.val_size=60", "seed=3"])
    dm = build_datamodule(cfg)
    assert isinstance(dm, CifarDataModule) and dm.num_classes == 100 and dm.input_shape == (3, 32, 32)
    dm.prepare_data()
    dm.setup("fit")
    train_x, train_y = (torch.from_numpy(a) for a in written["train"])
    train_idx, val_idx = split_indices(train_y, 60, None, seed=3)
    assert torch.equal(dm.val_set.x, train_x[val_idx]) and torch.equal(dm.val_set.y, train_y[val_idx])
    assert torch.equal(dm.train_set.x, train_x[train_idx]) and len(dm.train_set) == 240
    test_x, test_y = written["test"]
    assert torch.equal(dm.test_set.x, torch.from_numpy(test_x)) and dm.test_set.y.tolist() == test_y.tolist()
    assert dm.test_set.x.dtype == torch.uint8 and dm.test_set.y.dtype == torch.int64
    batch = dm.preprocess(dm.train_set.x[:8], train=True)
    assert batch.shape == (8, 3, 32, 32) and batch.dtype == torch.float32


def test_cifar100_missing_or_corrupt_files_are_named(tmp_path):
    cfg = load_config(None, ["data.name=cifar100", f"data.root={tmp_path}"])
    with pytest.raises(LwtError, match=r"CIFAR-100 not found: \S*cifar-100-python.*data.download=true"):
        build_datamodule(cfg).prepare_data()
    write_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "test").write_bytes(b"\x80\x02garbage")
    with pytest.raises(LwtError, match=r"cifar-100-python/test is corrupt"):
        build_datamodule(cfg).setup("fit")


def test_a_test_subset_larger_than_the_test_set_is_an_error_naming_its_size(tmp_path):
    write_cifar100(tmp_path)  # 100 test images
    cfg = load_config(None, ["data.name=cifar100", f"data.root={tmp_path}", "data.val_size=50",
                             "data.test_subset=101"])
    with pytest.raises(LwtError) as err:
        build_datamodule(cfg).setup("fit")
    assert str(err.value) == ("data.test_subset=101 is more than the test set's 100 images; valid: 1 to 100, or null "
                              "for the full test set")
    dm = build_datamodule(load_config(None, ["data.name=cifar100", f"data.root={tmp_path}", "data.val_size=50",
                                             "data.test_subset=100"]))
    dm.setup("fit")
    assert len(dm.test_set) == 100


@pytest.fixture(scope="module")
def cifar10(data_root):
    return load_cifar("cifar10", data_root)


def test_cifar10_split_is_seeded_balanced_and_disjoint(cifar10, data_root):
    train_x, train_y, _, _ = cifar10
    train_idx, val_idx = split_indices(train_y, 5000, 1000, seed=0)
    again_train, again_val = split_indices(train_y, 5000, 1000, seed=0)
    assert torch.equal(train_idx, again_train) and torch.equal(val_idx, again_val)
    other_train, other_val = split_indices(train_y, 5000, 1000, seed=1)
    assert not torch.equal(val_idx, other_val) and not torch.equal(train_idx, other_train)
    assert torch.bincount(train_y[train_idx], minlength=10).tolist() == [100] * 10  # balanced subset
    assert torch.bincount(train_y[val_idx], minlength=10).min() > 400  # random 10 %, every class present
    assert not set(train_idx.tolist()) & set(val_idx.tolist())
    # the validation images do not change with the subset size
    assert torch.equal(split_indices(train_y, 5000, 20000, seed=0)[1], val_idx)
    # and no validation image appears among the training images, byte for byte
    seen = {bytes(img) for img in train_x[train_idx].reshape(len(train_idx), -1).numpy()}
    assert not any(bytes(img) in seen for img in train_x[val_idx].reshape(len(val_idx), -1).numpy())
    # the DataModule uses exactly this split
    cfg = load_config(None, [f"data.root={data_root}", "data.train_subset=1000", "data.test_subset=100"])
    dm = build_datamodule(cfg)
    dm.setup("fit")
    assert torch.equal(dm.val_set.y, train_y[val_idx]) and torch.equal(dm.train_set.x, train_x[train_idx])
    assert np.isclose(float(dm.mean[0]), 0.4914) and len(dm.test_set) == 100


def test_offline_download_ends_with_the_missing_data_message(tmp_path, monkeypatch):
    import urllib.error

    import torchvision

    from lwt.data.cifar import ensure_cifar

    def no_network(*args, **kwargs):  # what torchvision's downloader raises without a network
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", no_network)
    with pytest.raises(LwtError) as err:
        ensure_cifar("cifar10", tmp_path, download=True)
    message = str(err.value)
    assert "CIFAR-10 not found" in message and str(tmp_path) in message and "Downloading it failed" in message
    assert not any(tmp_path.iterdir())
