"""Tests for models/data/synthetic_adapter.py: rendered pairs are self-consistent and survive the disk round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from app.geometry.camera import project
from app.geometry.rotations import axis_angle_to_matrix
from models.data.synthetic_adapter import (
    SynthAdapterConfig,
    SyntheticSetError,
    SyntheticStereoReader,
    is_complete,
    open_stereo_source,
)
from models.data.types import StereoViews

torch.set_num_threads(1)

CFG = SynthAdapterConfig(count=3, seed=7, window_size=128)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("syn")
    open_stereo_source(d, CFG, progress=False)
    return d


def test_set_is_complete_and_readable(synth_dir):
    assert is_complete(synth_dir, CFG)
    assert not is_complete(synth_dir, SynthAdapterConfig(count=4, seed=7, window_size=128))
    reader = SyntheticStereoReader(synth_dir)
    assert len(reader) == 3 and len(StereoViews(reader)) == 6


def test_labels_match_the_pixels(synth_dir):
    """Projected keypoints land on the rendered hand (the mask), in both views."""
    pair = SyntheticStereoReader(synth_dir).pair(0)
    for v in (pair.left, pair.right):
        assert v.image.shape == (128, 128, 3) and v.mask.shape == (128, 128)
        px = np.round(project(v.verts_m.astype(np.float64), v.K)).astype(int)
        inside = (px >= 0).all(1) & (px < 128).all(1)
        assert inside.mean() > 0.95
        on_hand = v.mask[px[inside, 1], px[inside, 0]]
        assert on_hand.mean() > 0.6  # back-facing vertices are hidden by the front ones, still on the mask
        assert 0.02 < v.mask.mean() < 0.6


def test_right_view_is_the_left_moved_by_the_rig(synth_dir):
    pair = SyntheticStereoReader(synth_dir).pair(1)
    T = pair.T_right_left
    np.testing.assert_allclose(T[:3, :3], np.eye(3))
    np.testing.assert_allclose(T[:3, 3], [-0.12, 0, 0])
    np.testing.assert_allclose(pair.right.keypoints_m, pair.left.keypoints_m + T[:3, 3], atol=1e-6)
    np.testing.assert_allclose(axis_angle_to_matrix(pair.right.pose[:3].astype(np.float64)),
                               axis_angle_to_matrix(pair.left.pose[:3].astype(np.float64)), atol=1e-6)
    assert 0.2 < pair.left.keypoints_m[:, 2].mean() < 0.7


def test_pose_labels_reproduce_the_keypoints(synth_dir):
    from app.config import HandModelConfig
    from models.hand_model import build_hand_model

    v = SyntheticStereoReader(synth_dir).pair(2).left
    out = build_hand_model(HandModelConfig(mano_dir=""))(torch.tensor(v.pose[None]), torch.tensor(v.shape[None]))
    kps = out.keypoints_m[0].detach().numpy()
    np.testing.assert_allclose(kps - kps[0], v.keypoints_m - v.keypoints_m[0], atol=1e-5)


def test_deterministic_per_index(synth_dir, tmp_path):
    other = open_stereo_source(tmp_path, SynthAdapterConfig(count=1, seed=7, window_size=128), progress=False)
    a, b = other.pair(0).left, SyntheticStereoReader(synth_dir).pair(0).left
    np.testing.assert_allclose(a.keypoints_m, b.keypoints_m)
    assert np.abs(a.image.astype(int) - b.image).mean() < 1.0


def test_errors(synth_dir, tmp_path):
    with pytest.raises(SyntheticSetError, match="meta.json"):
        SyntheticStereoReader(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": "other", "format_version": 1, "count": 1}))
    with pytest.raises(SyntheticSetError, match="regenerate"):
        SyntheticStereoReader(tmp_path)
    with pytest.raises(IndexError):
        SyntheticStereoReader(synth_dir).pair(3)
    bad = tmp_path / "bad"
    open_stereo_source(bad, SynthAdapterConfig(count=1, seed=7, window_size=128), progress=False)
    (bad / "pairs" / "000000.npz").write_bytes(b"garbage")
    with pytest.raises(SyntheticSetError, match="unreadable"):
        SyntheticStereoReader(bad).pair(0)
