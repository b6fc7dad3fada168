"""Hand crops (METHOD.md step 3): a tight keypoint box scaled about its centre, cut and resized to a square.

Pixel convention (app/types.py): pixel centres at integer coordinates, so pixel i covers [i - 0.5, i + 0.5].
The crop box (x0, y0, side, side) is a continuous square in full-image pixels; it maps onto the crop's
continuous extent [-0.5, S - 0.5], so the box centre lands on the crop centre (S - 1) / 2.

``crop_from_image`` is a (2, 3) float64 affine A with ``p_crop = A[:, :2] @ p_image + A[:, 2]``;
cv2.warpAffine uses the same pixel convention, so the cut crop and this affine agree exactly and anything
predicted in the crop maps back to the full image with ``crop_to_image(A, p)``. All functions here are pure
numpy except ``cut_crop`` (cv2.warpAffine at the edge).
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_BOX_SIDE_PX = 8.0  # a degenerate keypoint set (all points equal) still gets a usable box


def keypoint_box(keypoints_px: np.ndarray, scale: float) -> np.ndarray:
    """Square crop box around the finite keypoints.

    keypoints_px: (N, 2) float, full-image pixels (NaN rows ignored). Returns (4,) float32 (x0, y0, side,
    side): the tight box's longer side times ``scale``, centred on the tight box's centre (square so the
    resize to S x S does not distort the hand).
    """
    pts = np.asarray(keypoints_px, dtype=np.float64)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) == 0:
        raise ValueError("keypoint_box: no finite keypoints; a crop needs at least one detected keypoint")
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2.0
    side = max(float((hi - lo).max()) * scale, MIN_BOX_SIDE_PX)
    return np.array([centre[0] - side / 2, centre[1] - side / 2, side, side], dtype=np.float32)


def crop_affine(box_xywh: np.ndarray, crop_size: int) -> np.ndarray:
    """(2, 3) float64 affine mapping full-image pixels into the crop_size x crop_size crop of ``box_xywh``."""
    x0, y0, w, h = (float(v) for v in box_xywh)
    sx, sy = crop_size / w, crop_size / h
    # Continuous box edge x0 -> crop edge -0.5 (pixel-centre convention on both sides).
    return np.array([[sx, 0.0, -x0 * sx - 0.5], [0.0, sy, -y0 * sy - 0.5]], dtype=np.float64)


def invert_affine(A: np.ndarray) -> np.ndarray:
    """(2, 3) float64 inverse of a (2, 3) affine."""
    M = np.asarray(A, dtype=np.float64)
    L_inv = np.linalg.inv(M[:, :2])
    return np.hstack([L_inv, -(L_inv @ M[:, 2:3])])


def apply_affine(A: np.ndarray, points: np.ndarray) -> np.ndarray:
    """points: (N, 2) -> (N, 2) float64 ``A[:, :2] @ p + A[:, 2]`` (NaN rows stay NaN)."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ np.asarray(A, dtype=np.float64)[:, :2].T + np.asarray(A, dtype=np.float64)[:, 2]


def crop_to_image(crop_from_image: np.ndarray, points_crop_px: np.ndarray) -> np.ndarray:
    """(N, 2) crop pixels -> (N, 2) float64 full-image pixels (undoes any mirroring in the affine)."""
    return apply_affine(invert_affine(crop_from_image), points_crop_px)


def crop_intrinsics(K: np.ndarray, crop_from_image: np.ndarray) -> np.ndarray:
    """(3, 3) float64 intrinsics of the virtual camera seeing the crop: [A; 0 0 1] @ K. A mirrored crop
    gives a negative fx (see app/detection/mirror.py)."""
    A3 = np.vstack([np.asarray(crop_from_image, dtype=np.float64), [0.0, 0.0, 1.0]])
    return A3 @ np.asarray(K, dtype=np.float64)


def cut_crop(image: np.ndarray, crop_from_image: np.ndarray, crop_size: int) -> np.ndarray:
    """image: (H, W, C) uint8 (or float32). Returns (S, S, C) of the same dtype, bilinear, black outside."""
    return cv2.warpAffine(image, np.asarray(crop_from_image, dtype=np.float64), (crop_size, crop_size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def normalise_crop(crop_rgb: np.ndarray) -> np.ndarray:
    """(S, S, 3) uint8 RGB -> (S, S, 3) float32 in [-1, 1] (0 -> -1, 255 -> 1)."""
    return np.asarray(crop_rgb, dtype=np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)
