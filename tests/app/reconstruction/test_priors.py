"""Tests for app/reconstruction/priors.py: pose space from the model dict, joint limits, PCA box, whitening."""

from __future__ import annotations

import numpy as np
import pytest

from app.reconstruction import priors as P
from models.hand_model.mano_io import load_mano_dict, open_model_path
from models.hand_model.pose_space import angles_to_axis_angle, joint_frames, joint_limits_rad, sample_angles


@pytest.fixture(scope="module")
def open_dict():
    return load_mano_dict(open_model_path("right"))


@pytest.fixture(scope="module")
def prior(open_dict):
    return P.pose_prior_from_dict(open_dict)


def mano_like(d: dict) -> dict:
    """The open model's dict without the keys real MANO lacks (std, joint frames and limits)."""
    return {k: v for k, v in d.items() if k not in ("hands_components_std", "joint_frames", "joint_limits")}


def test_open_model_prior_uses_shipped_std_and_limits(prior, open_dict):
    assert prior.std_source == "model" and prior.has_limits
    np.testing.assert_allclose(prior.std_rad, open_dict["hands_components_std"])
    assert prior.limit_map.shape == (45, 45)


def test_mano_like_prior_falls_back_to_decay_and_no_limits(open_dict):
    p = P.pose_prior_from_dict(mano_like(open_dict), fallback_top_std_rad=0.8, fallback_decay=0.9)
    assert p.std_source == "decay" and not p.has_limits
    np.testing.assert_allclose(p.std_rad[:3], [0.8, 0.72, 0.648])


def test_missing_components_is_a_clear_error(open_dict):
    d = {k: v for k, v in open_dict.items() if k != "hands_components"}
    with pytest.raises(ValueError, match="hands_components"):
        P.pose_prior_from_dict(d)
    with pytest.raises(ValueError, match="joint_limits.*shape"):
        P.pose_prior_from_dict({**open_dict, "joint_limits": np.zeros((15, 3))})


def test_whitened_basis_round_trip_and_floor(prior):
    basis = P.whitened_basis(prior, 45, 0.05)
    assert np.all(np.linalg.norm(basis, axis=1) >= 0.05 - 1e-12)
    theta = angles_to_axis_angle(sample_angles(np.random.default_rng(0), 1), joint_frames())[0]
    z = P.hand_pose_to_z(theta, basis, prior)
    np.testing.assert_allclose(prior.mean_rad + z @ basis, theta, atol=1e-9)
    with pytest.raises(ValueError, match="n_pose_components"):
        P.whitened_basis(prior, 0, 0.05)


def test_reduced_basis_projects_least_squares(prior):
    basis = P.whitened_basis(prior, 10, 0.05)
    theta = prior.mean_rad + 0.3 * prior.components[2] + 0.01 * prior.components[30]
    z = P.hand_pose_to_z(theta, basis, prior)
    assert z.shape == (10,)
    np.testing.assert_allclose(z[2] * basis[2], 0.3 * prior.components[2], atol=1e-9)  # direction 30 dropped


def test_joint_angles_exact_for_one_axis(prior):
    angles = np.zeros((1, 15, 3))
    angles[0, 4, 0] = 1.2  # middle finger MCP flexion
    angles[0, 0, 1] = -0.2  # index MCP abduction
    theta = angles_to_axis_angle(angles, joint_frames())[0]
    np.testing.assert_allclose(P.joint_angles(theta, prior.frames), angles[0], atol=1e-12)


def test_joint_limit_residual_zero_inside_and_linear_outside(prior):
    lim = joint_limits_rad()
    inside = angles_to_axis_angle(lim.mean(-1)[None], joint_frames())[0]
    r, J = P.joint_limit_residual(inside, prior, 0.05)
    assert np.all(r == 0) and np.all(J == 0)
    angles = lim.mean(-1)
    angles[7, 0] = lim[7, 0, 1] + 0.1  # PIP of the middle finger 0.1 rad past its maximum flexion
    theta = angles_to_axis_angle(angles[None], joint_frames())[0]
    r, J = P.joint_limit_residual(theta, prior, 0.05)
    assert r[21] == pytest.approx(0.1 / 0.05, rel=1e-6) and np.count_nonzero(r) == 1
    eps = 1e-7
    num = (P.joint_limit_residual(theta + eps * np.eye(45)[22], prior, 0.05)[0] - r) / eps
    np.testing.assert_allclose(J[:, 22], num, atol=1e-5)
    assert P.joint_limit_residual(theta, prior, 0.05, jac=False)[1] is None


def test_pca_box():
    r, d = P.pca_box(np.array([0.5, -4.0, 3.5]), 3.0)
    np.testing.assert_allclose(r, [0.0, -1.0, 0.5])
    np.testing.assert_allclose(d, [0.0, 1.0, 1.0])
