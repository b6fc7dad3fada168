"""Tests for app/reconstruction/kinematics.py against the torch HandModel (smplx lbs) and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.config import HandModelConfig
from app.geometry.rotations import axis_angle_to_matrix
from app.reconstruction import kinematics as K
from models.hand_model.layer import build_hand_model

torch.set_num_threads(1)
TIP_ROWS = [4, 8, 12, 16, 20]  # MediaPipe fingertip keypoints (rigid-attachment approximation in the Jacobian)
JOINT_ROWS = [i for i in range(21) if i not in TIP_ROWS]


@pytest.fixture(scope="module", params=["right", "left"])
def model(request):
    return build_hand_model(HandModelConfig(), request.param)


@pytest.fixture(scope="module")
def kin(model):
    return K.build_kinematics(model)


def _params(seed: int):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.4, 48), rng.normal(0, 1, 10), np.array([0.03, -0.02, 0.45])


def _reference(model, pose, shape, transl):
    with torch.no_grad():
        out = model(*(torch.tensor(a[None], dtype=torch.float32) for a in (pose, shape, transl)))
    return out.keypoints_m[0].numpy(), out.verts_m[0].numpy()


@pytest.mark.parametrize("seed", [0, 1])
def test_forward_matches_hand_model(model, kin, seed):
    pose, shape, transl = _params(seed)
    kp_ref, verts_ref = _reference(model, pose, shape, transl)
    st = K.forward(kin, pose, shape, transl)
    np.testing.assert_allclose(st.keypoints_m, kp_ref, atol=1e-6)
    verts = K.mesh_vertices(K.build_mesh_arrays(model), st, shape)
    assert verts.dtype == np.float32
    np.testing.assert_allclose(verts, verts_ref, atol=1e-6)


def test_rodrigues_and_left_jacobian():
    aa = np.array([[0.0, 0.0, 0.0], [1e-9, 0.0, 0.0], [0.3, -0.2, 0.5], [0.0, 3.0, 0.1]])
    R, Jl = K.rodrigues(aa, with_jacobian=True)
    np.testing.assert_allclose(R, axis_angle_to_matrix(aa), atol=1e-6)
    np.testing.assert_allclose(K.rodrigues(aa), R)
    # R(aa + d) R(aa)^T ~ exp([Jl d]_x): compare the small rotation's skew part with Jl d
    eps = 1e-6
    for k in range(3):
        d = np.zeros(3)
        d[k] = eps
        dR = K.rodrigues(aa + d) @ R.transpose(0, 2, 1)
        omega = np.stack([dR[:, 2, 1] - dR[:, 1, 2], dR[:, 0, 2] - dR[:, 2, 0], dR[:, 1, 0] - dR[:, 0, 1]], -1) / 2
        np.testing.assert_allclose(omega / eps, Jl[:, :, k], atol=1e-5)


def _numeric(f, x, eps=1e-6):
    cols = []
    for i in range(len(x)):
        d = np.zeros_like(x)
        d[i] = eps
        cols.append((f(x + d) - f(x - d)) / (2 * eps))
    return np.stack(cols, axis=-1)


def test_jacobian_matches_finite_differences(kin):
    pose, shape, transl = _params(3)
    st = K.forward(kin, pose, shape, transl)
    d_pose, d_shape = K.jacobian(kin, pose, st)
    num_pose = _numeric(lambda p: K.forward(kin, p, shape, transl).keypoints_m, pose)
    num_shape = _numeric(lambda s: K.forward(kin, pose, s, transl).keypoints_m, shape)
    # joints: exact; tips: rigid attachment to their dominant joint, no pose correctives (small difference)
    np.testing.assert_allclose(d_pose[JOINT_ROWS], num_pose[JOINT_ROWS], atol=1e-8)
    np.testing.assert_allclose(d_shape[JOINT_ROWS], num_shape[JOINT_ROWS], atol=1e-8)
    assert np.abs(d_pose[TIP_ROWS] - num_pose[TIP_ROWS]).max() < 1e-3 * np.abs(num_pose).max()
    assert np.abs(d_shape[TIP_ROWS] - num_shape[TIP_ROWS]).max() < 1e-3 * np.abs(num_shape).max()


def test_masks_follow_the_tree(kin):
    # the wrist moves with nothing but the global rotation; the index tip with global + index 1..3
    assert kin.rot_mask[0].tolist() == [0.0] * 16
    assert np.flatnonzero(kin.rot_mask[8]).tolist() == [0, 1, 2, 3]
    assert np.flatnonzero(kin.rot_mask[5]).tolist() == [0]  # index MCP: only the global rotation
