"""Deterministic generator of the open hand model, saved in MANO's pickle layout.

Steps: (1) rest surface from the anatomical SDF (surface.py); (2) fingertip vertices moved to MANO's tip
indices; (3) skinning weights and an exact joint regressor (rigging.py), pose correctives fitted to arc
blending (correctives.py); (4) shape directions (shapes.py);
(5) pose components from the synergy sampler (pose_space.py); (6) a UV layout (xatlas); (7) the left hand by
mirroring the right across the model's x = 0 plane; (8) both written as plain-numpy pickles that smplx loads as
it loads MANO_RIGHT.pkl / MANO_LEFT.pkl.

``python -m models.hand_model generate`` rewrites assets/hand_model/; the same code gives the same files.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from models.hand_model.anatomy import MANO_PARENTS, MANO_TIP_VERTEX_IDS, design_joints_mm
from models.hand_model.correctives import fit_posedirs
from models.hand_model.pose_space import joint_frames, joint_limits_rad, pose_pca
from models.hand_model.rigging import joint_regressor, part_labels, skinning_weights
from models.hand_model.shapes import shape_directions
from models.hand_model.surface import extract_surface, find_tip_vertices, reorder_tips_to_mano

ASSET_DIR = Path(__file__).resolve().parents[2] / "assets" / "hand_model"
MODEL_VERSION = 1
SEED = 20211
# Per-joint axis-angle sign pattern of the mirror x -> -x: rotation vector (x, y, z) -> (x, -y, -z).
_AA_MIRROR = np.array([1.0, -1.0, -1.0])


def uv_layout(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """xatlas charts: vt (T, 2) float64 in [0, 1], (0, 0) bottom-left; ft (F, 3) int64 into vt."""
    import xatlas

    atlas = xatlas.Atlas()
    atlas.add_mesh(verts.astype(np.float32), faces.astype(np.uint32))
    chart = xatlas.ChartOptions()
    chart.max_iterations = 4
    pack = xatlas.PackOptions()
    pack.padding = 4
    pack.resolution = 1024
    atlas.generate(chart, pack)
    _, ft, vt = atlas[0]
    return vt.astype(np.float64), ft.astype(np.int64)


def build_right_model() -> dict:
    """The right open hand as a MANO-layout dict (metres)."""
    verts_mm, faces = extract_surface()
    verts_mm, faces, _ = reorder_tips_to_mano(verts_mm, faces, find_tip_vertices(verts_mm))
    joints_mm, _ = design_joints_mm()
    labels = part_labels(verts_mm)
    weights = skinning_weights(verts_mm, faces, labels)
    components, comp_std, mean = pose_pca(np.random.default_rng(SEED))
    vt, ft = uv_layout(verts_mm / 1000.0, faces)
    kintree = np.stack([MANO_PARENTS.astype(np.int64), np.arange(16)])
    kintree[0, 0] = 2**32 - 1
    return {
        "v_template": verts_mm / 1000.0,
        "f": faces.astype(np.uint32),
        "weights": weights,
        "J_regressor": joint_regressor(verts_mm, joints_mm),
        "kintree_table": kintree,
        "shapedirs": shape_directions(verts_mm, labels, weights),
        "posedirs": fit_posedirs(verts_mm / 1000.0, weights, joints_mm / 1000.0, joint_frames(),
                                 joint_limits_rad()),
        "hands_components": components,
        "hands_components_std": comp_std,
        "hands_mean": mean,
        "tip_vertex_ids": MANO_TIP_VERTEX_IDS.copy(),
        "vertex_part": labels,
        "joint_frames": joint_frames(),
        "joint_limits": joint_limits_rad(),
        "vt": vt,
        "ft": ft,
        "model_name": "open_hand_right",
        "model_version": MODEL_VERSION,
    }


def _mirror_posedirs(posedirs: np.ndarray) -> np.ndarray:
    """Pose feature (R - I)_ik of a mirrored joint is m_i m_k (R - I)_ik, and the offset's c-component is
    negated by m_c, with m = (-1, 1, 1): P_left[v, c, (j, i, k)] = m_c m_i m_k P_right[v, c, (j, i, k)]."""
    m = np.array([-1.0, 1.0, 1.0])
    sign = m[:, None, None] * m[None, :, None] * m[None, None, :]  # (c, i, k)
    p = posedirs.reshape(posedirs.shape[0], 3, 15, 3, 3)
    return (p * sign[None, :, None, :, :]).reshape(posedirs.shape)


def mirror_to_left(right: dict) -> dict:
    """The left hand: the right mirrored across x = 0 (faces re-wound so normals stay outward)."""
    left = dict(right)
    flip = np.array([-1.0, 1.0, 1.0])
    left["v_template"] = right["v_template"] * flip
    left["f"] = right["f"][:, [0, 2, 1]]
    left["ft"] = right["ft"][:, [0, 2, 1]]
    left["shapedirs"] = right["shapedirs"] * flip[None, :, None]
    left["posedirs"] = _mirror_posedirs(right["posedirs"])
    aa = np.tile(_AA_MIRROR, 15)
    left["hands_components"] = right["hands_components"] * aa[None, :]
    left["hands_mean"] = right["hands_mean"] * aa
    left["joint_frames"] = right["joint_frames"] * _AA_MIRROR[None, None, :]
    left["model_name"] = "open_hand_left"
    return left


def write_model(model: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(model, fh, protocol=4)


def generate(out_dir: Path = ASSET_DIR) -> tuple[Path, Path]:
    """Build both hands and write OPENHAND_RIGHT.pkl / OPENHAND_LEFT.pkl into out_dir."""
    right = build_right_model()
    paths = (out_dir / "OPENHAND_RIGHT.pkl", out_dir / "OPENHAND_LEFT.pkl")
    write_model(right, paths[0])
    write_model(mirror_to_left(right), paths[1])
    return paths
