"""HandNet: ResNet50 heads, SSMA fusion, U-Net decoder, MANO regressor, stereo fusion; ``build_handnet(cfg)``.

Import-light: the runner, losses and summary are imported from their modules.
"""

from models.handnet.config import HANDNET_PRESETS, HandNetConfig, HandNetConfigError, handnet_preset
from models.handnet.net import Flow, HandNet, HandNetOutput, StereoGeometry, StereoOutput, build_handnet

__all__ = [
    "HANDNET_PRESETS",
    "Flow",
    "HandNet",
    "HandNetConfig",
    "HandNetConfigError",
    "HandNetOutput",
    "StereoGeometry",
    "StereoOutput",
    "build_handnet",
    "handnet_preset",
]
