"""Mesh metrics of the FreiHAND protocol and the projection IoU. Pure numpy / scipy.

- ``aligned_errors``: per-point distances after Procrustes alignment of the prediction onto the ground truth
  (app/geometry/procrustes.py: centre, scale-normalise, rotation and scale); their mean is PA-MPJPE for joints
  and PA-MPVE for vertices.
- ``f_scores``: FreiHAND's F-score at distance thresholds, computed on the Procrustes-aligned vertices. With
  d_p(i) the distance of aligned predicted vertex i to the nearest ground-truth vertex and d_r(j) that of
  ground-truth vertex j to the nearest aligned predicted vertex: precision P(t) = share of d_p <= t, recall
  R(t) = share of d_r <= t, F(t) = 2 P R / (P + R) (0 when P + R = 0). Nearest neighbours by a k-d tree.
- ``mask_iou``: |A and B| / |A or B| of two boolean masks (NaN when both are empty: nothing to score).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from app.geometry.procrustes import procrustes_align


def _points(name: str, points: np.ndarray) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3 or len(arr) == 0 or not np.isfinite(arr).all():
        raise ValueError(f"{name}: expected a finite (N, 3) point array with N >= 1, got shape {arr.shape}")
    return arr


def aligned_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """pred, gt: (N, 3) float, same unit, corresponding rows -> (N,) float64 distance of each aligned
    predicted point to its ground-truth point (same unit). Raises ValueError when N differs (e.g. a mesh of
    another hand model) or N < 3."""
    pred, gt = _points("pred", pred), _points("gt", gt)
    if pred.shape != gt.shape or len(pred) < 3:
        raise ValueError(f"aligned_errors: pred {pred.shape} and gt {gt.shape} must be the same (N >= 3, 3) "
                         "with corresponding rows; vertices must come from the same hand model topology")
    return np.linalg.norm(procrustes_align(pred, gt) - gt, axis=1)


def nearest_distances(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """src: (N, 3), dst: (M, 3) -> (N,) float64 distance of each src point to its nearest dst point."""
    src, dst = _points("src", src), _points("dst", dst)
    return cKDTree(dst).query(src, k=1)[0]


def f_scores(pred: np.ndarray, gt: np.ndarray, thresholds) -> np.ndarray:
    """F-score at each threshold (module docstring) of pred (N, 3) against gt (M, 3), both already in one
    frame and unit (align first). thresholds: (K,) in that unit. Returns (K,) float64 in [0, 1]."""
    d_p, d_r = nearest_distances(pred, gt), nearest_distances(gt, pred)
    t = np.asarray(thresholds, dtype=np.float64)[:, None]
    precision, recall = (d_p[None] <= t).mean(axis=1), (d_r[None] <= t).mean(axis=1)
    total = precision + recall
    return np.where(total > 0, 2.0 * precision * recall / np.where(total > 0, total, 1.0), 0.0)


def aligned_f_scores(pred: np.ndarray, gt: np.ndarray, thresholds) -> np.ndarray:
    """F-scores (K,) after aligning the corresponding vertex sets pred, gt (V, 3) as FreiHAND's eval does."""
    return f_scores(procrustes_align(_points("pred", pred), _points("gt", gt)), gt, thresholds)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """a, b: (H, W) bool masks of one image -> intersection over union; NaN when both are empty."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != bool or b.dtype != bool:
        raise ValueError(f"mask_iou: expected two bool masks of one shape, got {a.shape} {a.dtype} and "
                         f"{b.shape} {b.dtype}")
    union = int(np.count_nonzero(a | b))
    return float("nan") if union == 0 else int(np.count_nonzero(a & b)) / union
