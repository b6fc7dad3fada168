"""Random hand scenes for the synthetic stereo set (METHOD.md, Data): which hand, its articulation, shape,
viewpoint and placement in front of the rig, and how far away the background is.

Distributions (``SamplerConfig`` holds every number):
- side: left with probability ``left_fraction``. A left hand is the left model (the right mirrored in model x)
  shown through the mirrored view (views.mirror_view_for_left), so it looks like a right hand's mirror image.
- articulation: with probability ``pca_fraction`` from the model's pose components, as the paper sampled MANO's
  6-component PCA space: coefficients c_k ~ N(0, std_k) clipped to +-``pca_clip_sigma`` std_k on the first
  ``pca_components`` components, pose = hands_mean + c @ hands_components[:k]; otherwise from the synergy
  sampler (pose_space.sample_angles) directly, which covers the tails the clipped PCA leaves out.
- shape: betas ~ U(-``shape_range``, ``shape_range``) independently (the open model's betas are about one
  standard deviation of adult hands per unit; docs/HAND_MODEL.md), as the paper's "uniform shapes".
- view: views.sample_view (back 45 %, palm 25 %, egocentric 30 % by default), hand centre at a depth in
  ``distance_m``.
- placement: the centre of the hand's vertices on a ray near the left camera's optical axis (normalised image
  offset ~ N(0, ``axis_jitter``) per axis, clipped at 2 sigma); when fewer than ``min_inside`` of the vertices
  project inside the left view the offset is halved (twice, then zero) and, if the hand still does not fit,
  moved back 10 % at a time up to the far end of ``distance_m``. The hand is therefore (mostly) inside the
  left view; it may leave the right view.
- background: a fronto-parallel plane at a depth in ``background_depth_m``, giving the right view's
  background a whole-pixel disparity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from app.geometry.camera import project
from app.types import CameraView, StereoCalibration
from models.hand_model.pose_space import angles_to_axis_angle, sample_angles
from models.synth.forearm import pose_forearm
from models.synth.scene import FOREARM_VERTS_M
from models.synth.views import mirror_view_for_left, sample_view

SIDES = ("right", "left")
# Rotation by 180 degrees about model y: maps the right forearm onto the left one (the tube is symmetric in
# model z) while keeping its faces wound outward, which a mirror would flip.
_RIGHT_TO_LEFT_FOREARM = np.diag([-1.0, 1.0, -1.0])


@dataclass(frozen=True)
class SamplerConfig:
    """Distributions of the synthetic hands (module docstring). distance_m / background_depth_m: (min, max)
    metres; kind_probs: probabilities of views.VIEW_KINDS (back, palm, ego); axis_jitter: std of the hand
    centre's offset from the optical axis in normalised image units (x / z); min_inside: share of hand vertices
    that must project inside the left view."""

    left_fraction: float = 0.5
    pca_fraction: float = 0.5
    pca_components: int = 6
    pca_clip_sigma: float = 2.0
    shape_range: float = 2.0
    distance_m: tuple[float, float] = (0.25, 0.7)
    kind_probs: tuple[float, float, float] = (0.45, 0.25, 0.30)
    axis_jitter: float = 0.1
    min_inside: float = 0.9
    background_depth_m: tuple[float, float] = (1.0, 4.0)

    def __post_init__(self):
        for name in ("left_fraction", "pca_fraction", "min_inside"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SamplerConfig.{name}: expected a value in [0, 1], got {getattr(self, name)}")
        if not 1 <= self.pca_components <= 45:
            raise ValueError(f"SamplerConfig.pca_components: expected 1..45, got {self.pca_components}")
        if not 0 < self.distance_m[0] <= self.distance_m[1]:
            raise ValueError(f"SamplerConfig.distance_m: expected 0 < min <= max metres, got {self.distance_m}")
        if not 0 < self.background_depth_m[0] <= self.background_depth_m[1]:
            raise ValueError("SamplerConfig.background_depth_m: expected 0 < min <= max metres, "
                             f"got {self.background_depth_m}")
        if len(self.kind_probs) != 3 or min(self.kind_probs) < 0 or abs(sum(self.kind_probs) - 1) > 1e-6:
            raise ValueError(f"SamplerConfig.kind_probs: expected 3 probabilities summing to 1, got {self.kind_probs}")


@dataclass(frozen=True)
class HandDraw:
    """One draw of a hand's parameters before placement.

    side: 'right' | 'left' (which model); kind: the view kind; R_cam_model: (3, 3) float64 rotation of that
    model into the left-camera frame; distance_m: requested depth of the hand centre, metres;
    hand_pose: (45,) float64 axis-angle radians, 15 joints in MANO order, in that model's convention;
    articulation: 'pca' or 'synergy'; shape: (10,) float64 betas.
    """

    side: str
    kind: str
    R_cam_model: np.ndarray
    distance_m: float
    hand_pose: np.ndarray
    articulation: str
    shape: np.ndarray


@dataclass(frozen=True)
class PlacedHand:
    """A drawn hand posed and placed. pose: (48,) float32 axis-angle radians (3 global in the left-camera frame
    + 45 joints); shape: (10,) float32; transl_m: (3,) float32 metres, so that the side's HandModel gives
    verts_m = forward(pose, shape, transl_m).verts_m; verts_m: (V, 3) float32 and keypoints_m: (21, 3) float32
    (MediaPipe order), metres, left-camera frame; forearm_m: (N, 3) float32 metres, left-camera frame
    (scene.FOREARM_FACES)."""

    pose: np.ndarray
    shape: np.ndarray
    transl_m: np.ndarray
    verts_m: np.ndarray
    keypoints_m: np.ndarray
    forearm_m: np.ndarray


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of sample ``index`` of a set with ``seed``: independent of every other sample, so any
    split of the indices over workers draws the same sample."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def sample_side(rng: np.random.Generator, cfg: SamplerConfig) -> str:
    """'left' with probability cfg.left_fraction, else 'right'."""
    return "left" if rng.uniform() < cfg.left_fraction else "right"


def sample_shape(rng: np.random.Generator, cfg: SamplerConfig) -> np.ndarray:
    """(10,) float64 betas ~ U(-shape_range, shape_range)."""
    return rng.uniform(-cfg.shape_range, cfg.shape_range, 10)


def pca_articulation(rng: np.random.Generator, components: np.ndarray, std: np.ndarray, mean: np.ndarray,
                     n_components: int, clip_sigma: float) -> np.ndarray:
    """(45,) float64 axis-angle: mean (45,) + c @ components[:k] (rows = directions, (45, 45)), with
    c_j ~ N(0, std_j) clipped to +-clip_sigma std_j (std: (45,) radians per component)."""
    k = n_components
    c = np.clip(rng.normal(0.0, 1.0, k), -clip_sigma, clip_sigma) * np.asarray(std[:k], np.float64)
    return np.asarray(mean, np.float64) + c @ np.asarray(components[:k], np.float64)


def sample_articulation(rng: np.random.Generator, data: dict, cfg: SamplerConfig) -> tuple[np.ndarray, str]:
    """(45,) float64 axis-angle of one side's model (data: its model dict) and which sampler drew it."""
    if rng.uniform() < cfg.pca_fraction:
        pose = pca_articulation(rng, data["hands_components"], data["hands_components_std"], data["hands_mean"],
                                cfg.pca_components, cfg.pca_clip_sigma)
        return pose, "pca"
    return angles_to_axis_angle(sample_angles(rng, 1), data["joint_frames"])[0], "synergy"


def draw_hand(rng: np.random.Generator, data: dict, side: str, cfg: SamplerConfig) -> HandDraw:
    """Articulation, shape and view of one hand of ``side`` (data: that side's model dict)."""
    if side not in SIDES:
        raise ValueError(f"side: expected one of {SIDES}, got {side!r}")
    hand_pose, articulation = sample_articulation(rng, data, cfg)
    shape = sample_shape(rng, cfg)
    view = sample_view(rng, None, distance_m=cfg.distance_m, kind_probs=cfg.kind_probs)
    R = view.R_cam_model if side == "right" else mirror_view_for_left(view.R_cam_model)
    return HandDraw(side, view.kind, R, view.distance_m, hand_pose, articulation, shape)


def inside_fraction(points_m: np.ndarray, K: np.ndarray, size_wh: tuple[int, int]) -> float:
    """Share of points (N, 3) metres, camera frame, in front of the camera and projecting inside the image
    (pixel centres 0 .. W - 1, 0 .. H - 1, half a pixel of margin); K: (3, 3) pixels."""
    z_ok = points_m[:, 2] > 1e-6
    px = project(points_m[z_ok].astype(np.float64), np.asarray(K, np.float64))
    w, h = size_wh
    inside = (px[:, 0] >= -0.5) & (px[:, 0] < w - 0.5) & (px[:, 1] >= -0.5) & (px[:, 1] < h - 0.5)
    return float(inside.sum()) / max(len(points_m), 1)


def place_hand(verts_m: np.ndarray, view: CameraView, distance_m: float, max_distance_m: float,
               rng: np.random.Generator, cfg: SamplerConfig) -> np.ndarray:
    """(3,) float64 metres to add to a posed hand (verts_m (V, 3), left-camera frame, model transl = 0) so that
    its vertex centre lies near the optical axis at ``distance_m`` and at least cfg.min_inside of the vertices
    fall inside the left view (module docstring: jitter halved, then zero, then moved back)."""
    centre = verts_m.mean(0)
    jitter = np.clip(rng.normal(0.0, cfg.axis_jitter, 2), -2 * cfg.axis_jitter, 2 * cfg.axis_jitter)
    z = float(distance_m)
    while True:
        for scale in (1.0, 0.5, 0.0):
            offset = np.array([jitter[0] * scale * z, jitter[1] * scale * z, z]) - centre
            if inside_fraction(verts_m + offset, view.K, view.size_wh) >= cfg.min_inside:
                return offset
        if z >= max_distance_m:
            return offset
        z = min(z * 1.1, max_distance_m)


def forearm_rest_m(side: str) -> np.ndarray:
    """(N, 3) float64 rest-pose forearm of ``side``'s model frame (scene.FOREARM_FACES, wound outward)."""
    return FOREARM_VERTS_M if side == "right" else FOREARM_VERTS_M @ _RIGHT_TO_LEFT_FOREARM.T


def pose_drawn_hand(model, draw: HandDraw, rng: np.random.Generator, calib: StereoCalibration,
                    cfg: SamplerConfig) -> PlacedHand:
    """Pose ``draw`` with its side's HandModel and place it in front of the rig's left camera (place_hand)."""
    glob = Rotation.from_matrix(draw.R_cam_model).as_rotvec()
    pose = np.concatenate([glob, draw.hand_pose]).astype(np.float32)
    shape = draw.shape.astype(np.float32)
    with torch.no_grad():
        pose_t, shape_t = torch.from_numpy(pose[None]), torch.from_numpy(shape[None])
        out = model(pose_t, shape_t)
        root_m = model.rest_joints(shape_t)[0, 0].numpy().astype(np.float64)
    verts = out.verts_m[0].numpy().astype(np.float64)
    offset = place_hand(verts, calib.left, draw.distance_m, cfg.distance_m[1], rng, cfg)
    arm = pose_forearm(forearm_rest_m(draw.side), draw.R_cam_model, root_m, offset)
    kps = out.keypoints_m[0].numpy().astype(np.float64) + offset
    return PlacedHand(pose, shape, offset.astype(np.float32), (verts + offset).astype(np.float32),
                      kps.astype(np.float32), arm.astype(np.float32))


def background_disparity_px(rng: np.random.Generator, calib: StereoCalibration, cfg: SamplerConfig) -> int:
    """Whole-pixel disparity of a background plane at a random depth: round(fx * baseline / depth)."""
    depth_m = rng.uniform(*cfg.background_depth_m)
    return int(round(calib.left.K[0, 0] * calib.baseline_m / depth_m))
