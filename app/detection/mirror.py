"""Left hands are mirrored to right hands before the network and mirrored back after: the one place.

The mirror is folded into the crop's affine: a left hand's ``crop_from_image`` is the plain crop affine
followed by a horizontal flip of the crop (u -> S - 1 - u), so cutting the crop with it yields a right-looking
hand, its crop keypoints are mirrored too, and ``crop_to_image`` of anything predicted in that crop lands back
on the real (left) hand in the full image with no further step. A mirrored affine has a negative determinant.

3D quantities predicted for the mirrored crop live in a mirrored camera frame (x negated, see
``crop_intrinsics``: fx < 0 means K_pos @ diag(-1, 1, 1)); ``unmirror_points_cam`` and ``unmirror_pose`` map
them back. Pure numpy.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from app.geometry.rotations import mirror_axis_angle, mirror_points_x
from app.types import HandDetection


def flip_affine(crop_size: int) -> np.ndarray:
    """(2, 3) float64 horizontal flip of a crop_size-wide crop: u -> crop_size - 1 - u (pixel centres)."""
    return np.array([[-1.0, 0.0, crop_size - 1.0], [0.0, 1.0, 0.0]])


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """(2, 3) affine of ``outer(inner(p))``."""
    return np.hstack([outer[:, :2] @ inner[:, :2], outer[:, :2] @ inner[:, 2:3] + outer[:, 2:3]])


def is_mirrored(crop_from_image: np.ndarray) -> bool:
    """True when the affine includes a reflection (a left hand shown as a right hand)."""
    return bool(np.linalg.det(np.asarray(crop_from_image)[:, :2]) < 0)


def mirror_detection_to_right(det: HandDetection, crop_size: int) -> HandDetection:
    """A left-hand detection whose crop shows a right hand: the flip is prepended to ``crop_from_image``.

    keypoints_px stay in full-image pixels (unchanged); crop keypoints and the cut crop come out mirrored.
    No-op for a right hand or an already mirrored detection.
    """
    if det.handedness != "left" or is_mirrored(det.crop_from_image):
        return det
    mirrored = compose_affine(flip_affine(crop_size), det.crop_from_image)
    return dataclasses.replace(det, crop_from_image=mirrored)


def unmirror_detection(det: HandDetection, crop_size: int) -> HandDetection:
    """Inverse of ``mirror_detection_to_right``: drop the flip from a mirrored crop affine."""
    if not is_mirrored(det.crop_from_image):
        return det
    unflipped = compose_affine(flip_affine(crop_size), det.crop_from_image)  # the flip is its own inverse
    return dataclasses.replace(det, crop_from_image=unflipped)


def unmirror_points_cam(points_m: np.ndarray) -> np.ndarray:
    """(..., 3) points in the mirrored camera frame -> the real camera frame (x negated). Self-inverse."""
    return mirror_points_x(np.asarray(points_m))


def unmirror_pose(pose: np.ndarray) -> np.ndarray:
    """(..., 48) axis-angle pose predicted for the mirrored (right-looking) crop -> the left hand's pose.

    Reflecting x maps a rotation R to S R S (S = diag(-1, 1, 1)): axis-angle (ax, -ay, -az). Self-inverse.
    """
    return mirror_axis_angle(np.asarray(pose))
