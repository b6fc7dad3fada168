"""Training augmentation (thesis 4.5.2): rescale, rotate, crop, blur; plus heatmap dropout (thesis 5.3).

One crop camera does rescale, rotation and crop at once. For a crop box (centre c, side = tight keypoint box x a
random factor in [1.5, 2.5]) the crop camera is the source camera rotated by R = R_roll R_pp:
  R_pp turns the ray through c onto the optical axis - the "principal point" rotation of thesis Figure 4.12: a
    crop moves the principal point, and rotating the ground truth by R_pp keeps it consistent with the crop's
    centred camera;
  R_roll rolls about the optical axis by one of ``rotations`` evenly spaced angles (the image rotates with it);
with intrinsics K_c = [[f S / side, 0, (S - 1) / 2], [0, f S / side, (S - 1) / 2], [0, 0, 1]] (f the source's mean
focal length, so the hand keeps its pixel scale relative to the box: the "rescale" to the encoder's input size).
The crop is the exact image of that camera: pixels map by the homography H = K_c R K^-1, and every 3D label X
becomes R X (the pose's global rotation G becomes R G), so projection of the labels matches the pixels exactly.
Blur: with probability ``blur_prob`` a box filter of one of ``blur_kernels`` sizes (thesis: 4 sizes in 3 .. 12).
Heatmap dropout: with probability ``heatmap_dropout`` the heatmap is all zeros ("no keypoints"; thesis: 0.3).

Pure numpy geometry; the two OpenCV calls (warp, blur) sit in ``warp_image`` and ``blur_image``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from app.detection.crop import keypoint_box, normalise_crop
from app.detection.heatmaps import render_heatmaps
from app.geometry.camera import project
from app.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from models.data.types import RawStereoPair, RawView
from models.handnet.crop_camera import CropCamera, crop_camera, crop_homography
from models.handnet.losses import crop_px_to_norm
from models.training.samples import TrainStereo, TrainView


@dataclass(frozen=True)
class AugmentConfig:
    """enabled False: centred crop at ``eval_scale``, no rotation, blur or dropout (validation, tests)."""

    enabled: bool = True
    crop_size: int = 224
    crop_scale: tuple[float, float] = (1.5, 2.5)
    eval_scale: float = 2.0
    rotations: int = 20
    max_rotation_deg: float = 180.0
    blur_prob: float = 0.5
    blur_kernels: tuple[int, ...] = (3, 6, 9, 12)
    heatmap_dropout: float = 0.3
    heatmap_sigma: float = 5.0
    heatmap_kernel: int = 49


@dataclass(frozen=True)
class AugmentParams:
    """One draw: crop scale factor, roll angle (radians), blur kernel size (0 = none), heatmap dropped."""

    scale: float
    angle_rad: float
    blur: int
    drop_heatmap: bool


def rotation_angles(cfg: AugmentConfig) -> np.ndarray:
    """The precomputed roll angles (radians): ``rotations`` evenly spaced in [-max, max] (a full turn: [-pi, pi))."""
    full = cfg.max_rotation_deg >= 180.0
    return np.deg2rad(np.linspace(-cfg.max_rotation_deg, cfg.max_rotation_deg, cfg.rotations, endpoint=not full))


def sample_params(rng: np.random.Generator, cfg: AugmentConfig) -> AugmentParams:
    if not cfg.enabled:
        return AugmentParams(cfg.eval_scale, 0.0, 0, False)
    return AugmentParams(
        scale=float(rng.uniform(*cfg.crop_scale)),
        angle_rad=float(rng.choice(rotation_angles(cfg))) if cfg.rotations > 0 else 0.0,
        blur=int(rng.choice(cfg.blur_kernels)) if rng.random() < cfg.blur_prob else 0,
        drop_heatmap=bool(rng.random() < cfg.heatmap_dropout),
    )


def warp_image(image: np.ndarray, H: np.ndarray, size: int) -> np.ndarray:
    """(h, w[, 3]) image -> (size, size[, 3]) of the same dtype through homography H, bilinear, black outside."""
    return cv2.warpPerspective(image, H, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=0)


def blur_image(image: np.ndarray, kernel: int) -> np.ndarray:
    return image if kernel <= 1 else cv2.blur(image, (kernel, kernel))


def rotate_pose(pose: np.ndarray, R: np.ndarray) -> np.ndarray:
    """(48,) pose with its global rotation G replaced by R G (the hand seen from a rotated camera)."""
    glob = matrix_to_axis_angle(R @ axis_angle_to_matrix(pose[:3].astype(np.float64)))
    return np.concatenate([glob, pose[3:]]).astype(np.float32)


def view_crop_camera(raw: RawView, params: AugmentParams, crop_size: int) -> CropCamera:
    """Crop camera of a raw view: box around the projected keypoints scaled by params.scale, rolled."""
    kps_px = project(raw.keypoints_m.astype(np.float64), raw.K)
    box = keypoint_box(kps_px, params.scale)
    centre = box[:2] + box[2] / 2
    return crop_camera(raw.K, centre, float(box[2]), params.angle_rad, crop_size)


def _f32(a) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _inputs(raw: RawView, H: np.ndarray, kps_crop_px: np.ndarray, params: AugmentParams, cfg: AugmentConfig):
    """(image (3, S, S), heatmap (21, S, S), mask (1, S, S), has_mask) tensors of one warped view."""
    s = cfg.crop_size
    image = normalise_crop(blur_image(warp_image(raw.image, H, s), params.blur))
    heat = None if params.drop_heatmap else kps_crop_px
    heatmap = render_heatmaps(heat, s, cfg.heatmap_sigma, cfg.heatmap_kernel)
    has_mask = raw.mask is not None
    # A float mask warps to soft edges (fractional hand coverage), a fair BCE target.
    mask = warp_image(raw.mask.astype(np.float32), H, s) if has_mask else np.zeros((s, s), np.float32)
    return _f32(image.transpose(2, 0, 1)), _f32(heatmap), _f32(mask[None]), torch.tensor(has_mask)


def augment_view(raw: RawView, params: AugmentParams, cfg: AugmentConfig) -> TrainView:
    """One raw view -> TrainView (module doc). The crop camera is computed from the ground-truth keypoints."""
    cam = view_crop_camera(raw, params, cfg.crop_size)
    kps_m = raw.keypoints_m.astype(np.float64) @ cam.R.T
    kps_px = project(kps_m, cam.K)
    image, heatmap, mask, has_mask = _inputs(raw, crop_homography(raw.K, cam), kps_px, params, cfg)
    verts = np.zeros((0, 3)) if raw.verts_m is None else raw.verts_m.astype(np.float64) @ cam.R.T
    return TrainView(image=image, heatmap=heatmap, mask=mask, has_mask=has_mask,
                     keypoints_norm=_f32(crop_px_to_norm(kps_px, cfg.crop_size)), keypoints_m=_f32(kps_m),
                     verts_m=_f32(verts), pose=_f32(rotate_pose(raw.pose, cam.R)), shape=_f32(raw.shape),
                     R_crop_cam=_f32(cam.R), K_crop=_f32(cam.K))


def augment_pair(pair: RawStereoPair, rng: np.random.Generator, cfg: AugmentConfig) -> TrainStereo:
    """Both views with one crop scale and roll (a rig moves as one); blur and heatmap dropout drawn per view."""
    p_left = sample_params(rng, cfg)
    p_right = sample_params(rng, cfg)
    p_right = AugmentParams(p_left.scale, p_left.angle_rad, p_right.blur, p_right.drop_heatmap)
    left, right = augment_view(pair.left, p_left, cfg), augment_view(pair.right, p_right, cfg)
    # left crop -> left camera -> right camera -> right crop
    R = right.R_crop_cam.double() @ torch.from_numpy(pair.T_right_left[:3, :3]) @ left.R_crop_cam.double().T
    return TrainStereo(left, right, R.float())
