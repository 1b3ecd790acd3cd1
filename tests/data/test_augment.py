"""Batched augmentation: shapes and dtypes kept, seeded, and the crop geometry right at full scale."""

from __future__ import annotations

import pytest
import torch

from lwt.data.augment import random_crop_flip, random_resized_crop_flip


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_random_resized_crop_keeps_shape_and_dtype(dtype):
    x = (torch.rand(16, 3, 24, 24) * 255).to(dtype)
    out = random_resized_crop_flip(x)
    assert out.shape == x.shape and out.dtype == dtype
    assert random_crop_flip(x, padding=3).shape == x.shape


def test_random_resized_crop_is_seeded_and_differs_per_image():
    x = torch.arange(32 * 32, dtype=torch.float32).view(1, 1, 32, 32).expand(8, 3, 32, 32).contiguous()
    torch.manual_seed(0)
    a = random_resized_crop_flip(x.to(torch.uint8))
    torch.manual_seed(0)
    b = random_resized_crop_flip(x.to(torch.uint8))
    assert torch.equal(a, b)
    out = random_resized_crop_flip(x)
    assert len({tuple(img.flatten()[:64].tolist()) for img in out}) == 8  # each image its own crop


def test_full_scale_square_crop_is_the_image_or_its_mirror():
    torch.manual_seed(1)
    x = torch.randint(0, 256, (64, 3, 20, 20), dtype=torch.uint8)
    out = random_resized_crop_flip(x, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(3)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 10 < int(mirrored.sum()) < 54  # about half are flipped
