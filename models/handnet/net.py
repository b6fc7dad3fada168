"""HandNet (thesis chapter 4.2-4.3, appendix A.1): two encoder heads, SSMA fusion, ResNet tail, MANO regressor,
U-Net segmentation decoder and the stereo fusion head.

Inputs per view: image (B, 3, S, S) float RGB crop in [-1, 1]; heatmap (B, 21, S, S) float in [-1, 1] (all zeros
= "no keypoints"), the detection's convention (app/detection/heatmaps.py); the keypoint head reads it through
``keypoint_input`` (HandNetConfig.heatmap_input). The net is right-hand only: left hands arrive mirrored
(app/detection/mirror.py).
Information flows (thesis Table 4.1): ``image`` (image head -> tail), ``keypoint`` (keypoint head -> tail),
``fused`` (both heads -> SSMA -> tail). Submodules, the units the training stages freeze and train:
image_head, keypoint_head, fusion, tail, regressor, decoder, stereo.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import torch
from torch import nn

from models.handnet.config import HandNetConfig
from models.handnet.decoder import SegmentationDecoder
from models.handnet.fusion import SSMAFusion, StereoHead, fuse_pose, left_camera_in_right_view
from models.handnet.heads import EncoderHead, Tail
from models.handnet.regressor import ManoRegressor
from models.handnet.resnet import init_weights

MODULE_GROUPS = ("image_head", "keypoint_head", "fusion", "tail", "regressor", "decoder", "stereo")


class Flow(str, Enum):
    """Which heads feed the tail (thesis Table 4.1)."""

    IMAGE = "image"
    KEYPOINT = "keypoint"
    FUSED = "fused"


@dataclass(frozen=True)
class HandNetOutput:
    """One view's prediction (B = batch).

    pose: (B, 48) axis-angle radians, relative to the flat hand, global rotation in the crop camera frame;
    shape: (B, 10) betas; cam: (B, 3) weak perspective (tx, ty crop-normalised, s > 0 per metre);
    features: (B, F) regressor features (F = 512 at full width); seg_logits: (B, 1, S, S) logits or None.
    """

    pose: torch.Tensor
    shape: torch.Tensor
    cam: torch.Tensor
    features: torch.Tensor
    seg_logits: torch.Tensor | None = None

    @property
    def seg(self) -> torch.Tensor | None:
        """(B, 1, S, S) hand probability in [0, 1], or None."""
        return None if self.seg_logits is None else torch.sigmoid(self.seg_logits)


@dataclass(frozen=True)
class StereoGeometry:
    """What xi needs to move the left camera into the right crop (fusion.left_camera_in_right_view).

    box_left, box_right: (B, 3) (x0, y0, side) pixels of each crop in its "full image"; K_left, K_right: (B, 3, 3)
    pixels, that image's intrinsics; T_right_left: (B, 4, 4) metres, left camera frame -> right camera frame.
    """

    box_left: torch.Tensor
    box_right: torch.Tensor
    K_left: torch.Tensor
    K_right: torch.Tensor
    T_right_left: torch.Tensor


@dataclass(frozen=True)
class StereoOutput:
    """Both views' predictions and the fused right-view hand: weights (B, 48) in (0, 1); pose (B, 48);
    shape (B, 10); cam (B, 3) right-crop weak perspective (the right view's own camera when no geometry)."""

    left: HandNetOutput
    right: HandNetOutput
    weights: torch.Tensor
    pose: torch.Tensor
    shape: torch.Tensor
    cam: torch.Tensor


def keypoint_input(heatmap: torch.Tensor, mode: str = "pm1") -> torch.Tensor:
    """The keypoint head's input from (B, 21, S, S) heatmaps in [-1, 1] (background -1, all zeros = "no keypoints").

    'unit': (h + 1) / 2 in [0, 1] (background 0, stencil peaks 1), and a sample whose heatmap is all zeros ("no
    keypoints") stays all zeros, now the same as "no joint anywhere". 'pm1': unchanged.
    Why 'unit': with a -1 background the first conv's output mean is -sum(w) per channel, which moves with every
    weight update by far more than its spatial variance (the Gaussians cover ~5 % of the crop), so batch norm's
    running statistics cannot follow it (eval-mode predictions break), and the 30 % all-zero heatmaps of training
    put a second, constant input level into each batch that dominates the batch statistics (the joints' signal is
    normalised away). A hypothesis from short CPU runs in session 3, not yet shown by a full training run.
    """
    if mode == "pm1":
        return heatmap
    none = (heatmap == 0).flatten(1).all(dim=1)
    return torch.where(none[:, None, None, None], torch.zeros_like(heatmap), (heatmap + 1) / 2)


class HandNet(nn.Module):
    def __init__(self, cfg: HandNetConfig):
        super().__init__()
        self.cfg = cfg
        self.image_head = EncoderHead(cfg.image_channels, cfg)
        self.keypoint_head = EncoderHead(cfg.keypoint_channels, cfg)
        self.fusion = SSMAFusion(cfg)
        self.tail = Tail(cfg)
        self.regressor = ManoRegressor(cfg)
        self.decoder = SegmentationDecoder(cfg)
        self.stereo = StereoHead(cfg)
        init_weights(self)

    def forward(self, image: torch.Tensor | None, heatmap: torch.Tensor | None, flow: Flow | str = Flow.FUSED,
                segment: bool = False) -> HandNetOutput:
        """One view (or a batch of views). ``heatmap`` None in the fused flow means "no keypoints" (zeros)."""
        flow = Flow(flow)
        img_feats = self.image_head(image) if flow != Flow.KEYPOINT else None
        if flow == Flow.IMAGE:
            x = img_feats.down3
        else:
            if heatmap is None:
                heatmap = image.new_zeros(image.shape[0], self.cfg.keypoint_channels, *image.shape[2:])
            kp = self.keypoint_head(keypoint_input(heatmap, self.cfg.heatmap_input)).down3
            x = kp if flow == Flow.KEYPOINT else self.fusion(img_feats.down3, kp)
        tail = self.tail(x)
        reg = self.regressor(tail.down5)
        seg = None
        if segment:
            if img_feats is None:
                raise ValueError("segmentation needs the image head: use flow 'image' or 'fused', not 'keypoint'")
            seg = self.decoder(image, img_feats, tail)
        return HandNetOutput(reg.pose, reg.shape, reg.cam, reg.features, seg)

    def forward_stereo(self, images: torch.Tensor, heatmaps: torch.Tensor | None, segment: bool = False,
                       R_right_left: torch.Tensor | None = None,
                       geometry: StereoGeometry | None = None) -> StereoOutput:
        """Both views in one batched pass. images: (B, 2, 3, S, S), view 0 = left, 1 = right; heatmaps:
        (B, 2, 21, S, S) or None. The fused hand is expressed in the right view (thesis 4.3); see fuse_views."""
        b = images.shape[0]
        flat_hm = None if heatmaps is None else heatmaps.flatten(0, 1)
        out = self.forward(images.flatten(0, 1), flat_hm, Flow.FUSED, segment)
        left, right = (_take_view(out, b, v) for v in (0, 1))
        return self.fuse_views(left, right, R_right_left, geometry)

    def fuse_views(self, left: HandNetOutput, right: HandNetOutput, R_right_left: torch.Tensor | None = None,
                   geometry: StereoGeometry | None = None) -> StereoOutput:
        """Stereo fusion of two views' predictions (thesis 4.3).

        R_right_left: (B, 3, 3) rotation from the left crop camera frame into the right one, applied to the left
        global rotation before blending (None = identity, the thesis' rectified-rig assumption). geometry: for
        the camera merge c_right = (c_right + xi(c_left)) / 2; None keeps the right view's own camera."""
        w = self.stereo(right.features, left.features)
        pose = fuse_pose(w, right.pose, left.pose, R_right_left)
        shape = (right.shape + left.shape) / 2
        cam = right.cam
        if geometry is not None:
            cam_l = left_camera_in_right_view(left.cam.float(), geometry.box_left, geometry.box_right,
                                              geometry.K_left, geometry.K_right, geometry.T_right_left,
                                              self.cfg.crop_size)
            cam = (right.cam + cam_l.to(right.cam.dtype)) / 2
        return StereoOutput(left, right, w, pose, shape, cam)


def _take_view(out: HandNetOutput, b: int, view: int) -> HandNetOutput:
    """Rows of view ``view`` from a (B * 2)-row output whose rows alternate left, right."""

    def pick(t):
        return None if t is None else t.unflatten(0, (b, 2))[:, view]

    return HandNetOutput(pick(out.pose), pick(out.shape), pick(out.cam), pick(out.features), pick(out.seg_logits))


def build_handnet(cfg: HandNetConfig) -> HandNet:
    """A freshly initialised HandNet for ``cfg`` (He-initialised convs, identity-start bottlenecks)."""
    return HandNet(cfg)
