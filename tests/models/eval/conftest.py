"""Shared fixtures of the evaluation tests: a builder of small stereo samples with keypoints, mesh and masks."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.rig import make_stereo
from models.eval.samples import EvalSample

K = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])


def toy_stereo_sample(i: int, with_mesh: bool = True) -> EvalSample:
    """Sample ``i``: 21 random joints 0.4-0.5 m in front of a 64x48 rectified rig (6 cm baseline), their exact
    pixels, black images, and (with_mesh) 40 random vertices and a 20x20 mask box in both views."""
    calib = make_stereo(K, np.zeros(5), K, np.zeros(5), np.eye(3), [-0.06, 0, 0], (64, 48), rectified=True)
    rng = np.random.default_rng(i)
    xyz = rng.uniform([-0.05, -0.05, 0.4], [0.05, 0.05, 0.5], size=(21, 3))
    uv = []
    for P in (calib.left.P, calib.right.P):
        h = np.c_[xyz, np.ones(21)] @ P.T
        uv.append(h[:, :2] / h[:, 2:])
    img = np.zeros((48, 64, 3), np.uint8)
    mask = np.zeros((48, 64), bool)
    mask[10:30, 20:40] = True
    extra = dict(verts_cam_m=rng.uniform(-0.05, 0.05, size=(40, 3)) + [0, 0, 0.45], masks=(mask, mask),
                 is_left=False) if with_mesh else {}
    return EvalSample(sample_id=f"s{i}", images=(img, img), uv_px=tuple(uv), K=K, xyz_cam_m=xyz, calibration=calib,
                      **extra)


@pytest.fixture
def toy_sample():
    """The builder toy_stereo_sample(i, with_mesh=True) -> EvalSample."""
    return toy_stereo_sample
