"""Synthetic ground truth for the model fit's tests and benchmark: a posed hand model in front of a stereo rig,
its keypoints projected to both views with pixel noise, triangulated as the detection stage does.

Poses come from the open model's synergy sampler (``models.hand_model.pose_space``), shapes from N(0, 1),
global rotations uniform, the hand 0.3-0.6 m in front of the left camera near the optical axis. Left hands
use the mirrored pose (axis-angle (x, -y, -z)) on the left model. Numpy in, dataclasses out; the hand model is
evaluated once per sample with torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from app.detection.config import DetectionConfig
from app.detection.keypoints3d import triangulate_pair
from app.detection.stereo import make_detection
from app.geometry.rotations import mirror_axis_angle
from app.types import HandDetection, HandObservation, HandState, StereoCalibration
from models.hand_model.layer import HandModel
from models.hand_model.pose_space import angles_to_axis_angle, joint_frames, sample_angles


@dataclass(frozen=True)
class SyntheticHand:
    """state: the true parameters; verts_m (V, 3) / keypoints_m (21, 3) float32 metres, left-camera frame;
    pixels: per view (21, 2) float32 noisy pixels; obs: the stereo HandObservation (triangulated)."""

    state: HandState
    verts_m: np.ndarray
    keypoints_m: np.ndarray
    pixels: tuple[np.ndarray, np.ndarray]
    obs: HandObservation


def random_state(rng: np.random.Generator, is_left: bool, depth_m: tuple[float, float] = (0.3, 0.6),
                 shape_sd: float = 1.0) -> HandState:
    """Plausible parameters; transl_m is provisional (``place_in_view`` sets it from the keypoints)."""
    hand = angles_to_axis_angle(sample_angles(rng, 1), joint_frames())[0]
    glob = Rotation.random(random_state=rng).as_rotvec()
    pose = np.concatenate([glob, hand])
    if is_left:
        pose = mirror_axis_angle(pose)
    depth = rng.uniform(*depth_m)
    transl = np.array([rng.uniform(-0.06, 0.06), rng.uniform(-0.04, 0.04), depth])
    return HandState(pose=pose.astype(np.float32), shape=np.clip(rng.normal(0, shape_sd, 10), -2.5, 2.5).astype(
        np.float32), transl_m=transl.astype(np.float32), is_left=is_left)


def evaluate(model: HandModel, state: HandState) -> tuple[np.ndarray, np.ndarray]:
    """(verts_m (V, 3), keypoints_m (21, 3)) float32 of the model at ``state``."""
    with torch.no_grad():
        out = model(torch.from_numpy(state.pose[None]), torch.from_numpy(state.shape[None]),
                    torch.from_numpy(state.transl_m[None]))
    return out.verts_m[0].numpy(), out.keypoints_m[0].numpy()


def place_in_view(model: HandModel, state: HandState) -> HandState:
    """Shift the hand so that its keypoints' centroid sits at the drawn (x, y, depth)."""
    _, kp = evaluate(model, state)
    target = state.transl_m.astype(np.float64)
    transl = state.transl_m + (target - kp.mean(0)).astype(np.float32)
    return HandState(pose=state.pose, shape=state.shape, transl_m=transl.astype(np.float32), is_left=state.is_left)


def project(P: np.ndarray, points_m: np.ndarray) -> np.ndarray:
    """(N, 3) metres, left-camera frame -> (N, 2) float64 pixels through a (3, 4) projection."""
    h = points_m @ P[:, :3].T + P[:, 3]
    return h[:, :2] / h[:, 2:]


def observe(keypoints_m: np.ndarray, calib: StereoCalibration, rng: np.random.Generator, noise_px: float,
            is_left: bool, frame_id: int = 0) -> tuple[tuple[np.ndarray, np.ndarray], HandObservation]:
    """Noisy pixels of both views and the stereo observation built from them like the detection stage does
    (DLT triangulation, residuals, outlier rejection; crops and heatmaps are not made)."""
    cfg = DetectionConfig()
    px = tuple((project(v.P, keypoints_m.astype(np.float64)) + rng.normal(0, noise_px, (21, 2))).astype(np.float32)
               for v in (calib.left, calib.right))
    tri = triangulate_pair(px[0], px[1], calib.left.P, calib.right.P, cfg.outlier_min_px, cfg.outlier_factor)
    side = "left" if is_left else "right"
    dets = [make_detection(p, 0.95, side, cfg) for p in px]
    obs = HandObservation(frame_id=frame_id, t_capture_ns=frame_id * 16_666_667, left=dets[0], right=dets[1],
                          keypoints_cam_m=tri.points_m, residual_px=tri.residual_px, is_left=is_left)
    return px, obs


def synthetic_hand(model: HandModel, calib: StereoCalibration, rng: np.random.Generator, noise_px: float = 1.5,
                   state: HandState | None = None) -> SyntheticHand:
    """One sample: a random (or the given) state, its mesh and keypoints, and the noisy stereo observation."""
    if state is None:
        state = place_in_view(model, random_state(rng, bool(model.is_left)))
    verts, kp = evaluate(model, state)
    px, obs = observe(kp, calib, rng, noise_px, state.is_left)
    return SyntheticHand(state=state, verts_m=verts, keypoints_m=kp, pixels=px, obs=obs)


def world_landmarks(keypoints_m: np.ndarray, rng: np.random.Generator, noise_m: float = 0.008,
                    rot_deg: float = 10.0, scale: float = 0.97) -> np.ndarray:
    """(21, 3) float32 MediaPipe-like world landmarks: the keypoints centred on their mean, scaled, turned by
    a random rotation of ``rot_deg`` and jittered by ``noise_m`` (measured against real MediaPipe output on
    the hand-graph-cnn photos: ~13 deg median orientation error, scale ~0.97, ~9 mm PA error)."""
    centred = keypoints_m - keypoints_m.mean(0)
    axis = rng.normal(size=3)
    R = Rotation.from_rotvec(np.deg2rad(rot_deg) * axis / np.linalg.norm(axis)).as_matrix()
    noisy = scale * centred @ R.T + rng.normal(0, noise_m, (21, 3))
    return noisy.astype(np.float32)


def mono_observation(sample: SyntheticHand, view: str, world_m: np.ndarray | None) -> HandObservation:
    """The sample seen by one view only (``view`` 'left' or 'right'), with optional world landmarks."""
    det: HandDetection = getattr(sample.obs, view)
    det = HandDetection(keypoints_px=det.keypoints_px, score=det.score, handedness=det.handedness,
                        crop_box_xywh=det.crop_box_xywh, crop_from_image=det.crop_from_image,
                        **({} if world_m is None else {"world_landmarks_m": world_m}))
    views = {"left": None, "right": None, view: det}
    return HandObservation(frame_id=sample.obs.frame_id, t_capture_ns=sample.obs.t_capture_ns, left=views["left"],
                           right=views["right"], keypoints_cam_m=None, residual_px=None, is_left=sample.obs.is_left)
