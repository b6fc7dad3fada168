"""Closed-form cold start of the model fit (pure numpy): size from bone lengths, rotation by Kabsch on the
palm, translation by linear least squares on the pixels.

The palm keypoints (wrist, thumb CMC, the four finger MCPs) are moved by the global rotation only (their
joints' parents are the root), so aligning them needs no finger pose. Metres, left-camera frame, MediaPipe
keypoint order throughout.
"""

from __future__ import annotations

import numpy as np

from app.geometry.rotations import matrix_to_axis_angle
from app.reconstruction.kinematics import KeypointKinematics, forward, rodrigues
from models.hand_model.layer import MANO_TO_MEDIAPIPE

PALM = np.array([0, 1, 5, 9, 13, 17])
# Parent -> child keypoint pairs: the 20 bones of the skeleton plus the MCP-to-MCP palm widths.
BONES = np.array([(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11),
                  (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20), (5, 9),
                  (9, 13), (13, 17)])
DEFAULT_DEPTH_M = 0.5  # where a hand goes when its pixels cannot place it (degenerate least squares)


def rest_keypoints(kin: KeypointKinematics, shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(keypoints (21, 3) m, their derivative by the shape (21, 3, 10)) in the flat rest pose, model frame.
    Both are exact: with no rotation the keypoints are linear in the shape."""
    st = forward(kin, np.zeros(48), shape, np.zeros(3))
    return st.keypoints_m, np.concatenate([kin.Jdirs_m, kin.tip_dirs_m])[MANO_TO_MEDIAPIPE]


def shape_from_bones(kin: KeypointKinematics, points_m: np.ndarray, sigma_m: float, shape_sigma: float,
                     iterations: int = 3) -> np.ndarray:
    """(10,) shape whose rest bone lengths match those of ``points_m`` (21, 3) metres (NaN rows missing).

    Gauss-Newton on sum_b ((L_b(beta) - L_obs_b) / sigma_m)^2 + |beta / shape_sigma|^2, with
    dL_b / dbeta = u_b^T (dK_child - dK_parent) (u_b the bone's unit direction). Returns zeros when fewer than
    three bones are observed.
    """
    a, b = BONES[:, 0], BONES[:, 1]
    observed = np.linalg.norm(points_m[b] - points_m[a], axis=1)
    ok = np.isfinite(observed)
    beta = np.zeros(10)
    if ok.sum() < 3:
        return beta
    for _ in range(iterations):
        kp, d = rest_keypoints(kin, beta)
        vec = kp[b[ok]] - kp[a[ok]]
        length = np.linalg.norm(vec, axis=1)
        J = np.einsum("nc,ncs->ns", vec / length[:, None], d[b[ok]] - d[a[ok]]) / sigma_m
        r = (length - observed[ok]) / sigma_m
        H = J.T @ J + np.eye(10) / shape_sigma**2
        beta = beta - np.linalg.solve(H, J.T @ r + beta / shape_sigma**2)
    return beta


def kabsch(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rigid transform: dst ~ R src + t for (N, 3) point sets (N >= 3, no reflection).
    Returns (R (3, 3), t (3,)). Steps: 1. centre; 2. SVD of the covariance; 3. fix the determinant's sign."""
    cs, cd = src.mean(0), dst.mean(0)
    U, _, Vt = np.linalg.svd((src - cs).T @ (dst - cd))
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(Vt.T @ U.T)) or 1.0])
    R = Vt.T @ D @ U.T
    return R, cd - R @ cs


def align_to_points(model_kp_m: np.ndarray, root_m: np.ndarray, target_m: np.ndarray) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """Global rotation R and translation t placing the unrotated model (keypoints (21, 3), root joint (3,))
    on ``target_m`` (21, 3, NaN rows missing) by Kabsch on the palm (all valid keypoints when fewer than 3 palm
    ones are valid). The model rotates about its root: placed = R (kp - root) + root + t."""
    ok = np.isfinite(target_m).all(1)
    idx = PALM[ok[PALM]] if ok[PALM].sum() >= 3 else np.flatnonzero(ok)
    if len(idx) < 3:
        raise ValueError(f"cannot align the hand: {len(idx)} valid 3D keypoints, need at least 3")
    R, c = kabsch(model_kp_m[idx], target_m[idx])
    return R, c + R @ root_m - root_m


def translation_from_pixels(points_m: np.ndarray, views) -> np.ndarray:
    """Translation t placing hand points ``points_m`` (21, 3) (already rotated, metres) so that P (X + t)
    lands on the pixels, by linear least squares: per view and keypoint the rows (P_r - u P_3)[:3] . t =
    -(P_r - u P_3) . [X; 1] for r = 1, 2. views: (P (3, 4), px (21, 2) NaN rows missing) pairs. Falls back to
    DEFAULT_DEPTH_M along the first view's centroid ray when the system is degenerate or puts the hand behind
    the camera."""
    rows, rhs = [], []
    for P, px in views:
        ok = np.isfinite(px).all(1)
        Xh = np.c_[points_m[ok], np.ones(ok.sum())]
        for r in (0, 1):
            A = P[r][None, :] - px[ok, r:r + 1] * P[2][None, :]
            rows.append(A[:, :3])
            rhs.append(-(A * Xh).sum(1))
    A, b = np.concatenate(rows), np.concatenate(rhs)
    if len(b) >= 3 and np.linalg.matrix_rank(A) == 3:
        t = np.linalg.lstsq(A, b, rcond=None)[0]
        if all((P[2, :3] @ (points_m.mean(0) + t) + P[2, 3]) > 0.05 for P, _ in views):
            return t
    return _on_ray(points_m, views[0])


def _on_ray(points_m: np.ndarray, view) -> np.ndarray:
    """Translation putting the points' centroid at DEFAULT_DEPTH_M on the ray of the pixels' centroid."""
    P, px = view
    M, p4 = P[:, :3], P[:, 3]
    centre_px = np.nanmean(px, axis=0)
    ray = np.linalg.solve(M, np.r_[centre_px, 1.0])  # direction in the left-camera frame
    origin = -np.linalg.solve(M, p4)
    depth_scale = DEFAULT_DEPTH_M / (M[2] @ ray)
    return origin + depth_scale * ray - points_m.mean(0)


def rotation_candidates() -> np.ndarray:
    """(8, 3) axis-angle global rotations spreading the hand's orientation (fingers up/down/left/right,
    palm towards or away from the camera): starting points of a mono fit without world landmarks."""
    base = [np.zeros(3), np.array([0.0, 0.0, np.pi]), np.array([0.0, 0.0, np.pi / 2]),
            np.array([0.0, 0.0, -np.pi / 2])]
    flip = np.array([0.0, np.pi, 0.0])
    out = []
    for b in base:
        out.append(b)
        Rb, Rf = rodrigues(b[None])[0], rodrigues(flip[None])[0]
        out.append(np.asarray(matrix_to_axis_angle(Rb @ Rf), dtype=np.float64))
    return np.array(out)
