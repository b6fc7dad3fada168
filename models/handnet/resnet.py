"""ResNet50 building blocks (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016), written here.

The bottleneck is the v1.5 variant (stride on the 3x3 conv, as in the thesis' "conv block" / "identity block",
Figure 4.3): 1x1 reduce -> 3x3 -> 1x1 expand (x4), BN after each conv, a projection shortcut (1x1 conv + BN)
when the shape changes. All tensors are (B, C, H, W) float feature maps (no units).
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Conv (no bias: BN follows) + BatchNorm, 'same' padding."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out))


class Bottleneck(nn.Module):
    """x: (B, c_in, H, W) -> (B, 4 planes, H / stride, W / stride)."""

    def __init__(self, c_in: int, planes: int, stride: int = 1, expansion: int = 4):
        super().__init__()
        c_out = planes * expansion
        self.reduce = conv_bn(c_in, planes, 1)
        self.spatial = conv_bn(planes, planes, 3, stride)
        self.expand = conv_bn(planes, c_out, 1)
        # Zero-init the last BN scale so each block starts as identity (Goyal et al. 2017): stabler early training.
        nn.init.zeros_(self.expand[1].weight)
        self.shortcut = conv_bn(c_in, c_out, 1, stride) if (stride != 1 or c_in != c_out) else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.reduce(x))
        y = self.relu(self.spatial(y))
        return self.relu(self.expand(y) + self.shortcut(x))


def make_layer(c_in: int, planes: int, blocks: int, stride: int, expansion: int = 4) -> nn.Sequential:
    """One ResNet layer: a (possibly strided) conv block then ``blocks - 1`` identity blocks."""
    layers = [Bottleneck(c_in, planes, stride, expansion)]
    layers += [Bottleneck(planes * expansion, planes, 1, expansion) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class Stem(nn.Module):
    """ResNet stem conv: (B, c_in, H, W) -> (B, c_out, H/2, W/2), 7x7 stride 2 + BN + ReLU (Table A.1 Down1)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = conv_bn(c_in, c_out, 7, 2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


def init_weights(module: nn.Module) -> None:
    """He-normal convs (fan-out, ReLU nets), unit BN (except zero-init bottleneck ends, set in Bottleneck)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
