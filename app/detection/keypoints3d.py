"""Metric 3D keypoints of one hand from its two views: DLT triangulation, residuals, outlier rejection.

Works for any calibrated rig through the projection matrices ``P = K [R | t]`` (left camera = reference,
metres); the pixels must be undistorted (``undistort_px``). Pure numpy / app.geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.geometry.camera import undistort_points
from app.geometry.triangulation import reprojection_residuals, triangulate_dlt
from app.types import CameraView


@dataclass(frozen=True)
class Triangulated:
    """points_m: (21, 3) float32 metres, left-camera frame, NaN for dropped keypoints.
    residual_px: (21,) float32, the larger of the two views' reprojection residuals (kept for dropped ones).
    palm_m: wrist-to-middle-MCP length in metres (NaN if either was dropped)."""

    points_m: np.ndarray
    residual_px: np.ndarray
    palm_m: float


def undistort_px(view: CameraView, keypoints_px: np.ndarray) -> np.ndarray:
    """(N, 2) distorted pixels of ``view`` -> (N, 2) float64 ideal pixels (unchanged when dist is zero)."""
    px = np.asarray(keypoints_px, dtype=np.float64)
    if not np.any(view.dist):
        return px
    return np.asarray(undistort_points(px, view.K, view.dist, output="pixels"), dtype=np.float64)


def world_landmarks_in_left_axes(view: CameraView, world_landmarks_m: np.ndarray | None) -> np.ndarray | None:
    """MediaPipe's world landmarks (21, 3) metres, hand-centred, in ``view``'s camera axes -> (21, 3) float64
    in the left camera's axes (rotation only: they have no position), or None when there are none."""
    if world_landmarks_m is None:
        return None
    return np.asarray(world_landmarks_m, np.float64) @ view.T_cam_left[:3, :3]


def drop_outliers(residual_px: np.ndarray, min_px: float, factor: float) -> np.ndarray:
    """(N,) bool mask of inliers: residual <= max(min_px, factor x median residual) (robust to a few bad
    keypoints, scale-free for blurry far hands)."""
    r = np.asarray(residual_px, dtype=np.float64)
    finite = np.isfinite(r)
    if not finite.any():
        return finite
    threshold = max(min_px, factor * float(np.median(r[finite])))
    return finite & (r <= threshold)


def triangulate_pair(px_left: np.ndarray, px_right: np.ndarray, P_left: np.ndarray, P_right: np.ndarray,
                     min_px: float = 4.0, factor: float = 4.0) -> Triangulated:
    """Triangulate one hand's keypoints.

    px_left, px_right: (21, 2) undistorted pixels. P_left, P_right: (3, 4) projection matrices.
    1. DLT per keypoint; 2. reprojection residual per view, keep the larger; 3. drop keypoints whose residual
    is an outlier (``drop_outliers``) or that lie behind either camera.
    """
    P = [np.asarray(P_left, np.float64), np.asarray(P_right, np.float64)]
    px = [np.asarray(px_left, np.float64), np.asarray(px_right, np.float64)]
    X = triangulate_dlt(P, px)
    residual = reprojection_residuals(X, P, px).max(axis=0)  # NaN stays NaN (untriangulable keypoint)
    keep = drop_outliers(residual, min_px, factor) & _in_front(X, P)
    X = np.where(keep[:, None], X, np.nan)
    return Triangulated(points_m=X.astype(np.float32), residual_px=residual.astype(np.float32),
                        palm_m=float(np.linalg.norm(X[9] - X[0])))


def _in_front(X: np.ndarray, P_list: list) -> np.ndarray:
    """(M,) bool: positive depth in every view (the third projected coordinate, P3 X, is the depth)."""
    X_h = np.concatenate([X, np.ones_like(X[:, :1])], axis=1)
    depth = np.stack([X_h @ P[2] for P in P_list])
    with np.errstate(invalid="ignore"):
        return np.all(depth > 0, axis=0)
