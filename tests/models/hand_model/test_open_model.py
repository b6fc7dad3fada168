"""The embedded open hand model: smplx compatibility, rig quality under flexion, mirroring, determinism."""

import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import smplx
import torch
import trimesh

from app.geometry.rotations import mirror_axis_angle
from models.hand_model.anatomy import MANO_TIP_VERTEX_IDS, design_joints_mm
from models.hand_model.pose_space import angles_to_axis_angle, joint_limits_rad, sample_angles

ASSETS = Path(__file__).resolve().parents[3] / "assets" / "hand_model"
RIGHT = ASSETS / "OPENHAND_RIGHT.pkl"
LEFT = ASSETS / "OPENHAND_LEFT.pkl"

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    with open(RIGHT, "rb") as fh:
        return pickle.load(fh)


@pytest.fixture(scope="module")
def mano():
    return smplx.MANO(str(RIGHT), use_pca=False, flat_hand_mean=True)


def _pose(mano, hand_pose: np.ndarray, glob=None):
    b = hand_pose.shape[0]
    glob = torch.zeros(b, 3) if glob is None else torch.as_tensor(glob, dtype=torch.float32)
    out = mano(hand_pose=torch.as_tensor(hand_pose, dtype=torch.float32), global_orient=glob,
               betas=torch.zeros(b, 10))
    return out.vertices.detach().numpy(), out.joints.detach().numpy()


def test_layout_matches_mano(data):
    v = data["v_template"].shape[0]
    assert 700 <= v <= 1000
    assert data["f"].shape[1] == 3 and data["weights"].shape == (v, 16)
    assert data["J_regressor"].shape == (16, v) and data["kintree_table"].shape == (2, 16)
    assert data["shapedirs"].shape == (v, 3, 10) and data["posedirs"].shape == (v, 3, 135)
    assert data["hands_components"].shape == (45, 45) and data["hands_mean"].shape == (45,)
    np.testing.assert_allclose(data["weights"].sum(1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(data["tip_vertex_ids"], MANO_TIP_VERTEX_IDS)
    assert trimesh.Trimesh(data["v_template"], data["f"], process=False).is_watertight


def test_regressor_reproduces_designed_joints(data):
    joints_mm, tips_mm = design_joints_mm()
    np.testing.assert_allclose(data["J_regressor"] @ data["v_template"] * 1000, joints_mm, atol=1e-6)
    tip_err = np.linalg.norm(data["v_template"][MANO_TIP_VERTEX_IDS] * 1000 - tips_mm, axis=1)
    assert tip_err.max() < 10.0  # smoothing rounds the tips; the tip vertex is the finger's most distal one


@pytest.mark.parametrize("batch", [1, 64])
def test_smplx_forward(mano, batch):
    rng = np.random.default_rng(batch)
    hand_pose = angles_to_axis_angle(sample_angles(rng, batch), _frames())
    verts, joints = _pose(mano, hand_pose, rng.normal(0, 0.5, (batch, 3)))
    assert verts.shape == (batch, 778, 3) and joints.shape == (batch, 16, 3)
    assert np.isfinite(verts).all()


@lru_cache(maxsize=1)
def _frames():
    with open(RIGHT, "rb") as fh:
        return pickle.load(fh)["joint_frames"]


ALL_JOINTS = slice(None)


def _flex_all(deg: float, joints=ALL_JOINTS) -> np.ndarray:
    """Finger joints (default all, thumb included) flexed by deg, clipped to the joint limits."""
    a = np.zeros((1, 15, 3))
    a[:, joints, 0] = np.deg2rad(deg)
    lim = joint_limits_rad()
    return angles_to_axis_angle(np.clip(a, lim[None, :, :, 0], lim[None, :, :, 1]), _frames())


@pytest.mark.parametrize("finger", ["index", "middle", "pinky", "ring", "thumb"])
def test_flexion_keeps_volume_and_edges(mano, data, finger):
    """One finger flexed 90 degrees at each of its joints (clipped to limits)."""
    first = {"index": 0, "middle": 3, "pinky": 6, "ring": 9, "thumb": 12}[finger]
    rest, _ = _pose(mano, np.zeros((1, 45)))
    bent, joints = _pose(mano, _flex_all(90.0, slice(first, first + 3)))
    faces = data["f"].astype(np.int64)
    vol_rest = trimesh.Trimesh(rest[0], faces, process=False).volume
    vol_bent = trimesh.Trimesh(bent[0], faces, process=False).volume
    assert abs(vol_bent / vol_rest - 1.0) < 0.10
    edges = trimesh.Trimesh(rest[0], faces, process=False).edges_unique
    ratio = (np.linalg.norm(bent[0][edges[:, 0]] - bent[0][edges[:, 1]], axis=1)
             / np.linalg.norm(rest[0][edges[:, 0]] - rest[0][edges[:, 1]], axis=1))
    assert ratio.min() > 0.2, f"an edge collapsed to {ratio.min():.2f} of its rest length"


def test_no_knuckle_collapse(mano, data):
    """At 90 degrees every PIP joint keeps skin around it: no vertex of that finger moves into its centre."""
    bent, joints = _pose(mano, _flex_all(90.0))
    w = data["weights"]
    for j, r_mm in ((2, 9.2), (5, 9.4), (8, 8.0), (11, 8.9)):  # PIP joints, rest radii (anatomy.py)
        near = (w[:, j - 1] + w[:, j]) > 0.5
        d = np.linalg.norm(bent[0][near] - joints[0, j], axis=1)
        assert d.min() > 0.45 * r_mm / 1000, f"joint {j}: skin within {d.min() * 1000:.1f} mm of the centre"


def test_left_is_mirror_of_right(mano):
    left = smplx.MANO(str(LEFT), is_rhand=False, use_pca=False, flat_hand_mean=True)
    rng = np.random.default_rng(3)
    hand_pose = angles_to_axis_angle(sample_angles(rng, 4), _frames())
    glob = rng.normal(0, 0.7, (4, 3))
    v_r, _ = _pose(mano, hand_pose, glob)
    v_l, _ = _pose(left, mirror_axis_angle(hand_pose), mirror_axis_angle(glob))
    np.testing.assert_allclose(v_l, v_r * np.array([-1.0, 1.0, 1.0]), atol=1e-6)


def test_uv_layout(data):
    assert data["ft"].shape == data["f"].shape
    assert data["vt"].min() >= 0.0 and data["vt"].max() <= 1.0


def test_pose_samples_within_limits():
    a = sample_angles(np.random.default_rng(0), 500)
    lim = joint_limits_rad()
    assert (a >= lim[None, :, :, 0] - 1e-12).all() and (a <= lim[None, :, :, 1] + 1e-12).all()


def test_shape_directions_change_size_plausibly(mano):
    betas = torch.zeros(3, 10)
    betas[1, 0], betas[2, 0] = 3.0, -3.0
    out = mano(betas=betas, hand_pose=torch.zeros(3, 45), global_orient=torch.zeros(3, 3))
    span = np.ptp(out.vertices.detach().numpy(), axis=1)[:, 0]
    assert 1.1 < span[1] / span[0] < 1.3 and 0.7 < span[2] / span[0] < 0.9


@pytest.mark.slow
def test_generator_reproduces_shipped_asset(data):
    from models.hand_model.generate import build_right_model

    fresh = build_right_model()
    for key in ("v_template", "f", "weights", "J_regressor", "shapedirs", "hands_components", "vt", "ft"):
        np.testing.assert_allclose(np.asarray(fresh[key], float), np.asarray(data[key], float), atol=1e-9,
                                   err_msg=key)
