"""Tests for models/handnet/crop_camera.py: the centred (principal-point) crop camera."""

from __future__ import annotations

import numpy as np

from models.handnet.crop_camera import crop_camera, crop_homography, rotation_onto_axis

K = np.array([[650.0, 0, 330.0], [0, 640.0, 250.0], [0, 0, 1]])
S = 96


def test_rotation_onto_axis():
    rng = np.random.default_rng(0)
    for ray in [*rng.normal(size=(5, 3)), np.array([0.0, 0.0, 2.0])]:
        ray[2] = abs(ray[2]) + 0.1
        R = rotation_onto_axis(ray)
        np.testing.assert_allclose(R @ (ray / np.linalg.norm(ray)), [0, 0, 1], atol=1e-12)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(R), 1.0)


def test_crop_camera_centres_the_box():
    cam = crop_camera(K, np.array([500.0, 100.0]), 200.0, 0.4, S)
    ray = np.linalg.solve(K, [500.0, 100.0, 1.0])
    p = cam.K @ cam.R @ ray
    np.testing.assert_allclose(p[:2] / p[2], [(S - 1) / 2] * 2, atol=1e-9)
    assert np.isclose(cam.K[0, 0], 645.0 * S / 200.0)


def test_homography_maps_the_box_centre_to_the_crop_centre():
    cam = crop_camera(K, np.array([120.0, 400.0]), 150.0, 0.0, S)
    p = crop_homography(K, cam) @ [120.0, 400.0, 1.0]
    np.testing.assert_allclose(p[:2] / p[2], [(S - 1) / 2] * 2, atol=1e-9)
