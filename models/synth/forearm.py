"""A forearm attached at the wrist, so renders have a hand/arm boundary as the paper's full-body renders did.

Built in the hand model's rest frame (x towards the fingers, y out of the back of the hand) and moved rigidly
with the hand's root joint: v = R_global (v_rest - j_root) + j_root + offset, as the model's palm moves.
"""

from __future__ import annotations

import numpy as np


def forearm_mesh(length_m: float = 0.24, wrist_radius_m: float = 0.025, elbow_radius_m: float = 0.034,
                 start_x_m: float = -0.025, flatten: float = 0.72, rings: int = 12, segments: int = 24):
    """Tapered elliptic tube along -x from the wrist, closed at the elbow end. Returns (verts (N, 3) float64
    metres, faces (F, 3) int64), outward winding; the wrist end stays open (hidden inside the hand's wrist)."""
    t = np.linspace(0.0, 1.0, rings)
    a = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    r = wrist_radius_m + (elbow_radius_m - wrist_radius_m) * t
    x = start_x_m - length_m * t
    verts = np.stack([np.repeat(x, segments), (r[:, None] * np.sin(a) * flatten).ravel(),
                      (r[:, None] * np.cos(a)).ravel()], axis=1)
    faces = []
    for i in range(rings - 1):
        for j in range(segments):
            p, q = i * segments + j, i * segments + (j + 1) % segments
            faces += [[p, p + segments, q], [q, p + segments, q + segments]]
    cap = len(verts)
    verts = np.vstack([verts, [[x[-1], 0.0, 0.0]]])
    last = (rings - 1) * segments
    faces += [[last + j, cap, last + (j + 1) % segments] for j in range(segments)]
    return verts, np.asarray(faces, dtype=np.int64)[:, ::-1].copy()


def pose_forearm(verts_rest_m: np.ndarray, R_global: np.ndarray, root_rest_m: np.ndarray,
                 offset_m: np.ndarray) -> np.ndarray:
    """Move the rest forearm like the hand's root: R (v - j_root) + j_root + offset. (N, 3) float64."""
    return (verts_rest_m - root_rest_m) @ R_global.T + root_rest_m + offset_m
