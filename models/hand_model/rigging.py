"""Rigging of the open hand: part labels, smooth skinning weights and the joint regressor (numpy, mm).

Skinning (linear blend, as MANO): every finger vertex is weighted along its finger's axis with a smoothstep of
half-width ~0.7 x the local finger radius centred on each joint plane, so a 90-degree flexion bends over a band
about as wide as the finger is thick (no collapse at the knuckle). Palm vertices follow the wrist joint, the
thenar eminence partly follows the thumb's CMC joint. A few steps of mesh diffusion remove the hard edges where
parts meet.
"""

from __future__ import annotations

import numpy as np

from models.hand_model.anatomy import FINGER_FIRST_JOINT, FINGERS, TIP_NAMES, finger_points_mm
from models.hand_model.sdf import finger_sdf, palm_sdf

N_JOINTS = 16
PALM = -1


def part_labels(verts_mm: np.ndarray) -> np.ndarray:
    """(V,) int64: index into TIP_NAMES of the finger whose SDF is nearest, or PALM (-1)."""
    dists = [palm_sdf(verts_mm)] + [finger_sdf(verts_mm, FINGERS[n]) for n in TIP_NAMES]
    return np.argmin(np.stack(dists), axis=0) - 1


def _smoothstep(x: np.ndarray) -> np.ndarray:
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _finger_weights(v: np.ndarray, name: str) -> np.ndarray:
    """(N, 16) weights of finger vertices v over the wrist and the finger's three joints."""
    pts = finger_points_mm(FINGERS[name])
    radii = FINGERS[name].radii_mm
    j0 = FINGER_FIRST_JOINT[name]
    w = np.zeros((len(v), N_JOINTS))
    # "past[k]" = how far past joint k's plane the vertex lies, as a smooth 0..1 ramp.
    past = []
    for k in range(3):
        axis = pts[k + 1] - pts[k]
        axis = axis / np.linalg.norm(axis)
        half = 0.7 * radii[k] if k > 0 else 1.0 * radii[k]
        past.append(_smoothstep(((v - pts[k]) @ axis + half) / (2 * half)))
    owners = [0, j0, j0 + 1, j0 + 2]
    w[:, owners[0]] += 1.0 - past[0]
    w[:, owners[1]] += past[0] * (1.0 - past[1])
    w[:, owners[2]] += past[1] * (1.0 - past[2])
    w[:, owners[3]] += past[2]
    return w


def _thenar_share(v: np.ndarray) -> np.ndarray:
    """Share of the thumb CMC joint for palm vertices near the thumb metacarpal (0..0.7)."""
    pts = finger_points_mm(FINGERS["thumb"])
    ba = pts[1] - pts[0]
    t = np.clip((v - pts[0]) @ ba / (ba @ ba), 0.0, 1.0)
    d = np.linalg.norm(v - (pts[0] + t[:, None] * ba), axis=1)
    return 0.7 * (1.0 - _smoothstep((d - 14.0) / 16.0)) * _smoothstep(t / 0.3 + 0.3)


def raw_weights(verts_mm: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(V, 16) skinning weights before smoothing."""
    w = np.zeros((len(verts_mm), N_JOINTS))
    for k, name in enumerate(TIP_NAMES):
        sel = labels == k
        w[sel] = _finger_weights(verts_mm[sel], name)
    palm = labels == PALM
    share = _thenar_share(verts_mm[palm])
    w[palm, 0] = 1.0 - share
    w[palm, FINGER_FIRST_JOINT["thumb"]] = share
    _web_weights(verts_mm, palm, w)
    return w


def _web_weights(verts_mm: np.ndarray, palm: np.ndarray, w: np.ndarray) -> None:
    """Palm vertices in a finger's web (past its knuckle plane, near its axis) blend into that finger."""
    for name in ("index", "middle", "ring", "pinky"):
        pts = finger_points_mm(FINGERS[name])
        axis = (pts[1] - pts[0]) / np.linalg.norm(pts[1] - pts[0])
        rel = verts_mm - pts[0]
        along = rel @ axis
        lateral = np.linalg.norm(rel - along[:, None] * axis, axis=1)
        sel = palm & (along > -FINGERS[name].radii_mm[0]) & (lateral < 1.6 * FINGERS[name].radii_mm[0])
        w[sel] = _finger_weights(verts_mm[sel], name)


def vertex_neighbours(n_verts: int, faces: np.ndarray):
    """Sparse (V, V) row-normalised adjacency (uniform Laplacian averaging operator)."""
    import scipy.sparse as sp

    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    a = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n_verts, n_verts)).tocsr()
    a.data[:] = 1.0
    deg = np.asarray(a.sum(1)).ravel()
    return sp.diags(1.0 / deg) @ a


def skinning_weights(verts_mm: np.ndarray, faces: np.ndarray, labels: np.ndarray,
                     smooth_steps: int = 3) -> np.ndarray:
    """(V, 16) float64 weights, rows summing to 1: the raw part weights (from ``part_labels``) diffused over
    the mesh."""
    w = raw_weights(verts_mm, labels)
    avg = vertex_neighbours(len(verts_mm), faces)
    for _ in range(smooth_steps):
        w = 0.5 * w + 0.5 * (avg @ w)
    w[w < 1e-4] = 0.0
    return w / w.sum(1, keepdims=True)


def joint_regressor(verts_mm: np.ndarray, joints_mm: np.ndarray, k: int = 24) -> np.ndarray:
    """(16, V) float64: each joint as an affine combination of its k nearest vertices that reproduces the
    designed joint exactly (least-norm deviation from the uniform average), so joints follow shape changes."""
    reg = np.zeros((len(joints_mm), len(verts_mm)))
    for j, p in enumerate(joints_mm):
        idx = np.argsort(np.linalg.norm(verts_mm - p, axis=1))[:k]
        a = np.vstack([verts_mm[idx].T, np.ones(k)])  # (4, k): sum w v = p, sum w = 1
        w0 = np.full(k, 1.0 / k)
        b = np.append(p, 1.0)
        w = w0 + a.T @ np.linalg.solve(a @ a.T, b - a @ w0)
        reg[j, idx] = w
    return reg
