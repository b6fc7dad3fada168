"""Tests for models/training/augmentation.py: the crop camera, pixels vs labels, label rotation, randomness."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from app.config import HandModelConfig
from app.geometry.camera import project
from models.data.types import RawStereoPair, RawView
from models.hand_model import build_hand_model
from models.training.augmentation import (
    AugmentConfig,
    AugmentParams,
    augment_pair,
    augment_view,
    rotate_pose,
    rotation_angles,
    sample_params,
)

torch.set_num_threads(1)

S = 96
K = np.array([[650.0, 0, 330.0], [0, 640.0, 250.0], [0, 0, 1]])


@pytest.fixture(scope="module")
def model():
    return build_hand_model(HandModelConfig(mano_dir=""))


def _raw(model, root=(-0.08, 0.05, 0.6), seed=0) -> RawView:
    """A posed hand off the optical axis, with a white disc drawn at every projected keypoint."""
    rng = np.random.default_rng(seed)
    pose = np.concatenate([[2.0, 0.3, -0.5], rng.normal(0, 0.15, 45)]).astype(np.float32)
    shape = rng.normal(0, 0.5, 10).astype(np.float32)
    out = model(torch.tensor(pose[None]), torch.tensor(shape[None]))
    shift = np.asarray(root) - out.keypoints_m[0, 0].detach().numpy()
    kps = (out.keypoints_m[0].detach().numpy() + shift).astype(np.float32)
    verts = (out.verts_m[0].detach().numpy() + shift).astype(np.float32)
    image = np.zeros((480, 640, 3), np.uint8)
    for p in project(kps.astype(np.float64), K):
        cv2.circle(image, (int(round(p[0])), int(round(p[1]))), 2, (255, 255, 255), -1)
    mask = np.zeros((480, 640), np.uint8)
    return RawView(image, mask, K.copy(), kps, verts, pose, shape)


def _grid_view() -> RawView:
    """21 marker points on a tilted 7 x 3 grid (3 cm spacing) off the optical axis, a bright disc at each."""
    gx, gy = np.meshgrid(np.arange(7) * 0.03, np.arange(3) * 0.03)
    pts = np.stack([gx.ravel(), gy.ravel(), 0.3 * gx.ravel()], 1) + [-0.15, 0.02, 0.6]
    image = np.zeros((480, 640, 3), np.uint8)
    for p in project(pts, K):  # sub-pixel centres: 4 fractional bits (shift=4)
        cv2.circle(image, tuple(int(round(c * 16)) for c in p), 3 * 16, (255, 255, 255), -1, cv2.LINE_AA, 4)
    zeros = np.zeros(48, np.float32)
    return RawView(image, None, K.copy(), pts.astype(np.float32), None, zeros, np.zeros(10, np.float32))


@pytest.mark.parametrize("angle", [0.0, 1.1, -2.5])
def test_warped_pixels_sit_at_the_labels(angle):
    """Each marker's blob centroid in the warped crop is where the crop's 2D label says (sub-pixel)."""
    raw, size = _grid_view(), 224  # little downsampling, so blob centroids are accurate
    v = augment_view(raw, AugmentParams(1.6, angle, 0, False), AugmentConfig(crop_size=size))
    img = (v.image.numpy().mean(0) + 1) / 2
    labels = ((v.keypoints_norm.numpy() + 1) * size - 1) / 2  # normalised -> pixel-centre coordinates
    yy, xx = np.mgrid[0:size, 0:size]
    errors = []
    for x, y in labels:
        w = img * ((np.abs(xx - x) <= 5) & (np.abs(yy - y) <= 5))
        errors.append([(w * xx).sum() / w.sum() - x, (w * yy).sum() / w.sum() - y])
    errors = np.asarray(errors)
    assert np.linalg.norm(errors, axis=1).max() < 0.15
    assert np.linalg.norm(errors.mean(0)) < 0.05  # no systematic (e.g. half-pixel) offset
    # and the 3D labels project onto the same pixels through the crop camera
    np.testing.assert_allclose(project(v.keypoints_m.numpy().astype(np.float64),
                                       v.K_crop.numpy().astype(np.float64)), labels, atol=2e-3)


def test_3d_labels_rotate_with_the_pose(model):
    raw = _raw(model)
    v = augment_view(raw, AugmentParams(2.0, 0.7, 0, False), AugmentConfig(crop_size=S))
    R = v.R_crop_cam.double().numpy()
    np.testing.assert_allclose(v.keypoints_m.numpy(), raw.keypoints_m @ R.T, atol=1e-6)
    np.testing.assert_allclose(v.verts_m.numpy(), raw.verts_m @ R.T, atol=1e-6)
    a = model(torch.tensor(raw.pose[None]), torch.tensor(raw.shape[None])).keypoints_m[0].detach().numpy()
    b = model(v.pose[None], v.shape[None]).keypoints_m[0].detach().numpy()
    np.testing.assert_allclose(b - b[0], (a - a[0]) @ R.T, atol=1e-5)  # the pose label moved with the camera
    np.testing.assert_allclose(rotate_pose(raw.pose, np.eye(3)), raw.pose, atol=1e-6)


def test_crop_scale_sets_the_hand_size(model):
    raw = _raw(model)
    for scale in (1.5, 2.5):
        v = augment_view(raw, AugmentParams(scale, 0.0, 0, False), AugmentConfig(crop_size=S))
        k = v.keypoints_norm.numpy()
        extent = (k.max(0) - k.min(0)).max()
        assert extent == pytest.approx(2.0 / scale, rel=0.06)  # the tight box spans S / scale pixels


def test_heatmap_dropout_and_blur(model):
    raw = _raw(model)
    cfg = AugmentConfig(crop_size=S, heatmap_kernel=15, heatmap_sigma=2.0)
    kept = augment_view(raw, AugmentParams(2.0, 0.0, 0, False), cfg)
    dropped = augment_view(raw, AugmentParams(2.0, 0.0, 0, True), cfg)
    blurred = augment_view(raw, AugmentParams(2.0, 0.0, 9, False), cfg)
    assert float(dropped.heatmap.abs().max()) == 0.0
    assert float(kept.heatmap.max()) == pytest.approx(1.0) and float(kept.heatmap.min()) == pytest.approx(-1.0)
    assert float(blurred.image.max()) < float(kept.image.max())
    assert torch.equal(blurred.keypoints_norm, kept.keypoints_norm)


def test_sample_params_distribution():
    cfg = AugmentConfig()
    rng = np.random.default_rng(0)
    draws = [sample_params(rng, cfg) for _ in range(3000)]
    assert np.mean([d.drop_heatmap for d in draws]) == pytest.approx(0.3, abs=0.03)
    assert np.mean([d.blur > 0 for d in draws]) == pytest.approx(0.5, abs=0.03)
    assert {d.blur for d in draws} == {0, 3, 6, 9, 12}
    assert all(1.5 <= d.scale <= 2.5 for d in draws)
    assert len({round(d.angle_rad, 9) for d in draws}) == 20
    assert len(rotation_angles(cfg)) == 20 and np.isclose(np.diff(rotation_angles(cfg)), np.pi / 10).all()
    off = sample_params(rng, AugmentConfig(enabled=False))
    assert off == AugmentParams(2.0, 0.0, 0, False)


def test_pair_shares_the_rig_motion(model):
    left = _raw(model, root=(-0.05, 0.0, 0.55))
    t = np.array([-0.12, 0.0, 0.0])
    right = RawView(left.image, left.mask, K, left.keypoints_m + t.astype(np.float32),
                    left.verts_m + t.astype(np.float32), left.pose, left.shape)
    T = np.eye(4)
    T[:3, 3] = t
    s = augment_pair(RawStereoPair(left, right, T), np.random.default_rng(3), AugmentConfig(crop_size=S))
    R = s.R_right_left.double().numpy()
    a, b = s.left.keypoints_m.double().numpy(), s.right.keypoints_m.double().numpy()
    np.testing.assert_allclose(b - b[0], (a - a[0]) @ R.T, atol=1e-5)
