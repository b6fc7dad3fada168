"""The two encoder heads (thesis 4.2.1, Table A.1 ImgHead / KpHead) and the tail.

A head is the front of ResNet50 up to and including layer2 (the network is split at the third ResNet layer):
Down1 = stem conv (1/2), Down2 = max-pool + layer1 (1/4), Down3 = layer2 (1/8). The tail is layer3 (1/16) and
layer4 (1/32). For a 224 input: 112 / 56 / 28 and 14 / 7.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.handnet.config import BOTTLENECK_EXPANSION, HandNetConfig
from models.handnet.resnet import Stem, make_layer


@dataclass(frozen=True)
class HeadFeatures:
    """One head's feature maps, float (B, C, H, W): down1 (C_stem, S/2), down2 (C_1, S/4), down3 (C_2, S/8)."""

    down1: torch.Tensor
    down2: torch.Tensor
    down3: torch.Tensor


class EncoderHead(nn.Module):
    """x: (B, c_in, S, S) (RGB crop in [-1, 1], or the keypoint input of net.keypoint_input) -> HeadFeatures."""

    def __init__(self, c_in: int, cfg: HandNetConfig):
        super().__init__()
        self.down1 = Stem(c_in, cfg.stem_channels)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.down2 = make_layer(cfg.stem_channels, cfg.layer_planes(0), cfg.blocks[0], 1, BOTTLENECK_EXPANSION)
        self.down3 = make_layer(cfg.layer_channels(0), cfg.layer_planes(1), cfg.blocks[1], 2, BOTTLENECK_EXPANSION)

    def forward(self, x: torch.Tensor) -> HeadFeatures:
        d1 = self.down1(x)
        d2 = self.down2(self.pool(d1))
        return HeadFeatures(d1, d2, self.down3(d2))


@dataclass(frozen=True)
class TailFeatures:
    """down4: (B, C_3, S/16, S/16); down5: (B, C_4, S/32, S/32) - the base features of regressor and decoder."""

    down4: torch.Tensor
    down5: torch.Tensor


class Tail(nn.Module):
    """x: (B, C_2, S/8, S/8) fused (or single-head) features -> TailFeatures (Table A.1 Down4, Down5)."""

    def __init__(self, cfg: HandNetConfig):
        super().__init__()
        self.down4 = make_layer(cfg.layer_channels(1), cfg.layer_planes(2), cfg.blocks[2], 2, BOTTLENECK_EXPANSION)
        self.down5 = make_layer(cfg.layer_channels(2), cfg.layer_planes(3), cfg.blocks[3], 2, BOTTLENECK_EXPANSION)

    def forward(self, x: torch.Tensor) -> TailFeatures:
        d4 = self.down4(x)
        return TailFeatures(d4, self.down5(d4))
