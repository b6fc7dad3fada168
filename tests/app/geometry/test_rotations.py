"""app/geometry/rotations.py against cv2.Rodrigues, autograd at zero angle, and the hand mirror."""

import cv2
import numpy as np
import pytest
import torch

from app.geometry.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    mirror_axis_angle,
    mirror_points_x,
)

torch.set_num_threads(1)


def _axis_angles(seed=0):
    """Random, tiny, zero, near-pi and (about) pi rotations, (K, 3) float64."""
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(8, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.array([1e-12, 1e-7, 1e-3, 0.5, 2.0, np.pi - 1e-3, np.pi - 1e-6, 3.0])
    return np.concatenate([rng.uniform(-2, 2, (20, 3)), axes * angles[:, None], np.zeros((1, 3))])


def test_axis_angle_to_matrix_matches_cv2():
    aa = _axis_angles()
    R = axis_angle_to_matrix(aa)
    assert R.shape == (len(aa), 3, 3) and R.dtype == np.float64
    for a, r in zip(aa, R, strict=True):
        np.testing.assert_allclose(r, cv2.Rodrigues(a)[0], atol=1e-12)


def test_matrix_to_axis_angle_matches_cv2():
    R = np.stack([cv2.Rodrigues(a)[0] for a in _axis_angles()])
    out = matrix_to_axis_angle(R)
    for o, r in zip(out, R, strict=True):
        np.testing.assert_allclose(o, cv2.Rodrigues(r)[0][:, 0], atol=1e-6)


def test_matrix_to_axis_angle_at_pi_up_to_sign():
    for axis in np.eye(3).tolist() + [[1 / np.sqrt(2), -1 / np.sqrt(2), 0.0]]:
        aa = np.pi * np.array(axis)
        out = matrix_to_axis_angle(cv2.Rodrigues(aa)[0])
        assert np.allclose(out, aa, atol=1e-9) or np.allclose(out, -aa, atol=1e-9)


def test_round_trip_batched_torch():
    aa = torch.from_numpy(_axis_angles()[:24].reshape(2, 4, 3, 3))
    aa = aa * (torch.linalg.norm(aa, dim=-1, keepdim=True) < 3.1)  # angles in [0, pi): unique inverse
    R = axis_angle_to_matrix(aa)
    assert isinstance(R, torch.Tensor) and R.shape == (2, 4, 3, 3, 3)
    torch.testing.assert_close(matrix_to_axis_angle(R), aa, atol=1e-9, rtol=0)


def test_float32_accuracy():
    aa = _axis_angles()[:-3]
    R32 = axis_angle_to_matrix(aa.astype(np.float32))
    assert R32.dtype == np.float32
    np.testing.assert_allclose(R32, axis_angle_to_matrix(aa), atol=1e-6)
    np.testing.assert_allclose(matrix_to_axis_angle(R32.astype(np.float64)), matrix_to_axis_angle(
        axis_angle_to_matrix(aa)), atol=1e-6)


@pytest.mark.parametrize("aa", [np.zeros(3), np.array([1e-9, -2e-9, 0.0]), np.array([0.3, -1.2, 0.7])])
def test_axis_angle_to_matrix_gradcheck(aa):
    x = torch.tensor(aa, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (x,))


def test_gradient_at_exact_zero_is_the_generator():
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(axis_angle_to_matrix, x)  # (3, 3, 3)
    expected = torch.stack([torch.from_numpy(cv2.Rodrigues(np.eye(3)[i] * 1e-9)[0] - np.eye(3)) / 1e-9
                            for i in range(3)], dim=-1)
    torch.testing.assert_close(jac, expected, atol=1e-6, rtol=0)


def test_matrix_to_axis_angle_gradients():
    R = torch.from_numpy(cv2.Rodrigues(np.array([0.4, -0.2, 0.9]))[0]).requires_grad_()
    assert torch.autograd.gradcheck(matrix_to_axis_angle, (R,))
    for aa in (torch.zeros(3, dtype=torch.float64), torch.tensor([0.0, np.pi - 1e-4, 0.0]).double()):
        aa.requires_grad_()
        (matrix_to_axis_angle(axis_angle_to_matrix(aa)) ** 2).sum().backward()
        assert torch.isfinite(aa.grad).all()
        torch.testing.assert_close(aa.grad, 2 * aa.detach(), atol=1e-6, rtol=0)  # the round trip is identity


def test_mirror_commutes_with_rotation():
    rng = np.random.default_rng(4)
    aa = rng.normal(size=(10, 3))
    p = rng.normal(size=(10, 3))
    lhs = np.einsum("nij,nj->ni", axis_angle_to_matrix(mirror_axis_angle(aa)), mirror_points_x(p))
    rhs = mirror_points_x(np.einsum("nij,nj->ni", axis_angle_to_matrix(aa), p))
    np.testing.assert_allclose(lhs, rhs, atol=1e-12)
    M = np.diag([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(axis_angle_to_matrix(mirror_axis_angle(aa)), M @ axis_angle_to_matrix(aa) @ M,
                               atol=1e-12)


def test_mirror_full_pose_and_involution():
    pose = torch.randn(2, 48, dtype=torch.float64)
    mirrored = mirror_axis_angle(pose)
    torch.testing.assert_close(mirrored.reshape(2, 16, 3), mirror_axis_angle(pose.reshape(2, 16, 3)))
    torch.testing.assert_close(mirror_axis_angle(mirrored), pose)
    assert mirror_points_x(np.array([1.0, 2.0, 3.0])).tolist() == [-1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="3 J"):
        mirror_axis_angle(np.zeros(4))
