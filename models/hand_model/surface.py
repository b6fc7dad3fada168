"""Surface extraction of the open hand: SDF -> marching cubes -> quadric decimation -> tips reordered.

Numpy only at the interface; skimage and fast_simplification are used by the generator alone (the shipped
model is a pickle, so the app never needs them).
"""

from __future__ import annotations

import numpy as np

from models.hand_model.anatomy import FINGERS, MANO_TIP_VERTEX_IDS, TIP_NAMES, finger_points_mm
from models.hand_model.sdf import hand_sdf

GRID_LO_MM = np.array([-70.0, -45.0, -105.0])
GRID_HI_MM = np.array([205.0, 30.0, 62.0])


def sample_sdf(step_mm: float) -> np.ndarray:
    """SDF on a regular grid over the hand's box: (NX, NY, NZ) float64, millimetres."""
    axes = [np.arange(GRID_LO_MM[i], GRID_HI_MM[i] + step_mm, step_mm) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    return hand_sdf(grid.reshape(-1, 3)).reshape(grid.shape[:3])


def _largest_component(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    parts = trimesh.Trimesh(verts, faces, process=True).split(only_watertight=False)
    big = max(parts, key=lambda m: len(m.faces))
    return np.asarray(big.vertices), np.asarray(big.faces)


def extract_surface(step_mm: float = 1.0, n_faces: int = 1552) -> tuple[np.ndarray, np.ndarray]:
    """Watertight rest-pose surface: verts (V, 3) float64 mm and faces (F, 3) int64, outward winding."""
    import fast_simplification
    import trimesh
    from skimage.measure import marching_cubes

    d = sample_sdf(step_mm)
    v, f, _, _ = marching_cubes(d, 0.0, spacing=(step_mm,) * 3)
    v, f = _largest_component(v + GRID_LO_MM, f)
    v, f = fast_simplification.simplify(v, f, target_count=n_faces)
    mesh = trimesh.Trimesh(v, f, process=True)
    trimesh.smoothing.filter_taubin(mesh, lamb=0.5, nu=-0.53, iterations=6)
    if mesh.volume < 0:
        mesh.invert()
    if not mesh.is_watertight:
        raise RuntimeError("open hand surface is not watertight; change the SDF or the grid step")
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


def find_tip_vertices(verts_mm: np.ndarray) -> np.ndarray:
    """(5,) int64: per finger (thumb, index, middle, ring, pinky) the vertex furthest along its distal axis,
    among vertices near the designed tip."""
    tips = np.zeros(5, dtype=np.int64)
    for k, name in enumerate(TIP_NAMES):
        pts = finger_points_mm(FINGERS[name])
        axis = (pts[3] - pts[2]) / np.linalg.norm(pts[3] - pts[2])
        near = np.linalg.norm(verts_mm - pts[3], axis=1) < 8.0
        score = np.where(near, verts_mm @ axis, -np.inf)
        tips[k] = int(np.argmax(score))
    return tips


def reorder_tips_to_mano(verts: np.ndarray, faces: np.ndarray, tips: np.ndarray):
    """Permute vertices so the 5 tips sit at MANO's fingertip indices (smplx selects them unchanged).

    Returns (verts, faces, perm) with new_verts = verts[perm].
    """
    n = len(verts)
    if n <= MANO_TIP_VERTEX_IDS.max():
        raise ValueError(f"need more than {MANO_TIP_VERTEX_IDS.max()} vertices to place tips at MANO ids")
    perm = np.full(n, -1, dtype=np.int64)
    perm[MANO_TIP_VERTEX_IDS] = tips
    rest = np.setdiff1d(np.arange(n), tips)
    perm[perm < 0] = rest
    inverse = np.empty(n, dtype=np.int64)
    inverse[perm] = np.arange(n)
    return verts[perm], inverse[faces], perm
