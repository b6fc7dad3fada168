"""Tests for app/reconstruction/initialise.py: Kabsch, size from bone lengths, translation from pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from app.config import HandModelConfig
from app.reconstruction import initialise as ini
from app.reconstruction.kinematics import build_kinematics, forward
from calibration.presets import preset_rig
from models.hand_model.layer import build_hand_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def kin():
    return build_kinematics(build_hand_model(HandModelConfig(), "right"))


def test_kabsch_recovers_rotation_and_translation():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(6, 3))
    R = Rotation.random(random_state=1).as_matrix()
    t = np.array([0.1, -0.2, 0.5])
    R_est, t_est = ini.kabsch(src, src @ R.T + t)
    np.testing.assert_allclose(R_est, R, atol=1e-12)
    np.testing.assert_allclose(t_est, t, atol=1e-12)
    mirrored = src * [-1, 1, 1]  # a reflection is not a rotation: the result stays proper
    assert np.linalg.det(ini.kabsch(src, mirrored)[0]) == pytest.approx(1.0)


def test_align_to_points_uses_the_palm_whatever_the_fingers_do(kin):
    rng = np.random.default_rng(2)
    shape = rng.normal(0, 1, 10)
    rotvec, transl = np.array([0.4, -1.0, 2.0]), np.array([0.05, 0.02, 0.4])
    pose = np.r_[rotvec, rng.normal(0, 0.4, 45)]  # bent fingers: only the palm is rigid
    target = forward(kin, pose, shape, transl).keypoints_m
    target[[2, 3, 4, 8]] = np.nan
    flat = forward(kin, np.zeros(48), shape, np.zeros(3))
    R, t = ini.align_to_points(flat.keypoints_m, flat.o_m[0], target)
    np.testing.assert_allclose(Rotation.from_matrix(R).as_rotvec(), rotvec, atol=1e-9)
    np.testing.assert_allclose(t, transl, atol=1e-9)
    with pytest.raises(ValueError, match="2 valid 3D keypoints"):
        ini.align_to_points(flat.keypoints_m, flat.o_m[0], np.where(np.arange(21)[:, None] < 2, target, np.nan))


def test_shape_from_bones_recovers_size(kin):
    true = np.zeros(10)
    true[0] = 1.5  # the open model's first shape direction is the overall size
    pose = np.r_[np.zeros(3), np.random.default_rng(3).normal(0, 0.3, 45)]
    points = forward(kin, pose, true, np.zeros(3)).keypoints_m
    beta = ini.shape_from_bones(kin, points, sigma_m=0.002, shape_sigma=1.0)
    bones = ini.BONES

    def lengths(b):
        kp = forward(kin, np.zeros(48), b, np.zeros(3)).keypoints_m
        return np.linalg.norm(kp[bones[:, 1]] - kp[bones[:, 0]], axis=1)

    assert np.abs(lengths(beta) - lengths(true)).mean() < 0.6e-3  # metres
    assert np.abs(lengths(np.zeros(10)) - lengths(true)).mean() > 2e-3  # the mean hand is clearly different
    assert np.all(ini.shape_from_bones(kin, np.full((21, 3), np.nan), 0.002, 1.0) == 0)


def test_translation_from_pixels_is_exact_without_noise():
    calib = preset_rig("zed-mini", "640x360")
    rng = np.random.default_rng(4)
    points = rng.normal(0, 0.04, (21, 3))
    t = np.array([0.03, -0.02, 0.5])
    views = []
    for v in (calib.left, calib.right):
        h = (points + t) @ v.P[:, :3].T + v.P[:, 3]
        views.append((v.P, h[:, :2] / h[:, 2:]))
    np.testing.assert_allclose(ini.translation_from_pixels(points, views[:1]), t, atol=1e-9)
    np.testing.assert_allclose(ini.translation_from_pixels(points, views), t, atol=1e-9)
    # one pixel cannot place a hand: it goes to the default depth on the pixel's ray
    one = [(views[0][0], np.where(np.arange(21)[:, None] == 0, views[0][1], np.nan))]
    t_ray = ini.translation_from_pixels(points, one)
    assert (points.mean(0) + t_ray)[2] == pytest.approx(ini.DEFAULT_DEPTH_M)


def test_rotation_candidates_are_distinct_rotations():
    c = ini.rotation_candidates()
    mats = Rotation.from_rotvec(c).as_matrix()
    assert c.shape == (8, 3)
    assert min(np.linalg.norm(mats[i] - mats[j]) for i in range(8) for j in range(i)) > 1.0
