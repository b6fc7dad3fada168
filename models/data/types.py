"""Raw training samples as data sets deliver them, before augmentation (models/training/augmentation.py).

A raw view is one calibrated image of one right hand with its labels in that camera's frame; a stereo pair is two
views of the same hand through a rig. Readers (FreiHAND, the synthetic stereo set) only produce these; everything
network-specific (crops, heatmaps, tensors) happens in augmentation, so a new data set only needs a reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from app.types import N_KEYPOINTS, N_POSE, N_SHAPE, check_array


@dataclass(frozen=True)
class RawView:
    """One right hand seen by one pinhole camera (OpenCV frame: x right, y down, z forward).

    image: (H, W, 3) uint8 RGB. mask: (H, W) uint8, 1 = hand (forearm excluded), 0 = not, or None if unknown.
    K: (3, 3) float64 intrinsics, pixels (pixel centres at integers), no distortion.
    keypoints_m: (21, 3) float32 metres, camera frame, MediaPipe order.
    verts_m: (V, 3) float32 metres, camera frame, or None when the reader skips vertices.
    pose: (48,) float32 axis-angle radians relative to the flat hand (3 global, in this camera frame, + 15 x 3
    joints in MANO order). shape: (10,) float32 betas.
    """

    image: np.ndarray
    mask: np.ndarray | None
    K: np.ndarray
    keypoints_m: np.ndarray
    verts_m: np.ndarray | None
    pose: np.ndarray
    shape: np.ndarray

    def __post_init__(self):
        check_array("RawView.image", self.image, (None, None, 3), np.uint8)
        h, w = self.image.shape[:2]
        if self.mask is not None:
            check_array("RawView.mask", self.mask, (h, w), np.uint8)
        check_array("RawView.K", self.K, (3, 3), np.float64)
        check_array("RawView.keypoints_m", self.keypoints_m, (N_KEYPOINTS, 3), np.float32)
        if self.verts_m is not None:
            check_array("RawView.verts_m", self.verts_m, (None, 3), np.float32)
        check_array("RawView.pose", self.pose, (N_POSE,), np.float32)
        check_array("RawView.shape", self.shape, (N_SHAPE,), np.float32)


@dataclass(frozen=True)
class RawStereoPair:
    """The same hand in both cameras of a rig. T_right_left: (4, 4) float64, metres, maps left-camera points into
    the right camera (rectified rig: identity rotation, translation (-baseline, 0, 0))."""

    left: RawView
    right: RawView
    T_right_left: np.ndarray

    def __post_init__(self):
        check_array("RawStereoPair.T_right_left", self.T_right_left, (4, 4), np.float64)


class MonoSource(Protocol):
    """A readable set of single views (FreiHAND, or each view of a stereo set)."""

    def __len__(self) -> int: ...

    def view(self, index: int) -> RawView: ...


class StereoSource(Protocol):
    """A readable set of stereo pairs (the synthetic stereo set)."""

    def __len__(self) -> int: ...

    def pair(self, index: int) -> RawStereoPair: ...


class StereoViews:
    """A StereoSource read as a MonoSource of 2 N views: index 2 i = left view of pair i, 2 i + 1 = right."""

    def __init__(self, source: StereoSource):
        self.source = source

    def __len__(self) -> int:
        return 2 * len(self.source)

    def view(self, index: int) -> RawView:
        pair = self.source.pair(index // 2)
        return pair.right if index % 2 else pair.left
