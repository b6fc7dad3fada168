"""Viewer test helpers: the open hand model posed in front of a 640x360 rig (palm to the camera)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from app.config import HandModelConfig
from app.types import HandMesh, HandState
from calibration.presets import preset_rig

# Model x (fingers) -> image up (-y), model y -> +z: the palm faces the camera.
PALM_TO_CAMERA = Rotation.from_matrix(np.stack([[0, -1, 0], [0, 0, 1], [-1, 0, 0]], 1).astype(float)).as_rotvec()


@pytest.fixture(scope="module")
def hand_model():
    from models.hand_model import build_hand_model

    return build_hand_model(HandModelConfig(), "right")


@pytest.fixture
def calib():
    return preset_rig("zed-mini", "640x360")


@pytest.fixture
def hand_mesh(hand_model):
    """A right-hand HandMesh 0.35 m in front of the left camera, centred on its axis."""
    pose = np.zeros(48, np.float32)
    pose[:3] = PALM_TO_CAMERA
    out = hand_model(torch.from_numpy(pose[None]), torch.zeros(1, 10))
    verts = out.verts_m[0].detach().numpy()
    shift = np.array([0.0, 0.0, 0.35], np.float32) - verts.mean(0)
    state = HandState(pose, np.zeros(10, np.float32), shift.astype(np.float32), False)
    return HandMesh(4, 123, (verts + shift).astype(np.float32), hand_model.faces.numpy(),
                    (out.keypoints_m[0].detach().numpy() + shift).astype(np.float32), state)


@pytest.fixture
def uv_layout(hand_model):
    vt, ft = hand_model.uv
    return vt.numpy(), ft.numpy()
