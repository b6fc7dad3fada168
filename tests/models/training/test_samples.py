"""Tests for models/training/samples.py: batching of TrainView / TrainStereo."""

from __future__ import annotations

import pytest
import torch

from models.training.samples import TrainStereo, TrainView, collate_stereo, collate_views


def _view(n_verts: int = 5, fill: float = 0.0) -> TrainView:
    def f(*shape):
        return torch.full(shape, fill)

    return TrainView(f(3, 8, 8), f(21, 8, 8), f(1, 8, 8), torch.tensor(True), f(21, 2), f(21, 3), f(n_verts, 3),
                     f(48), f(10), torch.eye(3), torch.eye(3))


def test_collate_stacks_every_field():
    batch = collate_views([_view(fill=1.0), _view(fill=2.0)])
    assert batch.image.shape == (2, 3, 8, 8) and batch.has_mask.shape == (2,) and batch.R_crop_cam.shape == (2, 3, 3)
    assert batch.pose[:, 0].tolist() == [1.0, 2.0]
    pairs = collate_stereo([TrainStereo(_view(), _view(), torch.eye(3))] * 3)
    assert pairs.left.verts_m.shape == (3, 5, 3) and pairs.R_right_left.shape == (3, 3, 3)
    assert pairs.to("cpu").right.image.shape == (3, 3, 8, 8)


def test_collate_names_the_mismatching_field():
    with pytest.raises(ValueError, match="verts_m"):
        collate_views([_view(5), _view(0)])
