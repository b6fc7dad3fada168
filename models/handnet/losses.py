"""HandNet training losses (thesis 4.5.1, Table 4.3).

MANO loss  = 10 L_pose + 1 L_shape + 100 L_joints2D + 0.5 L_shape_reg + 1e-5 L_cam_reg, each an MSE:
  L_pose: predicted vs true pose (48, axis-angle radians, relative to the flat hand);
  L_shape: predicted vs true betas (10); L_shape_reg: betas vs 0 (guards against shape blow-ups);
  L_joints2D: the predicted 21 keypoints, weak-perspective projected by the predicted camera, vs the true 2D
    keypoints, both in crop-normalised units (-1 .. 1 across the crop); this term teaches the camera;
  L_cam_reg: the camera scale s (crop-normalised units per metre) vs 0.
Segmentation loss = binary cross-entropy of the hand mask (computed from logits: same value, no log(0)).
Stereo loss = w_v L_vertex + w_j L_joints3D: MSE of root-relative vertices and 3D keypoints (metres).

"MSE" is the element mean of squared differences (torch's ``mse_loss``); the thesis writes 1/B sum_i, which
differs by the constant element count per sample and so only rescales the weights' meaning, not the optimum.
The root is MediaPipe keypoint 0 (the wrist), as in the weak-perspective camera (app/geometry/weak_perspective.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

ROOT_KEYPOINT = 0


@dataclass(frozen=True)
class ManoLossWeights:
    """lambda_1 .. lambda_5 of thesis 4.5.1."""

    pose: float = 10.0
    shape: float = 1.0
    joints2d: float = 100.0
    shape_reg: float = 0.5
    cam_reg: float = 1e-5


@dataclass(frozen=True)
class StereoLossWeights:
    """Vertex and 3D-joint weights (the thesis gives no values; equal weights)."""

    vertex: float = 1.0
    joints3d: float = 1.0


MANO_WEIGHTS = ManoLossWeights()
STEREO_WEIGHTS = StereoLossWeights()


@dataclass(frozen=True)
class LossResult:
    """total: scalar tensor with autograd; terms: name -> detached scalar tensor (unweighted), for logs."""

    total: torch.Tensor
    terms: dict


def crop_px_to_norm(keypoints_px: torch.Tensor, crop_size: int) -> torch.Tensor:
    """(..., 2) crop pixels (pixel centres at integers, crop extent [-0.5, S - 0.5]) -> crop-normalised units.

    The crop's edges map to -1 and +1; this is the inverse of ``weak_perspective_project`` once its edge-based
    crop pixels (0 at the left edge) are shifted by half a pixel to the centre convention of app/detection/crop.py.
    """
    return (2 * keypoints_px + 1) / crop_size - 1


def project_norm(keypoints_m: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """Weak perspective in crop-normalised units: (B, N, 3) metres -> (B, N, 2), u = s (X - X_root)_xy + t."""
    rel = keypoints_m[..., :2] - keypoints_m[:, ROOT_KEYPOINT:ROOT_KEYPOINT + 1, :2]
    return cam[:, None, 2:3] * rel + cam[:, None, :2]


def root_relative(points_m: torch.Tensor, keypoints_m: torch.Tensor) -> torch.Tensor:
    """(B, N, 3) points minus the (B, 21, 3) keypoints' root: metres, root at the origin, frame unchanged."""
    return points_m - keypoints_m[:, ROOT_KEYPOINT:ROOT_KEYPOINT + 1]


def mano_loss(pose: torch.Tensor, shape: torch.Tensor, cam: torch.Tensor, keypoints_m: torch.Tensor,
              true_pose: torch.Tensor, true_shape: torch.Tensor, true_keypoints_norm: torch.Tensor,
              weights: ManoLossWeights = MANO_WEIGHTS) -> LossResult:
    """pose (B, 48), shape (B, 10), cam (B, 3) predicted; keypoints_m (B, 21, 3) the hand model's keypoints for
    (pose, shape) in metres (any translation: the root is removed); true_keypoints_norm (B, 21, 2) crop-normalised.
    """
    terms = {
        "pose": F.mse_loss(pose, true_pose),
        "shape": F.mse_loss(shape, true_shape),
        "joints2d": F.mse_loss(project_norm(keypoints_m, cam), true_keypoints_norm),
        "shape_reg": shape.pow(2).mean(),
        "cam_reg": cam[:, 2].pow(2).mean(),
    }
    total = sum(getattr(weights, k) * v for k, v in terms.items())
    return LossResult(total, {k: v.detach() for k, v in terms.items()})


def segmentation_loss(seg_logits: torch.Tensor, true_mask: torch.Tensor) -> LossResult:
    """seg_logits (B, 1, S, S); true_mask (B, 1, S, S) float in [0, 1] (1 = hand). Mean BCE over pixels."""
    bce = F.binary_cross_entropy_with_logits(seg_logits.float(), true_mask.float())
    return LossResult(bce, {"bce": bce.detach()})


def stereo_loss(verts_m: torch.Tensor, keypoints_m: torch.Tensor, true_verts_m: torch.Tensor,
                true_keypoints_m: torch.Tensor, weights: StereoLossWeights = STEREO_WEIGHTS) -> LossResult:
    """verts (B, V, 3), keypoints (B, 21, 3), metres, in one camera frame; both sides are made root-relative."""
    terms = {
        "vertex": F.mse_loss(root_relative(verts_m, keypoints_m), root_relative(true_verts_m, true_keypoints_m)),
        "joints3d": F.mse_loss(root_relative(keypoints_m, keypoints_m),
                               root_relative(true_keypoints_m, true_keypoints_m)),
    }
    total = weights.vertex * terms["vertex"] + weights.joints3d * terms["joints3d"]
    return LossResult(total, {k: v.detach() for k, v in terms.items()})
