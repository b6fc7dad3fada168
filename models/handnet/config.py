"""HandNet configuration: one frozen dataclass and the two named presets (``full``, ``reduced``).

``full`` is the thesis architecture (appendix A.1, Table A.1): ResNet50 widths and depths (3, 4, 6, 3 bottleneck
blocks), regressor 2048 -> 2048 -> 512, U-Net decoder 1024 .. 64. ``reduced`` keeps every block and resolution
but scales the channel widths by 0.25 and uses one bottleneck per ResNet layer, for CPU experiments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

N_POSE = 48
N_SHAPE = 10
N_CAM = 3
N_KEYPOINTS = 21
HEATMAP_INPUTS = ("unit", "pm1")

# ResNet50 per-layer bottleneck widths before the x4 expansion (He et al. 2016, Table 1).
RESNET_PLANES = (64, 128, 256, 512)
BOTTLENECK_EXPANSION = 4
STEM_CHANNELS = 64
# Decoder up-block outputs of Table A.1 (Up1 .. Up5).
DECODER_CHANNELS = (1024, 512, 256, 128, 64)


class HandNetConfigError(ValueError):
    """A HandNet configuration value is out of range; the message names the field and the fix."""


def _scaled(channels: int, width: float) -> int:
    """Channel count times the width multiplier, at least 8 and a multiple of 4 (keeps SSMA's /8 integral)."""
    return max(8, int(round(channels * width / 4.0)) * 4)


@dataclass(frozen=True)
class HandNetConfig:
    """HandNet architecture.

    width: channel multiplier on every ResNet, fusion, decoder and regressor width (1.0 = the thesis).
    blocks: bottleneck blocks in ResNet layer1..layer4 (ResNet50 = 3, 4, 6, 3); layer1/2 live in both heads,
        layer3/4 in the tail.
    image_channels / keypoint_channels: input channels of the two heads (RGB 3, heatmaps 21).
    crop_size: input side in pixels; every block's output size follows from it (224 -> 112 .. 7).
    regressor_hidden: widths of the regressor's fully connected layers (thesis 4.2.3: 2048 and 512); the last
        one is the per-view feature the stereo head concatenates (2 x 512 = 1024 -> 48).
    ssma_reduction: SSMA bottleneck ratio (thesis 4.2.1: 2C / 8 = 128). ssma_kernel: SSMA conv kernel size.
    cam_scale_init: initial weak-perspective scale s (crop-normalised units per metre); the scale head
        predicts log(s / cam_scale_init) so s > 0 always (a positive s keeps the root in front of the camera).
    heatmap_input: how the keypoint head reads the detection's heatmaps (app/detection/heatmaps.py: [-1, 1],
        background -1, all zeros = "no keypoints"). 'pm1' (default, and every checkpoint written before this
        field existed): the [-1, 1] map as is. 'unit' (opt-in, under evaluation): (h + 1) / 2, i.e. background 0,
        peaks 1, and "no keypoints" stays all zeros (net.py ``keypoint_input`` says why it may train better).
    """

    width: float = 1.0
    blocks: tuple[int, int, int, int] = (3, 4, 6, 3)
    image_channels: int = 3
    keypoint_channels: int = N_KEYPOINTS
    crop_size: int = 224
    regressor_hidden: tuple[int, ...] = (2048, 512)
    ssma_reduction: int = 8
    ssma_kernel: int = 3
    cam_scale_init: float = 6.0
    heatmap_input: str = "pm1"

    def __post_init__(self):
        _check(self.width > 0, "width", f"must be > 0, got {self.width}")
        _check(len(self.blocks) == 4 and all(int(b) >= 1 for b in self.blocks), "blocks",
               f"needs 4 counts >= 1 (ResNet50: 3,4,6,3), got {self.blocks}")
        _check(self.crop_size % 32 == 0 and self.crop_size >= 64, "crop_size",
               f"must be a multiple of 32 (five stride-2 stages), got {self.crop_size}")
        _check(len(self.regressor_hidden) >= 1 and min(self.regressor_hidden) >= 1, "regressor_hidden",
               f"needs at least one positive width, got {self.regressor_hidden}")
        _check(self.ssma_kernel % 2 == 1, "ssma_kernel", f"must be odd, got {self.ssma_kernel}")
        _check(self.cam_scale_init > 0, "cam_scale_init", f"must be > 0, got {self.cam_scale_init}")
        _check(self.image_channels >= 1 and self.keypoint_channels >= 1, "image_channels/keypoint_channels",
               "must be >= 1")
        _check(self.heatmap_input in HEATMAP_INPUTS, "heatmap_input",
               f"must be one of {HEATMAP_INPUTS}, got {self.heatmap_input!r}")

    @property
    def stem_channels(self) -> int:
        return _scaled(STEM_CHANNELS, self.width)

    def layer_channels(self, i: int) -> int:
        """Output channels of ResNet layer i (0-based: 256, 512, 1024, 2048 at width 1)."""
        return self.layer_planes(i) * BOTTLENECK_EXPANSION

    def layer_planes(self, i: int) -> int:
        return _scaled(RESNET_PLANES[i], self.width)

    def decoder_channels(self, i: int) -> int:
        return _scaled(DECODER_CHANNELS[i], self.width)

    @property
    def feature_dim(self) -> int:
        """Per-view regressor feature size (512 in the thesis); the stereo head sees 2 x this."""
        return int(self.regressor_hidden[-1])

    def to_dict(self) -> dict:
        """Plain-Python dict (tuples as lists) for checkpoints and JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> HandNetConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them. A dict without ``heatmap_input``
        (written before the field existed) describes a network trained on the [-1, 1] heatmaps: 'pm1'."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise HandNetConfigError(f"HandNetConfig: unknown keys {unknown}; known keys: {sorted(names)}")
        tuples = {"blocks", "regressor_hidden"}
        data = {"heatmap_input": "pm1", **data}
        return cls(**{k: tuple(v) if k in tuples else v for k, v in data.items()})


def _check(ok: bool, name: str, why: str) -> None:
    if not ok:
        raise HandNetConfigError(f"HandNetConfig.{name} {why}")


HANDNET_PRESETS = {
    "full": HandNetConfig(),
    "reduced": HandNetConfig(width=0.25, blocks=(1, 1, 1, 1), regressor_hidden=(256, 128)),
}


def handnet_preset(name: str) -> HandNetConfig:
    """A named HandNetConfig ('full' = thesis, 'reduced' = CPU experiments)."""
    if name not in HANDNET_PRESETS:
        raise HandNetConfigError(f"unknown HandNet preset {name!r}; use one of {sorted(HANDNET_PRESETS)}")
    return HANDNET_PRESETS[name]
