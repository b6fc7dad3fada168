"""Tests for app/reconstruction/fit_losses.py: robust losses, data rows and their Jacobians."""

from __future__ import annotations

import numpy as np
import pytest

from app.reconstruction import fit_losses as fl
from calibration.presets import preset_rig


@pytest.mark.parametrize("kind", fl.ROBUST_KINDS)
def test_robust_weight_is_derivative_of_rho(kind):
    s = np.array([0.0, 0.5, 4.0, 9.0, 30.0, 400.0])
    rho, w = fl.robust(s, 3.0, kind)
    eps = 1e-6
    num = (fl.robust(s + eps, 3.0, kind)[0] - fl.robust(np.maximum(s - eps, 0), 3.0, kind)[0]) / (
        s + eps - np.maximum(s - eps, 0))
    np.testing.assert_allclose(w, num, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(rho[:2], s[:2], rtol=0.1)  # all behave like least squares near zero


def test_geman_mcclure_redescends_huber_does_not():
    s = np.array([1e4])
    assert fl.robust(s, 3.0, "geman-mcclure")[1][0] < 1e-5
    assert fl.robust(s, 3.0, "huber")[1][0] == pytest.approx(0.03)
    with pytest.raises(ValueError, match="robust loss 'cauchy' is unknown"):
        fl.robust(s, 3.0, "cauchy")


def _toy(seed=0, n=7):
    """Keypoints linear in n parameters: kp(x) = kp0 + D x, so d_kp = D exactly."""
    rng = np.random.default_rng(seed)
    kp0 = rng.normal([0, 0, 0.45], 0.05, (21, 3))
    D = rng.normal(0, 0.01, (21, 3, n))
    return kp0, D


def test_projection_rows_jacobian_matches_finite_differences():
    P = preset_rig("zed-mini", "640x360").right.P
    kp0, D = _toy()
    px = np.full((21, 2), 300.0)
    px[3] = np.nan  # missing keypoint: its rows are dropped
    rows = fl.projection_rows(kp0, D, P, px, 1.5)
    assert rows.r.shape == (20, 2) and rows.J.shape == (20, 2, 7)
    eps = 1e-6
    for i in range(7):
        d = np.zeros(7)
        d[i] = eps
        plus = fl.projection_rows(kp0 + D @ d, None, P, px, 1.5).r
        minus = fl.projection_rows(kp0 - D @ d, None, P, px, 1.5).r
        np.testing.assert_allclose(rows.J[..., i], (plus - minus) / (2 * eps), atol=1e-5)


def test_projection_rows_drop_points_behind_the_camera():
    P = preset_rig("zed-mini", "640x360").left.P
    kp0, D = _toy()
    kp0[0, 2] = -0.1
    assert fl.projection_rows(kp0, D, P, np.zeros((21, 2)), 1.0).r.shape == (20, 2)


def test_point_and_centred_rows():
    kp0, D = _toy()
    target = kp0 + 0.01
    target[5] = np.nan
    rows = fl.point_rows(kp0, D, target, np.full(21, 0.02))
    assert rows.r.shape == (20, 3)
    np.testing.assert_allclose(rows.r, -0.5)
    np.testing.assert_allclose(rows.J, D[np.arange(21) != 5] / 0.02)
    # centred rows ignore a common offset but see shape and orientation
    centred = fl.centred_rows(kp0, D, (kp0 - 0.3).astype(np.float64), 0.01)
    np.testing.assert_allclose(centred.r, 0.0, atol=1e-12)
    assert centred.J.shape == (21, 3, 7)
    np.testing.assert_allclose(centred.J.sum(0), 0.0, atol=1e-12)


def test_weighted_rows_give_irls_normal_equations():
    kp0, D = _toy()
    target = kp0.copy()
    target[2] += 1.0  # a gross outlier: Geman-McClure removes it from the normal equations
    rows = fl.point_rows(kp0, D, target, np.full(21, 0.01))
    J, r = fl.weighted_rows(rows, 3.0, "geman-mcclure", 2.0)
    assert J.shape == (63, 7) and r.shape == (63,)
    np.testing.assert_allclose(J[:6], np.sqrt(2.0) * D[:2].reshape(6, 7) / 0.01)
    assert np.abs(J[6:9]).max() < 1e-3 * np.abs(J[:6]).max()  # weight sqrt(2 rho') ~ 4e-4
    s = 3 * (1.0 / 0.01) ** 2  # all three coordinates off by 1 m
    assert fl.block_cost(rows, 3.0, "geman-mcclure") == pytest.approx(0.5 * 9.0 * s / (9.0 + s))
