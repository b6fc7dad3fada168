"""Pose-corrective blend shapes (MANO's ``posedirs``) for the open hand, fitted to arc blending.

Linear blend skinning moves a vertex shared by two bones along the chord between its two rigid positions, so
the inside of a bent knuckle collapses. Blending the rotation angle instead (the vertex turns about the joint by
its weight times the joint angle) keeps its distance to the joint. For each joint we sample rotations within its
limits, compute the rest-frame offset d that makes LBS land on the arc-blended position,
    d = A^-1 (target - b) - v,  with LBS(v) = A v + b, A = (1 - a) I + a R, b = a (c - R c),
and fit d linearly on MANO's pose feature vec(R - I) by ridge least squares (one joint at a time; joints add).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from models.hand_model.anatomy import MANO_PARENTS
from models.hand_model.pose_space import angles_to_axis_angle


def _subtree(j: int) -> list[int]:
    out = [j]
    for k in range(16):
        if MANO_PARENTS[k] in out and k not in out:
            out.append(k)
    return out


def _corrective_samples(v: np.ndarray, alpha: np.ndarray, c: np.ndarray, aa: np.ndarray) -> np.ndarray:
    """(N_samples, V, 3) rest-frame offsets for rotation vectors aa (N_samples, 3) about centre c."""
    out = np.zeros((len(aa), len(v), 3))
    for s, r in enumerate(aa):
        R = Rotation.from_rotvec(r).as_matrix()
        target = c + np.einsum("vij,vj->vi", Rotation.from_rotvec(alpha[:, None] * r).as_matrix(), v - c)
        A = (1 - alpha)[:, None, None] * np.eye(3) + alpha[:, None, None] * R
        b = alpha[:, None] * (c - R @ c)
        out[s] = np.linalg.solve(A, (target - b)[..., None])[..., 0] - v
    return out


def fit_posedirs(v_template: np.ndarray, weights: np.ndarray, joints: np.ndarray, frames: np.ndarray,
                 limits: np.ndarray, n_samples: int = 40, ridge: float = 1e-3) -> np.ndarray:
    """(V, 3, 135) posedirs (metres per unit of the pose feature), rest positions/joints in metres."""
    rng = np.random.default_rng(7)
    posedirs = np.zeros((len(v_template), 3, 135))
    for j in range(1, 16):
        alpha = weights[:, _subtree(j)].sum(1)
        active = (alpha > 1e-3) & (alpha < 1 - 1e-3)
        angles = np.zeros((n_samples, 15, 3))
        angles[:, j - 1] = rng.uniform(limits[j - 1, :, 0], limits[j - 1, :, 1], (n_samples, 3))
        aa = angles_to_axis_angle(angles, frames).reshape(n_samples, 15, 3)[:, j - 1]
        d = _corrective_samples(v_template[active], alpha[active], joints[j], aa)
        feats = np.stack([(Rotation.from_rotvec(r).as_matrix() - np.eye(3)).ravel() for r in aa])
        gram = feats.T @ feats + ridge * np.eye(9)
        coef = np.linalg.solve(gram, feats.T @ d.reshape(n_samples, -1))  # (9, n_active * 3)
        posedirs[active, :, (j - 1) * 9:j * 9] = coef.reshape(9, -1, 3).transpose(1, 2, 0)
    return posedirs
