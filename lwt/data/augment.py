"""Augmentation of whole batches on the device the batch lives on (no per-image Python work)."""

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def random_crop_flip(x: Tensor, padding: int = 4) -> Tensor:
    """Random crop with zero padding + random horizontal flip, independently per image.

    ``x``: (B, C, H, W), any dtype. Uses the global torch RNG, so ``seed`` fixes it.
    """
    b, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4).permute(0, 2, 3, 1)  # (B, H+2p, W+2p, C)
    dy = torch.randint(0, 2 * padding + 1, (b,), device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), device=x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = dx[:, None] + torch.arange(w, device=x.device)  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (B, C, H, W)
    flip = torch.rand(b, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def random_resized_crop_flip(x: Tensor, scale: tuple[float, float] = (0.25, 1.0),
                             ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Tensor:
    """Random-resized crop + random horizontal flip, independently per image, in one ``grid_sample``.

    ``x``: (B, C, H, W), any dtype; returns the same shape and dtype (integer images are rounded). Each crop
    covers a fraction ``scale`` of the area, aspect ratio log-uniform in ``ratio``, resized back bilinearly.
    Unlike torchvision's rejection loop, a crop that would not fit is clamped to the image side, so the batch
    is drawn at once; the lower scale is 0.25, not 0.08, as an 8 % crop of 32-64 px is a few pixels wide.
    Uses the global torch RNG, so ``seed`` fixes it.
    """
    b, c, h, w = x.shape
    dev = x.device
    area = torch.empty(b, device=dev).uniform_(*scale)
    aspect = torch.empty(b, device=dev).uniform_(math.log(ratio[0]), math.log(ratio[1])).exp_()
    # crop half-extents in grid units, where [-1, 1] spans the image: fractions of the side
    half_w = (area * aspect).sqrt().clamp_(max=1.0)
    half_h = (area / aspect).sqrt().clamp_(max=1.0)
    # centres chosen so that [centre - half, centre + half] stays inside [-1, 1]
    cx = (torch.rand(b, device=dev) * 2 - 1) * (1 - half_w)
    cy = (torch.rand(b, device=dev) * 2 - 1) * (1 - half_h)
    sign = torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0)  # -1 mirrors the crop
    theta = torch.zeros(b, 2, 3, device=dev)  # output grid -> input grid, per image
    theta[:, 0, 0], theta[:, 0, 2] = half_w * sign, cx
    theta[:, 1, 1], theta[:, 1, 2] = half_h, cy
    grid = F.affine_grid(theta, [b, c, h, w], align_corners=False)  # (B, H, W, 2)
    src = x if x.is_floating_point() else x.float()
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if x.is_floating_point():
        return out.to(x.dtype)
    info = torch.iinfo(x.dtype)
    return out.round_().clamp_(info.min, info.max).to(x.dtype)


def normalize(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """uint8 (B, C, H, W) in [0, 255] -> float32 standardized per channel."""
    x = x.float().div_(255.0)
    return (x - mean.to(x.device).view(1, -1, 1, 1)) / std.to(x.device).view(1, -1, 1, 1)
