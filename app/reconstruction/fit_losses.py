"""Data terms of the model fit and their robust weighting (pure numpy, float64).

Every term compares the model's 21 keypoints ``kp_m`` (21, 3) metres, left-camera frame, with one kind of
observation, given ``d_kp`` (21, 3, n): the keypoints' derivative by the n fit parameters (None when only the
cost is needed). A term returns a ``Rows`` block: per observed keypoint a residual vector already divided by
its sigma (dimensionless), the rows' Jacobian (None without ``d_kp``), and the keypoint's squared residual
norm s on which the robust loss acts. Rows of missing observations (NaN) are left out.

Robust losses act on s (per keypoint, not per coordinate): with c the robust scale (in sigmas),
- Geman-McClure: rho(s) = c^2 s / (c^2 + s), rho'(s) = c^4 / (c^2 + s)^2 (redescending: gross outliers end
  with ~0 weight);
- Huber: rho(s) = s for s <= c^2, else 2 c sqrt(s) - c^2; rho'(s) = min(1, c / sqrt(s));
- none: rho(s) = s.
Iteratively reweighted least squares scales each keypoint's rows by sqrt(rho'(s)); the cost is 0.5 sum rho(s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROBUST_KINDS = ("geman-mcclure", "huber", "none")


@dataclass(frozen=True)
class Rows:
    """r: (m, d) residuals / sigma; J: (m, d, n) their derivative by the parameters or None; s: (m,) |r|^2."""

    r: np.ndarray
    J: np.ndarray | None
    s: np.ndarray


def robust(s: np.ndarray, scale: float, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(rho(s), rho'(s)) for squared residual norms s (m,), see the module docstring."""
    if kind == "geman-mcclure":
        c2 = scale * scale
        return c2 * s / (c2 + s), (c2 / (c2 + s)) ** 2
    if kind == "huber":
        root = np.sqrt(s)
        inside = root <= scale
        return np.where(inside, s, 2 * scale * root - scale * scale), np.where(inside, 1.0, scale / np.maximum(
            root, 1e-300))
    if kind == "none":
        return s, np.ones_like(s)
    raise ValueError(f"robust loss {kind!r} is unknown; use one of {ROBUST_KINDS}")


def _rows(r: np.ndarray, J: np.ndarray | None) -> Rows:
    return Rows(r=r, J=J, s=(r * r).sum(-1))


def point_rows(kp_m: np.ndarray, d_kp: np.ndarray | None, target_m: np.ndarray, sigma_m: np.ndarray) -> Rows:
    """3D keypoints: r_i = (kp_i - target_i) / sigma_i. target_m: (21, 3) metres, left-camera frame, NaN
    rows missing; sigma_m: (21,) metres per keypoint."""
    ok = np.isfinite(target_m).all(1)
    inv = 1.0 / sigma_m[ok]
    J = None if d_kp is None else d_kp[ok] * inv[:, None, None]
    return _rows((kp_m[ok] - target_m[ok]) * inv[:, None], J)


def projection_rows(kp_m: np.ndarray, d_kp: np.ndarray | None, P: np.ndarray, px: np.ndarray, sigma_px: float
                    ) -> Rows:
    """2D keypoints of one view: r_i = (pi(P kp_i) - px_i) / sigma_px.

    P: (3, 4) projection from left-camera metres to this view's (undistorted) pixels; px: (21, 2) pixels,
    NaN rows missing. d pi / d kp = (P[:2, :3] - u P[2, :3]) / w with w the projective depth. Keypoints at
    or behind the camera plane (w <= 1 mm) are left out: their projection is meaningless.
    """
    h = kp_m @ P[:, :3].T + P[:, 3]
    ok = np.isfinite(px).all(1) & (h[:, 2] > 1e-3)
    w = h[ok, 2:]
    uv = h[ok, :2] / w
    r = (uv - px[ok]) / sigma_px
    if d_kp is None:
        return _rows(r, None)
    du_dkp = (P[None, :2, :3] - uv[:, :, None] * P[None, 2:3, :3]) / w[:, :, None]  # (m, 2, 3)
    return _rows(r, (du_dkp / sigma_px) @ d_kp[ok])


def centred_rows(kp_m: np.ndarray, d_kp: np.ndarray | None, landmarks_m: np.ndarray, sigma_m: float) -> Rows:
    """Hand-centred metric landmarks (MediaPipe world landmarks: metres, axes of the camera, origin near the
    hand's centre): r_i = ((kp_i - mean kp) - (l_i - mean l)) / sigma_m. Compares shape, size and
    orientation, not position. landmarks_m: (21, 3), NaN rows missing (the means use the valid rows)."""
    ok = np.isfinite(landmarks_m).all(1)
    kp, lm = kp_m[ok], landmarks_m[ok]
    r = ((kp - kp.mean(0)) - (lm - lm.mean(0))) / sigma_m
    if d_kp is None:
        return _rows(r, None)
    d = d_kp[ok]
    return _rows(r, (d - d.mean(0)) / sigma_m)


def weighted_rows(block: Rows, scale: float, kind: str, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """The block's IRLS rows: (J (m * d, n), r (m * d,)) scaled by sqrt(weight x rho'(s)) per keypoint, so
    that J^T J and J^T r are its share of the Gauss-Newton normal equations."""
    m = block.s.size
    root = np.sqrt(weight * robust(block.s, scale, kind)[1])
    return (block.J * root[:, None, None]).reshape(-1, block.J.shape[-1]), (block.r * root[:, None]).reshape(
        m * block.r.shape[-1] if m else 0)


def block_cost(block: Rows, scale: float, kind: str) -> float:
    """0.5 sum rho(s) of a block (the LM trial step needs no Jacobian)."""
    return 0.5 * float(robust(block.s, scale, kind)[0].sum())
