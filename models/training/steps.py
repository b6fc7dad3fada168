"""One training step's forward pass and loss for a stage, as one nn.Module (so DDP wraps exactly one forward).

The hand model (MANO layout, models/hand_model/layer.py) turns predicted (pose, shape) into keypoints and
vertices for the 2D-joint and stereo losses; it runs in float32 outside autocast (its blend shapes lose too much
in half precision). Returns (total loss, {term: detached value}).
"""

from __future__ import annotations

import torch
from torch import nn

from models.handnet.losses import (
    LossResult,
    ManoLossWeights,
    StereoLossWeights,
    mano_loss,
    segmentation_loss,
    stereo_loss,
)
from models.handnet.net import HandNet
from models.training.samples import TrainStereo, TrainView
from models.training.stages import StageSpec


class StageStep(nn.Module):
    """forward(batch: TrainView | TrainStereo) -> (total loss (), terms dict)."""

    def __init__(self, net: HandNet, hand_model: nn.Module, spec: StageSpec, mano_weights: ManoLossWeights,
                 stereo_weights: StereoLossWeights, channels_last: bool = False):
        super().__init__()
        self.net = net
        self.hand_model = hand_model
        self.spec = spec
        self.mano_weights = mano_weights
        self.stereo_weights = stereo_weights
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def _hand(self, pose: torch.Tensor, shape: torch.Tensor):
        with torch.autocast(pose.device.type, enabled=False):
            return self.hand_model(pose.float(), shape.float())

    def _img(self, t: torch.Tensor) -> torch.Tensor:
        return t.contiguous(memory_format=self.memory_format)

    def forward(self, batch: TrainView | TrainStereo):
        result = self._stereo(batch) if self.spec.stereo else self._mono(batch)
        return result.total, result.terms

    def _mono(self, b: TrainView) -> LossResult:
        seg = self.spec.loss == "segmentation"
        out = self.net(self._img(b.image), self._img(b.heatmap), self.spec.flow, segment=seg)
        if seg:
            if not bool(b.has_mask.all()):
                raise ValueError("segmentation stage: a sample without a mask reached the loss; use sources with masks")
            return segmentation_loss(out.seg_logits, b.mask)
        hand = self._hand(out.pose, out.shape)
        if self.spec.loss == "stereo":
            return stereo_loss(hand.verts_m, hand.keypoints_m, b.verts_m, b.keypoints_m, self.stereo_weights)
        return mano_loss(out.pose.float(), out.shape.float(), out.cam.float(), hand.keypoints_m, b.pose, b.shape,
                         b.keypoints_norm, self.mano_weights)

    def _stereo(self, b: TrainStereo) -> LossResult:
        images = torch.stack([b.left.image, b.right.image], 1)
        heat = torch.stack([b.left.heatmap, b.right.heatmap], 1)
        out = self.net.forward_stereo(images, heat, R_right_left=b.R_right_left)
        hand = self._hand(out.pose, out.shape)
        return stereo_loss(hand.verts_m, hand.keypoints_m, b.right.verts_m, b.right.keypoints_m, self.stereo_weights)
