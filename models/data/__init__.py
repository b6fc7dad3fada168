"""Training data readers: FreiHAND (official layout) and the synthetic stereo set (stand-in adapter).

Readers deliver ``RawView`` / ``RawStereoPair`` (models/data/types.py); augmentation lives in models/training.
"""

from models.data.types import MonoSource, RawStereoPair, RawView, StereoSource, StereoViews

__all__ = ["MonoSource", "RawStereoPair", "RawView", "StereoSource", "StereoViews"]
