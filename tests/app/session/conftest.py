"""Session test helpers: HandMeshes of the open hand model and small stereo frames."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from app.config import HandModelConfig
from app.types import HandMesh, HandState, StereoFrame
from calibration.presets import preset_rig

CALIB = preset_rig("zed-mini", "64x48")


@pytest.fixture(scope="session")
def models():
    from models.hand_model import build_hand_model

    return {side == "left": build_hand_model(HandModelConfig(), side) for side in ("right", "left")}


@pytest.fixture(scope="session")
def uv_layouts(models):
    return {k: (m.uv[0].numpy(), m.uv[1].numpy()) for k, m in models.items()}


def hand(models, frame_id: int, is_left: bool = False, bend: float = 0.0) -> HandMesh:
    """A hand of frame ``frame_id``: fingers bent by ``bend`` rad, 0.4 m in front of the camera."""
    model = models[is_left]
    pose = np.zeros(48, np.float32)
    pose[3::3] = bend
    transl = np.array([0.05 if is_left else -0.05, 0.0, 0.4], np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(pose[None]), torch.zeros(1, 10), torch.from_numpy(transl[None]))
    state = HandState(pose, np.zeros(10, np.float32), transl, is_left)
    return HandMesh(frame_id, 1000 + 33_000_000 * frame_id, out.verts_m[0].numpy(), model.faces.numpy(),
                    out.keypoints_m[0].numpy(), state, fit_residual=0.5 + frame_id)


def frame(i: int) -> StereoFrame:
    img = np.full((48, 64, 3), i % 256, np.uint8)
    return StereoFrame(i, 1000 + 33_000_000 * i, img, 255 - img, CALIB)


@pytest.fixture
def kit(models):
    return types.SimpleNamespace(hand=lambda *a, **k: hand(models, *a, **k), frame=frame, CALIB=CALIB)
