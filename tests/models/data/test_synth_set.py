"""Tests for models/data/synth_set.py on a tiny set written by models.synth generate: labels project onto the
annotated pixels, and left hands come out as consistent mirrored right hands."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.config import HandModelConfig
from app.geometry.camera import project
from models.hand_model import build_hand_model

generate_mod = pytest.importorskip("models.synth.generate")
dataset_mod = pytest.importorskip("models.synth.dataset")
from models.data.synth_set import SynthSetSource, is_synth_set  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthset")
    cfg = generate_mod.GenerateConfig(n=6, seed=11, mode="320x180", texture_size=64, mediapipe=False, progress=False)
    generate_mod.generate(root, cfg)
    return root


def test_pairs_match_the_annotations(synth_root):
    assert is_synth_set(synth_root)
    src = SynthSetSource(synth_root, "all")
    raw = dataset_mod.SyntheticStereoDataset(synth_root)
    model = build_hand_model(HandModelConfig(mano_dir=""), "right")
    seen = set()
    for i in range(len(src)):
        pair, s = src.pair(i), raw[i]
        seen.add(s.is_left)
        w = s.images[0].shape[1]
        for v, view in enumerate((pair.left, pair.right)):
            px = project(view.keypoints_m.astype(np.float64), view.K)
            expect = s.keypoints_px[v].astype(np.float64)
            if s.is_left:
                expect[:, 0] = w - 1 - expect[:, 0]
            np.testing.assert_allclose(px, expect, atol=0.05)
            flipped = s.masks[v][:, ::-1] if s.is_left else s.masks[v]
            assert np.array_equal(view.mask.astype(bool), flipped)
        # the (mirrored) pose drives the RIGHT model to the (mirrored) keypoints, root-relative
        kps = model(torch.tensor(pair.left.pose[None]), torch.tensor(pair.left.shape[None])).keypoints_m[0]
        kps = kps.detach().numpy()
        np.testing.assert_allclose(kps - kps[0], pair.left.keypoints_m - pair.left.keypoints_m[0], atol=2e-4)
        R, t = pair.T_right_left[:3, :3], pair.T_right_left[:3, 3]
        np.testing.assert_allclose(pair.right.keypoints_m, pair.left.keypoints_m @ R.T + t, atol=1e-5)
    if seen != {True, False}:
        pytest.skip(f"the 6-sample set holds only is_left={seen}; mirroring checked on what is there")
