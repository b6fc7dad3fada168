"""Tests for models/handnet/losses.py against hand-written formulas and app/geometry/weak_perspective.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from app.geometry.weak_perspective import weak_perspective_project
from models.handnet.losses import (
    ManoLossWeights,
    StereoLossWeights,
    crop_px_to_norm,
    mano_loss,
    project_norm,
    segmentation_loss,
    stereo_loss,
)

torch.set_num_threads(1)


def _batch(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    kps = r(b, 21, 3) * 0.05 + torch.tensor([0.0, 0.0, 0.5])
    cam = torch.cat([r(b, 2) * 0.1, 5 + r(b, 1).abs()], 1)
    return r(b, 48), r(b, 10), cam, kps, r(b, 48), r(b, 10), r(b, 21, 2) * 0.5


def test_project_norm_matches_the_weak_perspective_helper():
    _, _, cam, kps, *_ = _batch()
    rel = kps - kps[:, :1]
    crop_px = weak_perspective_project(rel, cam, 224)  # edge-based crop pixels
    assert torch.allclose(project_norm(kps, cam), crop_px * 2 / 224 - 1, atol=1e-6)


def test_crop_px_to_norm_maps_pixel_edges_to_unit_bounds():
    px = torch.tensor([[-0.5, -0.5], [223.5, 223.5], [111.5, 111.5]])
    assert torch.allclose(crop_px_to_norm(px, 224), torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]))


def test_mano_loss_is_the_weighted_sum_of_mses():
    pose, shape, cam, kps, tp, ts, tk = _batch()
    w = ManoLossWeights()
    res = mano_loss(pose, shape, cam, kps, tp, ts, tk, w)
    expect = (10 * ((pose - tp) ** 2).mean() + ((shape - ts) ** 2).mean()
              + 100 * ((project_norm(kps, cam) - tk) ** 2).mean() + 0.5 * (shape ** 2).mean()
              + 1e-5 * (cam[:, 2] ** 2).mean())
    assert torch.allclose(res.total, expect)
    assert set(res.terms) == {"pose", "shape", "joints2d", "shape_reg", "cam_reg"}
    zero = mano_loss(pose, shape, cam, kps, tp, ts, tk, ManoLossWeights(0, 0, 0, 0, 1))
    assert torch.allclose(zero.total, (cam[:, 2] ** 2).mean())


def test_mano_loss_is_zero_at_the_truth_up_to_regularisers():
    pose, shape, cam, kps, *_ = _batch()
    res = mano_loss(pose, shape, cam, kps, pose, shape, project_norm(kps, cam), ManoLossWeights(shape_reg=0, cam_reg=0))
    assert float(res.total) == pytest.approx(0.0, abs=1e-10)


def test_joints2d_ignores_the_root_translation():
    pose, shape, cam, kps, tp, ts, tk = _batch()
    a = mano_loss(pose, shape, cam, kps, tp, ts, tk).terms["joints2d"]
    b = mano_loss(pose, shape, cam, kps + torch.tensor([0.3, -0.2, 0.1]), tp, ts, tk).terms["joints2d"]
    assert torch.allclose(a, b, atol=1e-6)


def test_segmentation_loss_equals_bce_on_the_sigmoid():
    logits = torch.randn(2, 1, 8, 8) * 3
    mask = (torch.rand(2, 1, 8, 8) > 0.5).float()
    res = segmentation_loss(logits, mask)
    assert torch.allclose(res.total, F.binary_cross_entropy(torch.sigmoid(logits), mask), atol=1e-6)


def test_stereo_loss_root_relative_mse():
    g = torch.Generator().manual_seed(1)
    verts, kps = torch.randn(2, 50, 3, generator=g), torch.randn(2, 21, 3, generator=g)
    tv, tk = torch.randn(2, 50, 3, generator=g), torch.randn(2, 21, 3, generator=g)
    res = stereo_loss(verts, kps, tv, tk, StereoLossWeights(2.0, 3.0))
    v = ((verts - kps[:, :1]) - (tv - tk[:, :1])).pow(2).mean()
    j = ((kps - kps[:, :1]) - (tk - tk[:, :1])).pow(2).mean()
    assert torch.allclose(res.total, 2 * v + 3 * j)
    moved = stereo_loss(verts + 1.0, kps + 1.0, tv, tk, StereoLossWeights(2.0, 3.0))
    assert torch.allclose(moved.total, res.total, atol=1e-6)
