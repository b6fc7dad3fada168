"""app/geometry/weak_perspective.py: round trips and agreement with the full-image pinhole camera."""

import cv2
import numpy as np
import torch

from app.geometry.camera import project
from app.geometry.weak_perspective import (
    crop_to_image_px,
    image_to_crop_px,
    translation_to_weak_perspective,
    weak_perspective_project,
    weak_perspective_to_translation,
)

torch.set_num_threads(1)

S = 224
K = np.array([[700.0, 0.0, 640.3], [0.0, 700.0, 359.6], [0.0, 0.0, 1.0]])
BOX = np.array([500.0, 250.0, 180.0])  # x0, y0, side in full-image pixels
CAMS = np.array([[0.0, 0.0, 5.0], [0.1, -0.2, 6.5], [-0.3, 0.25, 4.0]])  # (tx, ty, s)


def _full_px_weak(points, cam, box):
    return crop_to_image_px(weak_perspective_project(points, cam, S), box, S)


def test_project_known_values():
    pts = np.array([[0.0, 0.0, 0.0], [0.1, -0.1, 0.3]])
    out = weak_perspective_project(pts, np.array([0.0, 0.0, 5.0]), S)
    np.testing.assert_allclose(out, [[112.0, 112.0], [112.0 + 56.0, 112.0 - 56.0]])
    assert weak_perspective_project(np.zeros((2, 7, 3)), np.zeros((2, 3)), S).shape == (2, 7, 2)


def test_crop_image_px_inverse():
    px = np.random.default_rng(0).uniform(0, 1000, (10, 2))
    np.testing.assert_allclose(crop_to_image_px(image_to_crop_px(px, BOX, S), BOX, S), px, atol=1e-9)
    np.testing.assert_allclose(crop_to_image_px(np.array([S, S]), BOX, S), BOX[:2] + BOX[2])


def test_round_trip():
    transl = weak_perspective_to_translation(CAMS, BOX, K, S)
    assert transl.shape == (3, 3) and (transl[:, 2] > 0).all()
    np.testing.assert_allclose(translation_to_weak_perspective(transl, BOX, K, S), CAMS, atol=1e-6, rtol=0)
    t = np.array([[0.05, -0.02, 0.6], [-0.1, 0.08, 0.9]])
    np.testing.assert_allclose(weak_perspective_to_translation(translation_to_weak_perspective(t, BOX, K, S),
                                                               BOX, K, S), t, atol=1e-9, rtol=0)


def test_root_lands_on_same_full_image_pixel():
    transl = weak_perspective_to_translation(CAMS, BOX, K, S)
    via_weak = _full_px_weak(np.zeros((3, 1, 3)), CAMS, BOX)[:, 0]
    via_K = cv2.projectPoints(transl, np.zeros(3), np.zeros(3), K, None)[0][:, 0]
    np.testing.assert_allclose(via_weak, via_K, atol=1e-6)


def test_points_at_root_depth_match_and_depth_is_f_over_s():
    transl = weak_perspective_to_translation(CAMS, BOX, K, S)
    offsets = np.random.default_rng(1).normal(scale=0.05, size=(3, 21, 3)) * [1.0, 1.0, 0.0]  # Z offset 0
    via_K = project(offsets + transl[:, None], K)
    np.testing.assert_allclose(_full_px_weak(offsets, CAMS, BOX), via_K, atol=1e-6)
    f_norm = 2 * K[0, 0] / BOX[2]  # f S / side crop pixels, 2 / S normalised units per crop pixel
    np.testing.assert_allclose(transl[:, 2], f_norm / CAMS[:, 2])


def test_torch_batched_and_gradcheck():
    cam = torch.from_numpy(CAMS).requires_grad_()
    box = torch.from_numpy(np.stack([BOX, BOX + 10, BOX * 1.2]))
    Kt = torch.from_numpy(K)
    transl = weak_perspective_to_translation(cam, box, Kt, S)
    single = weak_perspective_to_translation(CAMS[1], BOX + 10, K, S)
    np.testing.assert_allclose(transl[1].detach().numpy(), single)
    assert torch.autograd.gradcheck(lambda c: weak_perspective_to_translation(c, box, Kt, S), (cam,))
    t = transl.detach().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: translation_to_weak_perspective(x, box, Kt, S), (t,))
    pts = torch.randn(3, 21, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, c: weak_perspective_project(p, c, S), (pts, cam))
