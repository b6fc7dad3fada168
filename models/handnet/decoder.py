"""Segmentation decoder (thesis 4.2.2, Figure 4.4, Table A.1 "Segment"): a U-Net expanding path on the encoder.

Five up-blocks, each: transposed conv (2x2, stride 2) halving the channels, concatenation with a skip of the same
resolution, then 2 x (3x3 conv + BN + ReLU). No U-Net bottleneck between encoder and decoder (thesis: removed to
save parameters). A final 1x1 conv gives one channel of logits; the sigmoid lives in the caller / loss so training
can use the numerically stable BCE-with-logits (same value as BCE on the sigmoid).

Skips. The thesis takes "the first skip connections" from the image branch, and lets the decoder "benefit from the
fused keypoint modality through deeper level features". Table A.1's resolutions fix them: Up1 (S/16) concatenates
the tail's layer3 output (the only S/16 map, fused); Up2 .. Up4 (S/8, S/4, S/2) the image head's down3, down2,
down1; Up5 (S) the input RGB crop itself (the image head has no full-resolution map).
"""

from __future__ import annotations

import torch
from torch import nn

from models.handnet.config import HandNetConfig
from models.handnet.heads import HeadFeatures, TailFeatures


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class UpBlock(nn.Module):
    """x: (B, c_in, H, W), skip: (B, c_skip, 2H, 2W) -> (B, c_out, 2H, 2W)."""

    def __init__(self, c_in: int, c_skip: int, c_out: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_out, 2, stride=2)
        self.convs = nn.Sequential(conv_bn_relu(c_out + c_skip, c_out), conv_bn_relu(c_out, c_out))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.convs(torch.cat([self.up(x), skip], dim=1))


class SegmentationDecoder(nn.Module):
    """(image crop (B, 3, S, S), image HeadFeatures, TailFeatures) -> logits (B, 1, S, S)."""

    def __init__(self, cfg: HandNetConfig):
        super().__init__()
        dec = [cfg.decoder_channels(i) for i in range(5)]
        skips = [cfg.layer_channels(2), cfg.layer_channels(1), cfg.layer_channels(0), cfg.stem_channels,
                 cfg.image_channels]
        ins = [cfg.layer_channels(3)] + dec[:-1]
        self.ups = nn.ModuleList(UpBlock(i, s, o) for i, s, o in zip(ins, skips, dec, strict=True))
        self.out = nn.Conv2d(dec[-1], 1, 1)

    def forward(self, image: torch.Tensor, head: HeadFeatures, tail: TailFeatures) -> torch.Tensor:
        x = tail.down5
        for up, skip in zip(self.ups, (tail.down4, head.down3, head.down2, head.down1, image), strict=True):
            x = up(x, skip)
        return self.out(x)
