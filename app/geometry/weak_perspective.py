"""The HandNet crop camera: weak perspective in a square crop, and its link to the full-image pinhole camera.

A crop is the square box (x0, y0, side) of the full image (full-image pixels, top-left corner and side
length) resized to S x S (S = crop_size, 224). The network predicts cam = (tx, ty, s) and projects model
points X (metres, root-relative, camera-oriented) as

    u_norm = s X_xy + t          (crop-normalised units, -1 .. 1 across the crop)
    u_crop = (u_norm + 1) S / 2  (crop pixels)
    u_full = (x0, y0) + u_crop side / S = (x0, y0) + (u_norm + 1) side / 2   (full-image pixels).

All functions take numpy or torch (torch keeps autograd), with leading batch dims broadcasting.
"""

from __future__ import annotations

import torch

from app.geometry.camera import _apply_K, _remove_K, numpy_or_torch


@numpy_or_torch
def weak_perspective_project(points, cam, crop_size: int):
    """Weak-perspective projection into crop pixels.

    points: (..., N, 3) metres, root-relative, camera orientation (z is ignored). cam: (..., 3) = (tx, ty, s),
    t in crop-normalised units, s in normalised units per metre. crop_size: S in pixels.
    Returns (..., N, 2) crop pixels, u_crop = (s X_xy + t + 1) S / 2.
    """
    u_norm = cam[..., None, 2:3] * points[..., :2] + cam[..., None, :2]
    return (u_norm + 1) * crop_size / 2


@numpy_or_torch
def crop_to_image_px(crop_px, box_xy0_side, crop_size: int):
    """Crop pixels (..., 2) -> full-image pixels (..., 2). box_xy0_side: (..., 3) = (x0, y0, side), pixels."""
    return box_xy0_side[..., :2] + crop_px * (box_xy0_side[..., 2:3] / crop_size)


@numpy_or_torch
def image_to_crop_px(image_px, box_xy0_side, crop_size: int):
    """Full-image pixels (..., 2) -> crop pixels (..., 2); inverse of :func:`crop_to_image_px`."""
    return (image_px - box_xy0_side[..., :2]) * (crop_size / box_xy0_side[..., 2:3])


def _focal_norm(K: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
    """Focal length in crop-normalised units: f S / side crop pixels times 2 / S units per pixel = 2 f / side.

    f is the mean of fx and fy (exact for square pixels, which weak perspective assumes anyway)."""
    f = (K[..., 0, 0] + K[..., 1, 1]) / 2
    return 2 * f / side


@numpy_or_torch
def weak_perspective_to_translation(cam, box_xy0_side, K, crop_size: int):
    """Camera-space root translation equivalent to a crop's weak-perspective camera.

    cam: (..., 3) = (tx, ty, s). box_xy0_side: (..., 3) = (x0, y0, side), full-image pixels. K: (3, 3) or
    (..., 3, 3) full-image intrinsics, pixels. crop_size: S (it cancels out of the result; kept so every crop
    function takes the same crop description). Returns transl_m: (..., 3) metres, camera frame.

    Derivation. A point X + T with depth near T_z projects (pinhole) to u_full ~ f (X_xy + T_xy) / T_z + c,
    so a model offset X_xy moves it by f / T_z full pixels per metre. Weak perspective moves it by s in
    normalised units, i.e. s side / 2 full pixels, per metre. Equating gives
        T_z = f_norm / s,  f_norm = f S / side (focal length in crop pixels) * 2 / S = 2 f / side.
    The root (X = 0) lands at u_norm = t, i.e. full pixel u_root = (x0, y0) + (t + 1) side / 2, so
        T = T_z K^-1 [u_root, 1].
    The root then projects to the same full-image pixel through both cameras, and any point at the root's
    depth matches exactly when fx = fy (off-depth points differ by the weak-perspective approximation).
    """
    f_norm = _focal_norm(K, box_xy0_side[..., 2])
    tz = f_norm / cam[..., 2]
    u_root = box_xy0_side[..., :2] + (cam[..., :2] + 1) * box_xy0_side[..., 2:3] / 2
    xy = _remove_K(u_root, K)
    return torch.cat([xy * tz[..., None], tz[..., None]], dim=-1)


@numpy_or_torch
def translation_to_weak_perspective(transl_m, box_xy0_side, K, crop_size: int):
    """Inverse of :func:`weak_perspective_to_translation`.

    transl_m: (..., 3) metres, camera frame, T_z > 0. box_xy0_side: (..., 3). K: (3, 3) or (..., 3, 3).
    crop_size: S (cancels out). Returns cam: (..., 3) = (tx, ty, s) with s = f_norm / T_z and t the
    crop-normalised position of the projected root, t = 2 (u_root - (x0, y0)) / side - 1.
    """
    side = box_xy0_side[..., 2]
    s = _focal_norm(K, side) / transl_m[..., 2]
    u_root = _apply_K(transl_m[..., :2] / transl_m[..., 2:3], K)
    t = 2 * (u_root - box_xy0_side[..., :2]) / side[..., None] - 1
    return torch.cat([t, s[..., None]], dim=-1)
