"""app/geometry/triangulation.py against cv2.triangulatePoints and noise-free ground truth."""

import cv2
import numpy as np
import pytest

from app.geometry.triangulation import reprojection_residuals, triangulate_dlt, triangulate_rectified

K = np.array([[700.0, 0.0, 640.0], [0.0, 700.0, 360.0], [0.0, 0.0, 1.0]])
BASELINE_M = 0.12  # ZED


def _P(rvec, cam_centre):
    """Projection matrix of a camera at ``cam_centre`` (left frame) rotated by ``rvec``."""
    R = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64))[0]
    return K @ np.c_[R, -R @ np.asarray(cam_centre, dtype=np.float64)]


P_LEFT = _P([0, 0, 0], [0, 0, 0])
P_RIGHT = _P([0, 0, 0], [BASELINE_M, 0, 0])  # rectified: right camera at +baseline along x
P_THIRD = _P([0.05, -0.2, 0.02], [-0.2, 0.1, 0.05])


def _points(n=21, seed=0):
    rng = np.random.default_rng(seed)
    return np.c_[rng.uniform(-0.2, 0.2, (n, 2)), rng.uniform(0.3, 1.2, n)]


def _project(P, X):
    x = np.c_[X, np.ones(len(X))] @ P.T
    return x[:, :2] / x[:, 2:]


def test_dlt_exact_on_noise_free_data():
    X = _points()
    for Ps in ([P_LEFT, P_RIGHT], [P_LEFT, P_RIGHT, P_THIRD]):
        out = triangulate_dlt(Ps, [_project(P, X) for P in Ps])
        assert out.shape == (len(X), 3) and out.dtype == np.float64
        np.testing.assert_allclose(out, X, rtol=1e-9, atol=1e-12)


def test_dlt_matches_cv2_on_noisy_data():
    X = _points(50)
    rng = np.random.default_rng(3)
    for P2 in (P_RIGHT, P_THIRD):
        px = [_project(P, X) + rng.normal(scale=1.5, size=(len(X), 2)) for P in (P_LEFT, P2)]
        ref_h = cv2.triangulatePoints(P_LEFT, P2, px[0].T.copy(), px[1].T.copy())
        ref = (ref_h[:3] / ref_h[3]).T
        np.testing.assert_allclose(triangulate_dlt([P_LEFT, P2], px), ref, rtol=1e-6)


def test_dlt_skips_nan_views():
    X = _points()
    Ps = [P_LEFT, P_RIGHT, P_THIRD]
    px = [_project(P, X) for P in Ps]
    px[2][:5] = np.nan  # third view lost 5 points: still two views
    px[1][:2] = np.nan  # ... and the right view lost 2 of them: only one view left
    out = triangulate_dlt(Ps, px)
    assert np.isnan(out[:2]).all()
    np.testing.assert_allclose(out[2:], X[2:], rtol=1e-9)


def test_dlt_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2 views"):
        triangulate_dlt([P_LEFT], [np.zeros((3, 2))])
    with pytest.raises(ValueError, match="pixels_list"):
        triangulate_dlt([P_LEFT, P_RIGHT], [np.zeros((3, 2)), np.zeros((4, 2))])
    with pytest.raises(ValueError, match="P_list"):
        triangulate_dlt([K, K], [np.zeros((3, 2))] * 2)


def test_rectified_exact_and_agrees_with_dlt():
    X = _points()
    pl, pr = _project(P_LEFT, X), _project(P_RIGHT, X)
    assert (pr[:, 0] < pl[:, 0]).all()
    np.testing.assert_allclose(triangulate_rectified(pl, pr, K, BASELINE_M), X, rtol=1e-12)
    rng = np.random.default_rng(5)
    pl_n = pl + rng.normal(scale=0.5, size=pl.shape)
    pr_n = pr + np.c_[rng.normal(scale=0.5, size=len(pr)), pl_n[:, 1] - pl[:, 1]]  # rows stay aligned
    np.testing.assert_allclose(triangulate_rectified(pl_n, pr_n, K, BASELINE_M),
                               triangulate_dlt([P_LEFT, P_RIGHT], [pl_n, pr_n]), rtol=1e-9)


def test_rectified_non_positive_disparity_is_nan():
    pl = np.array([[700.0, 300.0], [700.0, 300.0], [700.0, 300.0]])
    pr = np.array([[690.0, 300.0], [700.0, 300.0], [710.0, 300.0]])
    out = triangulate_rectified(pl, pr, K, BASELINE_M)
    np.testing.assert_allclose(out[0, 2], 700.0 * BASELINE_M / 10.0)
    assert np.isnan(out[1:]).all()
    with pytest.raises(ValueError, match="baseline"):
        triangulate_rectified(pl, pr, K, -BASELINE_M)


def test_reprojection_residuals():
    X = _points()
    Ps = [P_LEFT, P_RIGHT, P_THIRD]
    offsets = np.random.default_rng(2).normal(size=(3, len(X), 2))
    px = [_project(P, X) + d for P, d in zip(Ps, offsets, strict=True)]
    res = reprojection_residuals(X, Ps, px)
    assert res.shape == (3, len(X))
    np.testing.assert_allclose(res, np.linalg.norm(offsets, axis=-1), rtol=1e-9)
    # same figure through cv2.projectPoints for the left camera
    cv_px = cv2.projectPoints(X, np.zeros(3), np.zeros(3), K, None)[0][:, 0]
    np.testing.assert_allclose(res[0], np.linalg.norm(cv_px - px[0], axis=-1), rtol=1e-9)
