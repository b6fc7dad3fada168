"""Stereo association: which hand in the left view is which hand in the right view.

Cost of pairing left hand i with right hand j (any calibrated rig):
1. triangulate the 21 keypoints (DLT) and take the median reprojection residual in pixels (for a rectified
   rig this is half the row disagreement, so it covers the rectified-row test);
2. gate: the pair is impossible when that median exceeds ``max_residual_px``, when the hand lies behind a
   camera, or when its palm (wrist to middle MCP) is outside the plausible length range (a wrong pairing of
   two hands on the same rows triangulates to a stretched or squashed hand at the wrong depth);
3. add ``handedness_penalty_px`` when the two corrected handedness labels differ (labels are a hint, not a
   gate: MediaPipe flips them now and then).
The minimum-cost matching, each hand allowed to stay unmatched at the gate cost, is solved exactly with the
Hungarian algorithm on the usual augmented matrix; unmatched hands become mono observations.
Pure numpy / scipy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from app.geometry.triangulation import reprojection_residuals, triangulate_dlt

_IMPOSSIBLE = 1e9


@dataclass(frozen=True)
class AssociationParams:
    """Gates and penalty of the pairing cost (pixels, metres); see the module docstring."""

    max_residual_px: float = 12.0
    handedness_penalty_px: float = 6.0
    palm_min_m: float = 0.04
    palm_max_m: float = 0.16


def pair_cost(px_left: np.ndarray, px_right: np.ndarray, P_left: np.ndarray, P_right: np.ndarray,
              same_label: bool, params: AssociationParams) -> float:
    """Cost in pixels of pairing two hands (px: (21, 2) undistorted pixels, P: (3, 4)); inf when gated."""
    P = [np.asarray(P_left, np.float64), np.asarray(P_right, np.float64)]
    px = [np.asarray(px_left, np.float64), np.asarray(px_right, np.float64)]
    X = triangulate_dlt(P, px)
    with np.errstate(invalid="ignore"):
        residual = float(np.nanmedian(reprojection_residuals(X, P, px).max(axis=0)))
        depth_ok = all(np.nanmedian(np.c_[X, np.ones(len(X))] @ Pv[2]) > 0 for Pv in P)
    palm = float(np.linalg.norm(X[9] - X[0]))
    plausible = depth_ok and params.palm_min_m <= palm <= params.palm_max_m
    if not (plausible and residual <= params.max_residual_px):
        return float("inf")
    return residual + (0.0 if same_label else params.handedness_penalty_px)


def cost_matrix(left: Sequence[tuple[np.ndarray, str]], right: Sequence[tuple[np.ndarray, str]],
                P_left: np.ndarray, P_right: np.ndarray, params: AssociationParams) -> np.ndarray:
    """(n_left, n_right) float64 pair costs; a hand is (keypoints (21, 2) undistorted px, 'left'/'right')."""
    C = np.full((len(left), len(right)), np.inf)
    for i, (kl, hl) in enumerate(left):
        for j, (kr, hr) in enumerate(right):
            C[i, j] = pair_cost(kl, kr, P_left, P_right, hl == hr, params)
    return C


def match(C: np.ndarray, unmatched_cost: float) -> list[tuple[int | None, int | None]]:
    """Minimum-cost partial matching of a (n, m) cost matrix (inf = forbidden); leaving a hand unmatched
    costs ``unmatched_cost``. Returns pairs (i, j), (i, None), (None, j) covering every hand once."""
    n, m = C.shape
    big = np.full((n + m, m + n), _IMPOSSIBLE)
    big[:n, :m] = np.where(np.isfinite(C), C, _IMPOSSIBLE)
    big[:n, m:][np.diag_indices(n)] = unmatched_cost  # left i -> its own dummy column
    big[n:, :m][np.diag_indices(m)] = unmatched_cost  # right j -> its own dummy row
    big[n:, m:] = 0.0  # dummy-dummy pairs are free
    rows, cols = linear_sum_assignment(big)
    pairs: list[tuple[int | None, int | None]] = []
    for r, c in zip(rows, cols, strict=True):
        if r < n and c < m:
            pairs.append((int(r), int(c)))
        elif r < n:
            pairs.append((int(r), None))
        elif c < m:
            pairs.append((None, int(c)))
    return pairs


def associate(left: Sequence[tuple[np.ndarray, str]], right: Sequence[tuple[np.ndarray, str]],
              P_left: np.ndarray, P_right: np.ndarray,
              params: AssociationParams | None = None) -> list[tuple[int | None, int | None]]:
    """Pair the hands of two views; see the module docstring. Returns (left index | None, right index | None)
    per physical hand, matched pairs first in left-index order."""
    params = params or AssociationParams()
    C = cost_matrix(left, right, P_left, P_right, params)
    # Any gated-in pair costs at most one unmatched hand, so pairing always beats leaving both unmatched.
    pairs = match(C, unmatched_cost=params.max_residual_px + params.handedness_penalty_px)
    return sorted(pairs, key=lambda p: (p[0] is None or p[1] is None, p[0] if p[0] is not None else 99))
