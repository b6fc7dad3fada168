"""Stereo rectification of a raw horizontal rig: maps built once with OpenCV, applied per frame.

``cv2.stereoRectify(..., CALIB_ZERO_DISPARITY, alpha=0)``: both rectified views share K (no distortion), rows
align, and the principal points coincide (zero disparity at infinity); alpha=0 keeps only valid pixels.
The rectified rig's reference frame is the *rectified* left camera (the raw left camera rotated by R1).
"""

from __future__ import annotations

import cv2
import numpy as np

from app.types import StereoCalibration
from calibration.errors import CalibrationError
from calibration.rig import make_stereo, relative_pose


class Rectifier:
    """Rectification of the raw rig ``raw``; ``calibration`` is the rectified rig that frames are in after
    ``rectify_pair``. R1, R2: (3, 3) raw-to-rectified rotations; P1, P2: (3, 4) rectified projections."""

    def __init__(self, raw: StereoCalibration, alpha: float = 0.0):
        if raw.left.size_wh != raw.right.size_wh:
            raise CalibrationError(
                f"calibration {raw.name!r}: rectification needs both views the same size, got "
                f"{raw.left.size_wh} and {raw.right.size_wh}; use the unrectified source"
            )
        R, T = relative_pose(raw)
        if abs(T[0]) < abs(T[1]) or abs(T[0]) < 1e-9:
            raise CalibrationError(
                f"calibration {raw.name!r}: rectification expects a horizontal rig "
                f"(|Tx| largest), got T = {T.tolist()}; use the unrectified source"
            )
        angle_deg = np.degrees(np.linalg.norm(cv2.Rodrigues(R)[0]))
        if angle_deg > 30:
            raise CalibrationError(
                f"calibration {raw.name!r}: the views are {angle_deg:.0f} deg apart (a converging "
                "rig); rectifying would discard most of the image: use it unrectified "
                "(rectify=0, per-view projection matrices)"
            )
        self.raw = raw
        size = raw.left.size_wh
        self.R1, self.R2, self.P1, self.P2, _, _, _ = cv2.stereoRectify(
            raw.left.K,
            raw.left.dist,
            raw.right.K,
            raw.right.dist,
            size,
            R,
            T,
            flags=cv2.CALIB_ZERO_DISPARITY,
            alpha=alpha,
        )
        self._maps = [
            cv2.initUndistortRectifyMap(v.K, v.dist, Rr, P[:3, :3], size, cv2.CV_16SC2)
            for v, Rr, P in ((raw.left, self.R1, self.P1), (raw.right, self.R2, self.P2))
        ]
        self.calibration = self._rectified_calibration()

    def _rectified_calibration(self) -> StereoCalibration:
        K = self.P1[:3, :3].copy()
        tx_m = self.P2[0, 3] / self.P2[0, 0]  # P2[0, 3] = fx * Tx with Tx = -baseline
        zeros = np.zeros(5)
        return make_stereo(
            K,
            zeros,
            K,
            zeros,
            np.eye(3),
            [tx_m, 0.0, 0.0],
            self.raw.left.size_wh,
            rectified=True,
            name=f"{self.raw.name}-rectified",
        )

    def rectify_pair(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Remap raw images (H, W, C) uint8 (any channel order) into the rectified views."""
        return (
            cv2.remap(left, *self._maps[0], cv2.INTER_LINEAR),
            cv2.remap(right, *self._maps[1], cv2.INTER_LINEAR),
        )

    def rectify_points(self, view: str, points_px: np.ndarray) -> np.ndarray:
        """Raw-image pixels (N, 2) of ``view`` ('left'/'right') -> rectified-image pixels (N, 2) float64."""
        cam, R, P = (
            (self.raw.left, self.R1, self.P1) if view == "left" else (self.raw.right, self.R2, self.P2)
        )
        pts = np.asarray(points_px, np.float64).reshape(-1, 1, 2)
        return cv2.undistortPoints(pts, cam.K, cam.dist, R=R, P=P).reshape(-1, 2)
