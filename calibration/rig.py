"""Build ``StereoCalibration`` objects from plain K / distortion / R / T arrays (OpenCV conventions).

R, T follow ``cv2.stereoCalibrate``: ``X_right = R @ X_left + T`` (T in metres here), i.e. together they are
the right view's ``T_cam_left``.
"""

from __future__ import annotations

import numpy as np

from app.types import CameraView, StereoCalibration


def make_transform(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(4, 4) float64 rigid transform from R (3, 3) and t (3,) (any float dtype)."""
    T = np.eye(4)
    T[:3, :3] = np.asarray(R, dtype=np.float64).reshape(3, 3)
    T[:3, 3] = np.asarray(t, dtype=np.float64).reshape(3)
    return T


def make_stereo(
    K_left,
    dist_left,
    K_right,
    dist_right,
    R,
    T_m,
    size_wh,
    rectified=False,
    name="custom",
    size_wh_right=None,
) -> StereoCalibration:
    """A raw (or rectified) two-view rig. K: (3, 3) px; dist: (N,) OpenCV order; R: (3, 3); T_m: (3,) metres
    with ``X_right = R X_left + T_m``; size_wh: (width, height) px of the left (and by default right) view."""
    size_r = size_wh if size_wh_right is None else size_wh_right
    left = CameraView(
        K=np.asarray(K_left, np.float64).reshape(3, 3).copy(),
        dist=np.asarray(dist_left, np.float64).ravel().copy(),
        T_cam_left=np.eye(4),
        size_wh=(int(size_wh[0]), int(size_wh[1])),
    )
    right = CameraView(
        K=np.asarray(K_right, np.float64).reshape(3, 3).copy(),
        dist=np.asarray(dist_right, np.float64).ravel().copy(),
        T_cam_left=make_transform(R, T_m),
        size_wh=(int(size_r[0]), int(size_r[1])),
    )
    return StereoCalibration(left=left, right=right, rectified=rectified, name=name)


def relative_pose(calib: StereoCalibration) -> tuple[np.ndarray, np.ndarray]:
    """(R (3, 3), T_m (3,)) of the right view relative to the left (``X_right = R X_left + T_m``)."""
    T = calib.right.T_cam_left
    return T[:3, :3].copy(), T[:3, 3].copy()
