"""Keypoint heatmaps (METHOD.md step 3; thesis section 4.6.1).

Each of the 21 channels holds one joint as a 2D Gaussian stencil of ``ksize x ksize`` pixels and standard
deviation ``sigma`` (5 / 49 or 15 / 127), its amplitude A chosen so the stencil sums to 1. The stencil is
stamped at the keypoint's nearest crop pixel (a sub-pixel shift would break the exact sum; the rounding error,
<= 0.5 px, is small against sigma). Normalisation to [-1, 1] is a fixed map like the RGB one: 0 -> -1 and the
stencil peak A -> 1, i.e. ``2 h / A - 1``; a joint outside the crop or NaN leaves its channel at -1. With no
keypoints at all the whole heatmap is zeros (the "no keypoints" input the network was trained with).
Pure numpy.
"""

from __future__ import annotations

import numpy as np

from app.types import N_KEYPOINTS


def gaussian_kernel(sigma: float, ksize: int) -> np.ndarray:
    """(ksize, ksize) float64 Gaussian with standard deviation ``sigma`` px, centred, summing to 1."""
    if ksize % 2 != 1 or sigma <= 0:
        raise ValueError(f"gaussian_kernel: need an odd ksize and sigma > 0, got ksize={ksize}, "
                         f"sigma={sigma}")
    r = np.arange(ksize, dtype=np.float64) - (ksize - 1) / 2.0
    g = np.exp(-(r**2) / (2.0 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)  # separable: the outer product of two unit-sum vectors sums to 1


def _stamp(channel: np.ndarray, kernel: np.ndarray, col: int, row: int) -> None:
    """Add ``kernel`` centred at (col, row) into ``channel`` in place, clipped at the borders."""
    half = kernel.shape[0] // 2
    h, w = channel.shape
    r0, r1 = max(row - half, 0), min(row + half + 1, h)
    c0, c1 = max(col - half, 0), min(col + half + 1, w)
    if r0 >= r1 or c0 >= c1:
        return
    channel[r0:r1, c0:c1] += kernel[r0 - row + half:r1 - row + half, c0 - col + half:c1 - col + half]


def _stamp_all(out: np.ndarray, keypoints_crop_px: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Stamp ``kernel`` for every finite keypoint j into channel j of ``out`` (21, S, S) in place."""
    for j, (x, y) in enumerate(np.asarray(keypoints_crop_px, dtype=np.float64)):
        if np.isfinite(x) and np.isfinite(y):
            _stamp(out[j], kernel, int(np.floor(x + 0.5)), int(np.floor(y + 0.5)))
    return out


def raw_heatmaps(keypoints_crop_px: np.ndarray, size: int, sigma: float, ksize: int) -> np.ndarray:
    """Unnormalised heatmaps: (21, size, size) float64, each joint's unit-sum stencil (0 where absent)."""
    out = np.zeros((N_KEYPOINTS, size, size), dtype=np.float64)
    return _stamp_all(out, keypoints_crop_px, gaussian_kernel(sigma, ksize))


def render_heatmaps(keypoints_crop_px: np.ndarray | None, size: int = 224, sigma: float = 5.0,
                    ksize: int = 49) -> np.ndarray:
    """Network heatmap input: (21, size, size) float32 in [-1, 1]; all zeros when keypoints_crop_px is None.

    keypoints_crop_px: (21, 2) float, crop pixels (NaN rows = joint missing). Equals
    ``2 * raw_heatmaps(...) / A - 1`` with A the stencil peak, computed in float32 without the float64 copy.
    """
    if keypoints_crop_px is None:
        return np.zeros((N_KEYPOINTS, size, size), dtype=np.float32)
    kernel = gaussian_kernel(sigma, ksize)
    scaled = (kernel * (2.0 / kernel.max())).astype(np.float32)
    out = np.full((N_KEYPOINTS, size, size), -1.0, dtype=np.float32)
    return _stamp_all(out, keypoints_crop_px, scaled)
