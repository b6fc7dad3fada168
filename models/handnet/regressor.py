"""MANO regressor (thesis 4.2.3, Figure 4.5): dense layers on the pooled base features.

base (B, C_4, S/32, S/32) -> global average pool -> (B, C_4) -> FC+ReLU per ``regressor_hidden`` (2048, 512) ->
feature x (B, 512) -> three linear outputs: pose (B, 48) axis-angle radians relative to the flat hand (3 global +
15 x 3 joints, MANO joint order); shape (B, 10) betas; cam (B, 3) weak perspective (tx, ty) crop-normalised
units (-1 .. 1 across the crop) and s > 0 in crop-normalised units per metre (app/geometry/weak_perspective.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.handnet.config import N_CAM, N_POSE, N_SHAPE, HandNetConfig


@dataclass(frozen=True)
class RegressorOutput:
    """pose (B, 48), shape (B, 10), cam (B, 3), features (B, F): float tensors as described in the module doc."""

    pose: torch.Tensor
    shape: torch.Tensor
    cam: torch.Tensor
    features: torch.Tensor


class ManoRegressor(nn.Module):
    def __init__(self, cfg: HandNetConfig):
        super().__init__()
        widths = [cfg.layer_channels(3), *cfg.regressor_hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        self.mlp = nn.Sequential(*layers)
        self.pose = nn.Linear(widths[-1], N_POSE)
        self.shape = nn.Linear(widths[-1], N_SHAPE)
        self.cam = nn.Linear(widths[-1], N_CAM)
        self.log_scale_init = float(torch.log(torch.tensor(cfg.cam_scale_init)))
        # Small output layers: the untrained net predicts the flat mean hand at the crop centre.
        for head in (self.pose, self.shape, self.cam):
            nn.init.normal_(head.weight, std=1e-3)
            nn.init.zeros_(head.bias)

    def forward(self, base: torch.Tensor) -> RegressorOutput:
        x = self.mlp(torch.flatten(nn.functional.adaptive_avg_pool2d(base, 1), 1))
        raw = self.cam(x)
        # s = s_init exp(raw_s): always > 0 (a negative scale would put the root behind the camera).
        scale = torch.exp(raw[:, 2:3].float().clamp(-10, 10) + self.log_scale_init).to(raw.dtype)
        return RegressorOutput(self.pose(x), self.shape(x), torch.cat([raw[:, :2], scale], dim=1), x)
