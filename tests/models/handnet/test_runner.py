"""Tests for models/handnet/runner.py.

The frame bookkeeping is checked by round trips: a known hand (pose, shape, root in the left camera frame) is
turned into the outputs an ideal network would give for each detection crop (pose in the crop's centred
camera, weak-perspective camera of the root); predict() must return the same hand, for right and mirrored left
hands, mono and stereo. The centred crop camera must equal the one training augmentation uses.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from app.config import HandModelConfig
from app.detection.config import DetectionConfig
from app.detection.stereo import make_detection
from app.geometry.camera import project
from app.geometry.rotations import mirror_axis_angle
from app.geometry.weak_perspective import translation_to_weak_perspective
from app.types import HandObservation
from calibration.rig import make_stereo
from models.data.types import RawView
from models.hand_model import build_hand_model
from models.handnet import HandNetConfig, build_handnet
from models.handnet.checkpoint import CheckpointError, save_checkpoint
from models.handnet.net import HandNetOutput
from models.handnet.runner import MIRROR, build_handnet_runner, crop_box, crop_view
from models.training.augmentation import AugmentParams, view_crop_camera

torch.set_num_threads(1)

S = 64
TINY = HandNetConfig(width=0.125, blocks=(1, 1, 1, 1), crop_size=S, regressor_hidden=(64, 32))
DET_CFG = DetectionConfig(crop_size=S)


@pytest.fixture(scope="module")
def models():
    cfg = HandModelConfig(mano_dir="")
    return {side: build_hand_model(cfg, side) for side in ("right", "left")}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", build_handnet(TINY),
                           {"name": "open", "mano_dir": ""})


@pytest.fixture(scope="module")
def rig():
    K = np.array([[700.0, 0, 639.5], [0, 700.0, 359.5], [0, 0, 1]])
    return make_stereo(K, np.zeros(5), K, np.zeros(5), np.eye(3), [-0.12, 0, 0], (1280, 720), rectified=True)


def _hand(models, side: str, seed: int):
    """A posed hand in the left camera frame: (pose (48,), shape (10,), root (3,), keypoints (21, 3))."""
    rng = np.random.default_rng(seed)
    glob = Rotation.from_euler("xyz", rng.uniform(-1.2, 1.2, 3)).as_rotvec()
    pose = np.concatenate([glob, rng.normal(0, 0.2, 45)]).astype(np.float32)
    shape = rng.normal(0, 0.8, 10).astype(np.float32)
    root = np.array([0.09, 0.03, 0.45]) + rng.normal(0, 0.03, 3)
    model = models[side]
    j0 = model.rest_joints(torch.tensor(shape[None]))[0, 0].numpy()
    kps = model(torch.tensor(pose[None]), torch.tensor(shape[None]),
                torch.tensor((root - j0)[None], dtype=torch.float32)).keypoints_m[0].detach().numpy()
    return pose, shape, root, kps


def _ideal_output(pose, root, view) -> tuple[np.ndarray, np.ndarray]:
    """What a perfect network outputs for a crop: pose in V (mirrored for left hands) and the root's camera."""
    T_cam_left = np.linalg.inv(view.T_left_cam)
    R, t = T_cam_left[:3, :3], T_cam_left[:3, 3]
    pose_cam = np.concatenate([(Rotation.from_matrix(R) * Rotation.from_rotvec(pose[:3])).as_rotvec(), pose[3:]])
    root_cam = R @ root + t
    if view.mirrored:
        pose_cam, root_cam = mirror_axis_angle(pose_cam), MIRROR @ root_cam
    glob_V = (Rotation.from_matrix(view.R_pp) * Rotation.from_rotvec(pose_cam[:3])).as_rotvec()
    root_V = view.R_pp @ root_cam
    cam = translation_to_weak_perspective(root_V, crop_box(S), view.K_V, S)
    return np.concatenate([glob_V, pose_cam[3:]]), cam


def _observation(rig, kps_left_m, side, views=("left", "right")):
    dets = {}
    for name, cam in (("left", rig.left), ("right", rig.right)):
        if name in views:
            pts = kps_left_m @ cam.T_cam_left[:3, :3].T + cam.T_cam_left[:3, 3]
            dets[name] = make_detection(project(pts, cam.K).astype(np.float32), 0.9, side, DET_CFG)
    n = len(dets)
    rng = np.random.default_rng(0)
    crops = tuple(rng.uniform(-1, 1, (S, S, 3)).astype(np.float32) for _ in range(n))
    heats = tuple(rng.uniform(-1, 1, (21, S, S)).astype(np.float32) for _ in range(n))
    return HandObservation(0, 0, dets.get("left"), dets.get("right"), None, None, side == "left", crops, heats)


def _patch_ideal(runner, obs, rig, pose, shape, root):
    """Make runner._forward return the ideal outputs for obs's views (random features)."""
    outs = []
    for det, cam in ((obs.left, rig.left), (obs.right, rig.right)):
        if det is not None:
            outs.append(_ideal_output(pose, root, crop_view(det, cam.K, cam.T_cam_left, S)))
    n = len(outs)

    def t(arrays):
        return torch.tensor(np.stack(arrays), dtype=torch.float32)

    out = HandNetOutput(t([o[0] for o in outs]), t([shape] * n), t([o[1] for o in outs]),
                        torch.randn(n, TINY.feature_dim))
    runner._forward = lambda obs, segment: out


@pytest.mark.parametrize("placement", ["keypoints", "camera"])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("views", [("left",), ("right",), ("left", "right")])
def test_ideal_outputs_round_trip_to_the_hand(models, checkpoint, rig, side, views, placement):
    pose, shape, root, kps = _hand(models, side, seed=len(views) + (side == "left"))
    obs = _observation(rig, kps, side, views)
    runner = build_handnet_runner(str(checkpoint), "cpu", rig, placement=placement)
    with torch.no_grad():
        runner.net.stereo.fc.weight.normal_(0, 1.0)  # any fusion weights: both views agree on the truth
    _patch_ideal(runner, obs, rig, pose, shape, root)
    state = runner.predict(obs).state
    assert state.is_left == (side == "left")
    R_err = Rotation.from_rotvec(state.pose[:3]).inv() * Rotation.from_rotvec(pose[:3])
    assert R_err.magnitude() < 1e-4
    np.testing.assert_allclose(state.pose[3:], pose[3:], atol=1e-5)
    np.testing.assert_allclose(state.shape, shape, atol=1e-6)
    posed = models[side](torch.tensor(state.pose[None]), torch.tensor(state.shape[None]),
                         torch.tensor(state.transl_m[None]))
    np.testing.assert_allclose(posed.keypoints_m[0, 0].detach().numpy(), root, atol=1e-5)  # wrist = root
    np.testing.assert_allclose(posed.keypoints_m[0].detach().numpy(), kps, atol=1e-4)


def _placed(models, checkpoint, rig, obs, placement: str, pose, shape, root, scale_div: float = 1.0) -> np.ndarray:
    """(21, 3) keypoints of the hand the runner returns for ideal outputs of (pose, shape, root), weak-perspective
    scale divided by ``scale_div``; stereo fusion weights 0.5."""
    runner = build_handnet_runner(str(checkpoint), "cpu", rig, placement=placement)
    with torch.no_grad():
        runner.net.stereo.fc.weight.zero_()
    _patch_ideal(runner, obs, rig, pose, shape, root)
    runner._forward(obs, False).cam[:, 2] /= scale_div
    state = runner.predict(obs).state
    return models["left" if state.is_left else "right"](
        torch.tensor(state.pose[None]), torch.tensor(state.shape[None]),
        torch.tensor(state.transl_m[None])).keypoints_m[0].detach().numpy()


@pytest.mark.parametrize("views", [("left",), ("left", "right")])
def test_keypoint_placement_ignores_a_collapsed_camera_scale(models, checkpoint, rig, views):
    """The failure seen with a CPU-trained net: right pose and shape, weak-perspective scale 27x too small.
    'camera' puts the hand ~10 m away; 'keypoints' places it on the detection's pixels, at the true root."""
    pose, shape, root, kps = _hand(models, "right", seed=11)
    obs = _observation(rig, kps, "right", views)
    found = {p: _placed(models, checkpoint, rig, obs, p, pose, shape, root, scale_div=27)[0]
             for p in ("keypoints", "camera")}
    assert found["camera"][2] > 5 * root[2]
    np.testing.assert_allclose(found["keypoints"], root, atol=1e-4)


def test_unknown_placement_is_an_error(checkpoint):
    with pytest.raises(ValueError, match="placement"):
        build_handnet_runner(str(checkpoint), "cpu", placement="weak")


def test_crop_camera_equals_the_training_crop_camera(models, rig):
    """Detection crop at scale 2 and the augmentation's unrotated crop at scale 2: same centred camera."""
    pose, shape, root, kps = _hand(models, "right", seed=5)
    raw = RawView(np.zeros((720, 1280, 3), np.uint8), None, rig.left.K, kps.astype(np.float32), None, pose, shape)
    train_cam = view_crop_camera(raw, AugmentParams(DET_CFG.crop_scale, 0.0, 0, False), S)
    det = make_detection(project(kps, rig.left.K).astype(np.float32), 0.9, "right", DET_CFG)
    view = crop_view(det, rig.left.K, np.eye(4), S)
    # Equal up to float32 rounding of the crop box (keypoint_box returns float32).
    np.testing.assert_allclose(view.R_V_cam, train_cam.R, atol=1e-6)
    np.testing.assert_allclose(view.K_V, train_cam.K, rtol=1e-6)


def test_predict_with_the_network(checkpoint, models, rig):
    pose, shape, root, kps = _hand(models, "right", seed=7)
    runner = build_handnet_runner(str(checkpoint), "cpu")
    pred = runner.predict(_observation(rig, kps, "right"))
    assert pred.state is None and [v.view for v in pred.views] == ["left", "right"]
    np.testing.assert_allclose(pred.stereo_weights, 0.5)  # untrained stereo head: even blend
    v = pred.views[0]
    assert v.pose.shape == (48,) and v.shape.shape == (10,) and v.cam.shape == (3,) and v.mask.shape == (S, S)
    pred = runner.predict(_observation(rig, kps, "right", ("right",)), rig, segment=False)
    assert pred.stereo_weights is None and pred.views[0].mask is None
    assert np.isfinite(pred.state.transl_m).all()


def test_input_errors(checkpoint, models, rig, tmp_path):
    _, _, _, kps = _hand(models, "right", seed=8)
    runner = build_handnet_runner(str(checkpoint), "cpu")
    obs = _observation(rig, kps, "right")
    big = HandObservation(0, 0, obs.left, obs.right, None, None, False,
                          tuple(np.zeros((224, 224, 3), np.float32) for _ in range(2)),
                          tuple(np.zeros((21, 224, 224), np.float32) for _ in range(2)))
    with pytest.raises(ValueError, match="crop_size=64"):
        runner.predict(big)
    with pytest.raises(ValueError, match="network_inputs"):
        runner.predict(HandObservation(0, 0, obs.left, None, None, None, False))
    with pytest.raises(CheckpointError, match="not found"):
        build_handnet_runner(str(tmp_path / "missing.pt"), "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_half_matches_cpu(checkpoint, models, rig):
    _, _, _, kps = _hand(models, "right", seed=9)
    obs = _observation(rig, kps, "right")
    cpu = build_handnet_runner(str(checkpoint), "cpu", rig).predict(obs)
    gpu_runner = build_handnet_runner(str(checkpoint), "cuda", rig)
    assert next(gpu_runner.net.image_head.parameters()).dtype == torch.float16
    gpu = gpu_runner.predict(obs)
    np.testing.assert_allclose(gpu.views[0].pose, cpu.views[0].pose, atol=2e-2)
    np.testing.assert_allclose(gpu.state.transl_m, cpu.state.transl_m, rtol=2e-2, atol=5e-3)


@pytest.mark.parametrize("side", ["right", "left"])
def test_keypoint_placement_turns_a_wrong_global_rotation_onto_the_stereo_keypoints(models, checkpoint, rig, side):
    """Right articulation and shape, global rotation 60 degrees off: with the triangulated keypoints of a stereo
    observation 'keypoints' returns the true hand; 'camera' keeps the wrong rotation."""
    pose, shape, root, kps = _hand(models, side, seed=13)
    obs = dataclasses.replace(_observation(rig, kps, side), keypoints_cam_m=kps.astype(np.float32))
    wrong = pose.copy()
    wrong[:3] = (Rotation.from_rotvec([0.0, np.pi / 3, 0.0]) * Rotation.from_rotvec(pose[:3])).as_rotvec()
    found = {p: _placed(models, checkpoint, rig, obs, p, wrong, shape, root) for p in ("keypoints", "camera")}
    np.testing.assert_allclose(found["keypoints"], kps, atol=1e-4)
    assert np.abs(found["camera"] - kps).max() > 0.03


def test_keypoint_placement_turns_a_mono_view_onto_its_world_landmarks(models, checkpoint, rig):
    """One view with MediaPipe-like world landmarks (metric, hand-centred, that camera's axes): the wrong global
    rotation is turned onto them and the hand lands on the truth."""
    pose, shape, root, kps = _hand(models, "left", seed=17)
    cam = rig.right
    kps_cam = kps @ cam.T_cam_left[:3, :3].T + cam.T_cam_left[:3, 3]
    det = make_detection(project(kps_cam, cam.K).astype(np.float32), 0.9, "left", DET_CFG,
                         (kps_cam - kps_cam.mean(0)).astype(np.float32))
    rng = np.random.default_rng(0)
    obs = HandObservation(0, 0, None, det, None, None, True, (rng.uniform(-1, 1, (S, S, 3)).astype(np.float32),),
                          (rng.uniform(-1, 1, (21, S, S)).astype(np.float32),))
    wrong = pose.copy()
    wrong[:3] = (Rotation.from_rotvec([0.5, 0.0, 0.8]) * Rotation.from_rotvec(pose[:3])).as_rotvec()
    np.testing.assert_allclose(_placed(models, checkpoint, rig, obs, "keypoints", wrong, shape, root), kps, atol=1e-4)
