"""Shared fixtures for the texture tests: the open right hand model, posed hands in front of a nominal rig, and
stereo frames rendered by the offscreen renderer with a known procedural skin under ambient-only light (so the
images show the skin's albedo)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from app.types import HandMesh, HandState, StereoFrame
from calibration.presets import preset_rig
from models.hand_model.layer import HandModel, _load_open
from models.hand_model.pose_space import angles_to_axis_angle, joint_frames

torch.set_num_threads(1)

# Model axes in the camera frame (columns): fingers up (model x -> -y), palm to the camera (model y -> +z).
R_PALM_TO_CAMERA = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
SKIN_SIZE = 256


@dataclass(frozen=True)
class Scene:
    mesh: HandMesh
    frame: StereoFrame
    skin: np.ndarray  # (S, S, 3) uint8 known texture


@pytest.fixture(scope="session")
def model_data():
    return _load_open("right")


@pytest.fixture(scope="session")
def hand_model(model_data):
    return HandModel(model_data, is_left=False, name="open")


def posed_mesh(model, flexion_rad: float, R_cam_model: np.ndarray, depth_m: float = 0.35,
               frame_id: int = 0) -> HandMesh:
    """The model with every finger joint flexed by flexion_rad, rotated into the camera frame, its vertex
    centroid depth_m in front of the left camera."""
    angles = np.zeros((1, 15, 3))
    angles[0, :, 0] = flexion_rad
    pose = np.concatenate([Rotation.from_matrix(R_cam_model).as_rotvec(),
                           angles_to_axis_angle(angles, joint_frames())[0]]).astype(np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(pose[None]), torch.zeros(1, 10))
    verts = out.verts_m[0].numpy()
    shift = np.array([0.03, 0.0, depth_m]) - verts.mean(0)
    state = HandState(pose, np.zeros(10, np.float32), shift.astype(np.float32), False)
    return HandMesh(frame_id, 0, (verts + shift).astype(np.float32), model.faces.numpy(),
                    (out.keypoints_m[0].numpy() + shift).astype(np.float32), state)


@pytest.fixture(scope="session")
def skin(model_data):
    from models.synth.skin import SkinPainter

    return SkinPainter(model_data, SKIN_SIZE).paint(np.random.default_rng(7))


def render_stereo(model_data, mesh: HandMesh, skin, mode: str = "640x360") -> StereoFrame:
    """Both views of the mesh with the skin under ambient light only, over a grey background."""
    from app.offscreen.renderer import OffscreenRenderer
    from models.synth.scene import HandScene, Lighting, face_parts, render_scene

    calib = preset_rig("zed-mini", mode)
    parts = face_parts(np.asarray(model_data["vertex_part"]), mesh.faces)
    light = Lighting(np.array([[0.0, 0.0, 1.0]]), np.zeros(1), 1.0)
    scene = HandScene(mesh.verts_m, mesh.faces, parts, np.ones((len(mesh.verts_m), 3), np.float32), None,
                      np.ones(3), light, skin)
    renderer = OffscreenRenderer(*calib.left.size_wh)
    try:
        left = render_scene(renderer, scene, calib.left.K, None, with_parts=False).rgb
        right = render_scene(renderer, scene, calib.right.K, None, calib.right.T_cam_left, with_parts=False).rgb
    finally:
        renderer.close()
    return StereoFrame(mesh.frame_id, 0, left, right, calib)


@pytest.fixture(scope="session")
def fist_scene(hand_model, model_data, skin) -> Scene:
    """A loose fist with the palm to the camera: the curled fingers hide parts of the palm."""
    mesh = posed_mesh(hand_model, 1.1, R_PALM_TO_CAMERA)
    return Scene(mesh, render_stereo(model_data, mesh, skin), skin.image)


@pytest.fixture(scope="session")
def open_scene(hand_model, model_data, skin) -> Scene:
    """A slightly bent open hand, back to the camera and tilted: most of its visible surface face-on."""
    R = Rotation.from_euler("xy", [0.3, 0.4]).as_matrix() @ R_PALM_TO_CAMERA @ Rotation.from_rotvec(
        [np.pi, 0.0, 0.0]).as_matrix()
    mesh = posed_mesh(hand_model, 0.2, R)
    return Scene(mesh, render_stereo(model_data, mesh, skin), skin.image)
