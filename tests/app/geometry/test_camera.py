"""app/geometry/camera.py against OpenCV (projectPoints, undistortPoints) and autograd."""

import cv2
import numpy as np
import pytest
import torch

from app.geometry.camera import (
    invert_transform,
    project,
    project_distorted,
    transform_points,
    undistort_points,
    unproject,
)

torch.set_num_threads(1)

K = np.array([[700.0, 0.0, 640.3], [0.0, 705.0, 359.6], [0.0, 0.0, 1.0]])
DIST5 = np.array([-0.2, 0.05, 0.001, -0.0015, 0.01])
DIST8 = np.array([-0.2, 0.05, 0.001, -0.0015, 0.01, 0.02, -0.01, 0.003])
MODERATE = np.array([-0.05, 0.01, 0.0005, -0.0005, 0.0])  # ZED-like lens


def _points(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return np.c_[rng.uniform(-0.35, 0.35, (n, 2)), rng.uniform(0.4, 1.5, n)]


def _random_T(seed=1):
    rng = np.random.default_rng(seed)
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(rng.normal(size=3))[0]
    T[:3, 3] = rng.normal(size=3)
    return T


def _cv_project(points, K, dist, T=None):
    T = np.eye(4) if T is None else T
    rvec = cv2.Rodrigues(T[:3, :3])[0]
    return cv2.projectPoints(points, rvec, T[:3, 3], K, dist)[0][:, 0]


def test_project_matches_cv2():
    P = _points()
    np.testing.assert_allclose(project(P, K), _cv_project(P, K, None), atol=1e-6)


def test_project_torch_batch_and_per_batch_K():
    P = torch.from_numpy(_points(24).reshape(2, 3, 4, 3))
    out = project(P, K)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3, 4, 2) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy().reshape(-1, 2), project(_points(24), K), atol=1e-12)
    K2 = np.stack([K, K * np.array([[2.0], [2.0], [1.0]])])  # per-batch intrinsics (2, 3, 3)
    out2 = project(P[:, 0], torch.from_numpy(K2)[:, None])  # points (2, 4, 3), K (2, 1, 3, 3)
    np.testing.assert_allclose(out2[1].numpy(), project(P[1, 0].numpy(), K2[1]), atol=1e-12)


def test_project_keeps_float32_and_mixes_numpy_K():
    P = torch.from_numpy(_points(5)).float()
    assert project(P, K).dtype == torch.float32
    assert project(_points(5).astype(np.float32), K.astype(np.float32)).dtype == np.float32


def test_project_gradcheck():
    P = torch.from_numpy(_points(4)).requires_grad_()
    Kt = torch.from_numpy(K).requires_grad_()
    assert torch.autograd.gradcheck(project, (P, Kt))


@pytest.mark.parametrize("dist", [DIST5[:4], DIST5, DIST8])
def test_project_distorted_matches_cv2(dist):
    P = _points()
    np.testing.assert_allclose(project_distorted(P, K, dist), _cv_project(P, K, dist), atol=1e-6)


def test_project_distorted_rejects_bad_dist():
    with pytest.raises(ValueError, match="dist"):
        project_distorted(_points(3), K, np.zeros(3))
    with pytest.raises(ValueError, match="thin-prism"):
        project_distorted(_points(3), K, np.r_[DIST8, 0.1, 0, 0, 0])
    np.testing.assert_allclose(project_distorted(_points(3), K, np.r_[DIST8, 0, 0, 0, 0]),
                               project_distorted(_points(3), K, DIST8), atol=1e-12)


def _cv_undistort(px, dist, criteria=None, P=None):
    src = px.reshape(-1, 1, 2)
    if criteria is None:
        return cv2.undistortPoints(src, K, dist, P=P)[:, 0]
    return cv2.undistortPointsIter(src, K, dist, None, P, criteria)[:, 0]


def test_undistort_matches_cv2_default_with_its_iteration_count():
    px = _cv_project(_points(), K, DIST5)
    np.testing.assert_allclose(undistort_points(px, K, DIST5, iterations=5, tol=0), _cv_undistort(px, DIST5),
                               atol=1e-12)


@pytest.mark.parametrize("dist", [DIST5, DIST8])
def test_undistort_converged_matches_cv2_iter(dist):
    P = _points()
    px = _cv_project(P, K, dist)
    ref = _cv_undistort(px, dist, (cv2.TERM_CRITERIA_COUNT, 100, 0))
    np.testing.assert_allclose(undistort_points(px, K, dist, iterations=100, tol=0), ref, atol=1e-12)
    np.testing.assert_allclose(undistort_points(px, K, dist), P[:, :2] / P[:, 2:], atol=1e-9)


def test_undistort_moderate_distortion_matches_cv2_default():
    px = _cv_project(_points(), K, MODERATE)
    np.testing.assert_allclose(undistort_points(px, K, MODERATE), _cv_undistort(px, MODERATE), atol=1e-6)
    # cv2's default 5 iterations are ~1e-5 px short of convergence at the image edge: compare pixels converged
    converged = _cv_undistort(px, MODERATE, (cv2.TERM_CRITERIA_COUNT, 100, 0), P=K)
    np.testing.assert_allclose(undistort_points(px, K, MODERATE, output="pixels"), converged, atol=1e-6)


def test_undistort_round_trip_and_errors():
    P = _points()
    px = _cv_project(P, K, DIST5)
    ideal = undistort_points(px, K, DIST5, output="pixels")
    np.testing.assert_allclose(ideal, project(P, K), atol=1e-6)
    back = np.c_[undistort_points(px, K, DIST5), np.ones(len(P))]
    np.testing.assert_allclose(project_distorted(back, K, DIST5), px, atol=1e-6)
    with pytest.raises(ValueError, match="output"):
        undistort_points(px, K, DIST5, output="mm")


def test_unproject_inverts_project():
    P = _points()
    np.testing.assert_allclose(unproject(project(P, K), P[:, 2], K), P, atol=1e-12)
    Pt = torch.from_numpy(P).reshape(3, 20, 3)
    back = unproject(project(Pt, K), Pt[..., 2], K)
    assert back.shape == (3, 20, 3)
    torch.testing.assert_close(back, Pt)
    assert unproject(np.array([[640.3, 359.6]]), 2.0, K).tolist() == [[0.0, 0.0, 2.0]]


def test_transform_points_matches_cv2_extrinsics():
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(np.array([0.1, -0.3, 0.2]))[0]
    T[:3, 3] = [0.05, -0.1, 0.8]  # keeps the points in front of the camera
    P = _points() - [0, 0, 0.3]
    np.testing.assert_allclose(project(transform_points(T, P), K), _cv_project(P, K, None, T), atol=1e-6)


def test_transform_points_torch_batched_T():
    Ts = torch.from_numpy(np.stack([_random_T(1), _random_T(2)]))
    P = torch.from_numpy(_points(10)).reshape(2, 5, 3)
    out = transform_points(Ts[:, None], P)
    ref = transform_points(_random_T(2), P[1].numpy())
    np.testing.assert_allclose(out[1].numpy(), ref, atol=1e-12)


def test_invert_transform():
    T = _random_T()
    np.testing.assert_allclose(invert_transform(T), np.linalg.inv(T), atol=1e-12)
    P = _points(5)
    np.testing.assert_allclose(transform_points(invert_transform(T), transform_points(T, P)), P, atol=1e-12)
    Ts = torch.from_numpy(np.stack([_random_T(1), _random_T(2)])).requires_grad_()
    inv = invert_transform(Ts)
    torch.testing.assert_close(inv @ Ts, torch.eye(4, dtype=torch.float64).expand(2, 4, 4))
    assert torch.autograd.gradcheck(invert_transform, (Ts,))
