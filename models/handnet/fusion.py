"""Modality fusion (SSMA, thesis 4.2.1) and stereo fusion (thesis 4.3).

SSMA (Valada et al. 2019, "self-supervised model adaptation"): X = [X_img | X_kp] (B, 2C, H, W);
w = sigmoid(conv(relu(conv(X)))) with a 2C -> 2C / 8 -> 2C bottleneck; X_hat = w * X (Hadamard product);
out = BN(conv(X_hat)) with 2C -> C channels (thesis: C = 512, H = W = 28).

Stereo (thesis eq. in 4.3): per-pose-parameter weights w = sigmoid(FC([x_right | x_left])) in (0, 1)^48 from the
two views' regressor features; p = w p_right + (1 - w) p_left; s = (s_right + s_left) / 2;
c_right = (c_right + xi(c_left)) / 2 with ``left_camera_in_right_view`` as xi.
"""

from __future__ import annotations

import torch
from torch import nn

from app.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from app.geometry.weak_perspective import translation_to_weak_perspective, weak_perspective_to_translation
from models.handnet.config import N_POSE, HandNetConfig


class SSMAFusion(nn.Module):
    """x_img, x_kp: (B, C, H, W) head features -> (B, C, H, W) fused features; ``last_weights`` keeps w."""

    def __init__(self, cfg: HandNetConfig):
        super().__init__()
        c = cfg.layer_channels(1)
        k, pad = cfg.ssma_kernel, cfg.ssma_kernel // 2
        self.squeeze = nn.Conv2d(2 * c, 2 * c // cfg.ssma_reduction, k, padding=pad)
        self.excite = nn.Conv2d(2 * c // cfg.ssma_reduction, 2 * c, k, padding=pad)
        self.project = nn.Sequential(nn.Conv2d(2 * c, c, k, padding=pad, bias=False), nn.BatchNorm2d(c))

    def forward(self, x_img: torch.Tensor, x_kp: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x_img, x_kp], dim=1)
        w = torch.sigmoid(self.excite(torch.relu(self.squeeze(x))))
        return self.project(w * x)


class StereoHead(nn.Module):
    """Fusion weights: features_right, features_left (B, F) -> w (B, 48) in (0, 1) (thesis: FC 1024 -> 48)."""

    def __init__(self, cfg: HandNetConfig):
        super().__init__()
        self.fc = nn.Linear(2 * cfg.feature_dim, N_POSE)
        # Start from an even blend (w = 0.5): the untrained head then averages the views instead of picking one.
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, features_right: torch.Tensor, features_left: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(torch.cat([features_right, features_left], dim=1)))


def rotate_global_orient(pose: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """pose: (B, 48) axis-angle; R: (B, 3, 3) frame change. Returns pose with its global rotation G -> R G."""
    glob = matrix_to_axis_angle(R @ axis_angle_to_matrix(pose[:, :3]))
    return torch.cat([glob, pose[:, 3:]], dim=1)


def fuse_pose(w: torch.Tensor, pose_right: torch.Tensor, pose_left: torch.Tensor,
              R_right_left: torch.Tensor | None = None) -> torch.Tensor:
    """p = w p_right + (1 - w) p_left (thesis 4.3). All (B, 48) axis-angle radians; w (B, 48) in [0, 1].

    R_right_left: (B, 3, 3) rotation from the left view's crop camera frame into the right one's. The
    thesis blends the raw vectors, which assumes both views' global rotations share one frame; on a rectified
    rig the cameras do, up to the crops' principal-point rotations, which R_right_left removes. None = identity.
    """
    if R_right_left is not None:
        pose_left = rotate_global_orient(pose_left, R_right_left)
    return w * pose_right + (1 - w) * pose_left


def left_camera_in_right_view(cam_left: torch.Tensor, box_left: torch.Tensor, box_right: torch.Tensor,
                              K_left: torch.Tensor, K_right: torch.Tensor, T_right_left: torch.Tensor,
                              crop_size: int) -> torch.Tensor:
    """xi of the thesis: the left view's weak-perspective camera expressed in the right view's crop.

    cam_left: (B, 3) (tx, ty, s) of the left crop. box_*: (B, 3) (x0, y0, side) full-image pixels of each crop.
    K_*: (B, 3, 3) full-image intrinsics, pixels. T_right_left: (B, 4, 4) metres, maps left-camera points into
    the right camera (a rectified rig: identity rotation, translation (-baseline, 0, 0)).
    Returns (B, 3) (tx, ty, s) in the right crop.

    Approximation: weak perspective places the hand root at depth f_norm / s on the ray through t
    (``weak_perspective_to_translation``); that 3D root is moved into the right camera and re-expressed as a
    weak-perspective camera there. Exact for the root; the scale equals the right view's only while the hand's
    depth extent is small against its distance (the weak-perspective assumption itself).
    """
    root_left = weak_perspective_to_translation(cam_left, box_left, K_left, crop_size)
    root_right = (T_right_left[:, :3, :3] @ root_left[..., None])[..., 0] + T_right_left[:, :3, 3]
    return translation_to_weak_perspective(root_right, box_right, K_right, crop_size)
