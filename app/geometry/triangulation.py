"""Triangulation of 3D points from calibrated views (numpy, float64).

Projection matrices ``P`` are (3, 4) and map homogeneous reference-frame (left camera) metres to pixels,
``P = K [R | t]`` with ``[R | t]`` the first three rows of ``T_cam_left`` (see ``CameraView.P``). Pixels must
be undistorted (rectified frames, or :func:`app.geometry.camera.undistort_points` with ``output="pixels"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _stack_views(P_list: Sequence[np.ndarray], pixels_list: Sequence[np.ndarray]):
    """Validate and stack views -> P (N, 3, 4) float64, pixels (N, M, 2) float64."""
    if len(P_list) == 0:
        raise ValueError("P_list: expected at least one (3, 4) projection matrix, got none")
    P = [np.asarray(p, dtype=np.float64) for p in P_list]
    px = [np.asarray(p, dtype=np.float64) for p in pixels_list]
    if any(p.shape != (3, 4) for p in P):
        raise ValueError(f"P_list: expected (3, 4) projection matrices, got shapes {[p.shape for p in P]}")
    m = px[0].shape[0] if px and px[0].ndim else -1
    if len(px) != len(P) or any(p.shape != (m, 2) for p in px):
        raise ValueError(f"pixels_list: expected {len(P)} arrays (M, 2), one per P, with one M, "
                         f"got shapes {[p.shape for p in px]}")
    return np.stack(P), np.stack(px)


def triangulate_dlt(P_list: Sequence[np.ndarray], pixels_list: Sequence[np.ndarray]) -> np.ndarray:
    """Linear (DLT) triangulation of M points seen in N >= 2 views (Hartley & Zisserman, section 12.2).

    P_list: N arrays (3, 4), pixels from reference-frame metres. pixels_list: N arrays (M, 2), pixels.
    Returns (M, 3) float64 metres in the reference frame.

    Per point: 1. stack the rows u P_3 - P_1 and v P_3 - P_2 of every view into A (2N, 4);
    2. X = the right singular vector of A with the smallest singular value; 3. dehomogenise.
    With N = 2 this is the algorithm of ``cv2.triangulatePoints``. A view whose pixel is NaN is left out of
    that point's system; points with fewer than two valid views, or at infinity, come back as NaN.
    """
    if len(P_list) < 2:
        raise ValueError(f"triangulate_dlt: needs at least 2 views, got {len(P_list)}")
    P, px = _stack_views(P_list, pixels_list)
    rows_u = px[..., 0, None] * P[:, None, 2] - P[:, None, 0]  # (N, M, 4)
    rows_v = px[..., 1, None] * P[:, None, 2] - P[:, None, 1]
    valid = np.isfinite(px).all(axis=-1)  # (N, M)
    A = np.stack([rows_u, rows_v], axis=1)  # (N, 2, M, 4)
    A = np.where(valid[:, None, :, None], A, 0.0).transpose(2, 0, 1, 3).reshape(px.shape[1], 2 * len(P), 4)
    X_h = np.linalg.svd(A)[2][:, -1, :]  # (M, 4)
    with np.errstate(divide="ignore", invalid="ignore"):
        X = X_h[:, :3] / X_h[:, 3:]
    X[valid.sum(axis=0) < 2] = np.nan
    X[~np.isfinite(X).all(axis=1)] = np.nan
    return X


def triangulate_rectified(px_left: np.ndarray, px_right: np.ndarray, K: np.ndarray,
                          baseline_m: float) -> np.ndarray:
    """Triangulate from disparity for a rectified pair (shared K, right camera at +baseline_m along x).

    px_left, px_right: (M, 2) pixels in the left/right rectified images. K: (3, 3), zero skew.
    baseline_m: > 0, metres. The right camera sits at x = +baseline, so a point's right-image column is
    smaller: disparity d = u_left - u_right > 0 and Z = fx B / d.
    Returns (M, 3) float64 metres in the left-camera frame; X, Y from the left column and the mean of the two
    rows (rectified rows agree up to noise). Rows with d <= 0 (or NaN input) are NaN.
    """
    pl = np.asarray(px_left, dtype=np.float64)
    pr = np.asarray(px_right, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    if baseline_m <= 0:
        raise ValueError(f"baseline_m must be > 0 (right camera at +x of the left one), got {baseline_m}")
    d = pl[:, 0] - pr[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(d > 0, K[0, 0] * baseline_m / d, np.nan)
    y = ((pl[:, 1] + pr[:, 1]) / 2 - K[1, 2]) / K[1, 1]
    x = (pl[:, 0] - K[0, 2] - K[0, 1] * y) / K[0, 0]
    return np.stack([x * z, y * z, z], axis=1)


def reprojection_residuals(points_m: np.ndarray, P_list: Sequence[np.ndarray],
                           pixels_list: Sequence[np.ndarray]) -> np.ndarray:
    """Pixel distance between each view's observation and the projection of the 3D points.

    points_m: (M, 3) metres, reference frame. P_list: N arrays (3, 4). pixels_list: N arrays (M, 2).
    Returns (N, M) float64 pixels; NaN where a point or an observation is NaN.
    """
    P, px = _stack_views(P_list, pixels_list)
    X = np.asarray(points_m, dtype=np.float64)
    X_h = np.concatenate([X, np.ones_like(X[:, :1])], axis=1)  # (M, 4)
    proj = np.einsum("nij,mj->nmi", P, X_h)  # (N, M, 3)
    return np.linalg.norm(proj[..., :2] / proj[..., 2:] - px, axis=-1)
