"""per_image.npz, written and read by lwt.run.per_image alone: exact round trip, equal content gives equal bytes,
rows replaced stage by stage, one error line for a bad file, and committed archives without per-image data."""

from __future__ import annotations

import numpy as np
import pytest

from lwt.errors import LwtError
from lwt.run.per_image import (
    FILE,
    PerImage,
    archive_name,
    read_archive,
    read_per_image,
    to_bytes,
    write_per_image,
)

from conftest import ROOT


def example(depths=(1, 2, 3), classes=10, n_val=50, n_test=80, seed=0) -> PerImage:
    rng = np.random.default_rng(seed)
    val_y, test_y = rng.integers(0, classes, n_val), rng.integers(0, classes, n_test)
    p = PerImage.empty(classes, val_y, test_y, rng.permutation(500)[:n_val], np.arange(n_test))
    for d in depths:  # a stage's row: right on about half the images
        guess = {s: np.where(rng.random(len(y)) < 0.5, y, rng.integers(0, classes, len(y)))
                 for s, y in (("val", val_y), ("test", test_y))}
        p = p.with_rows([d], guess["val"][None], guess["test"][None])
    return p


def same(a: PerImage, b: PerImage) -> bool:
    return to_bytes(a) == to_bytes(b) and a.depths == b.depths and all(
        np.array_equal(getattr(a, k), getattr(b, k)) for k in ("val_pred", "test_pred", "val_labels", "test_labels"))


def test_round_trip_is_exact_and_bytes_depend_on_content_alone(tmp_path):
    p = example()
    p.val_ensemble_pred, p.test_ensemble_pred = p.val_pred[::-1].copy(), p.test_pred[::-1].copy()
    write_per_image(tmp_path, p)
    first = (tmp_path / FILE).read_bytes()
    back = read_per_image(tmp_path)
    assert same(back, p) and np.array_equal(back.test_ensemble_pred, p.test_ensemble_pred)
    assert back.val_pred.dtype == np.int16 and back.val_index.dtype == np.int32
    assert np.array_equal(back.val_correct, p.val_pred == p.val_labels) and back.test_correct.shape == (3, 80)
    write_per_image(tmp_path, back)  # written again later: the same bytes (no timestamps inside)
    assert (tmp_path / FILE).read_bytes() == first


def test_a_stage_row_replaces_itself_and_every_later_row(tmp_path):
    p = example(depths=(1, 2, 3))
    p.val_ensemble_pred, p.test_ensemble_pred = p.val_pred.copy(), p.test_pred.copy()
    redone = p.with_rows([2], p.val_pred[2:3], p.test_pred[2:3])  # stage 2 again (a resume), other predictions
    assert redone.depths == [1, 2] and redone.val_ensemble_pred is None
    assert np.array_equal(redone.val_pred, p.val_pred[[0, 2]])
    assert p.below(2).depths == [1]
    write_per_image(tmp_path, redone)
    assert np.array_equal(read_per_image(tmp_path).correct("val", 2), p.val_pred[2] == p.val_labels)
    with pytest.raises(LwtError, match="no pred predictions at depth 3"):
        read_per_image(tmp_path).correct("val", 3)


def test_accuracy_per_depth_and_kind():
    p = example(depths=(1, 2))
    p.finetune_depths, p.finetune_val_pred, p.finetune_test_pred = [1, 2], p.val_pred.copy(), p.test_pred.copy()
    acc = p.accuracy("test")
    assert acc == {d: float((p.test_pred[i] == p.test_labels).mean()) for i, d in enumerate([1, 2])}
    assert p.accuracy("test", "finetune") == acc


def test_many_classes_and_a_wrong_shape():
    p = example(classes=1000)
    assert same(PerImage(**vars(p)), p)
    p.val_pred = p.val_pred[:, :10]
    with pytest.raises(ValueError, match="val_pred has shape"):
        to_bytes(p)


def test_missing_or_damaged_file_is_one_error(tmp_path):
    with pytest.raises(LwtError, match="per_image.npz cannot be read"):
        read_per_image(tmp_path)
    write_per_image(tmp_path, example())
    data = (tmp_path / FILE).read_bytes()
    (tmp_path / FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(LwtError, match="is not a per-image file lwt wrote"):
        read_per_image(tmp_path)


def test_committed_archives_read_back_their_per_image_data_or_none():
    """Runs archived before lwt recorded per-image outputs read as None; the others as every depth's prediction
    for every test image."""
    archives = sorted((ROOT / "results").glob("*_runs.jsonl"))
    assert archives
    found = [v for archive in archives for v in read_archive(archive).values()]
    assert any(v is None for v in found) and any(v is not None for v in found)
    for v in found:
        if v is not None:
            assert v.test_pred.shape == (len(v.depths), len(v.test_labels)) and len(v.test_labels) == 10_000


def test_archive_names_are_plain_file_names():
    assert archive_name(("gap_cpu", "belilovsky_k2_greedy", "train_subset-1000_seed0")) == \
        "gap_cpu__belilovsky_k2_greedy__train_subset-1000_seed0.npz"
    assert archive_name((None, "exp", "a/b c")) == "exp__a_b_c.npz"
