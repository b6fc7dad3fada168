"""What flows between a dataset reader, a method and the metrics (frozen dataclasses, checked shapes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.types import N_KEYPOINTS, StereoCalibration, check_array


@dataclass(frozen=True)
class EvalSample:
    """One annotated sample, one hand.

    images: one (mono) or two (left, right) views, (H, W, 3) uint8 RGB.
    uv_px: per view (21, 2) float64 ground-truth pixels (pixel centres at integers), MediaPipe order.
    K: (3, 3) float64 intrinsics of the first view, pixels.
    xyz_cam_m: (21, 3) float64 ground-truth joints, metres, first-camera frame; None when not annotated.
    calibration: the rig for stereo samples, None for mono.
    tight_crop: True when the image is a tight crop around the hand (MediaPipe's palm detector then
    needs a margin, see methods.pad_image).
    """

    sample_id: str
    images: tuple[np.ndarray, ...]
    uv_px: tuple[np.ndarray, ...]
    K: np.ndarray
    xyz_cam_m: np.ndarray | None = None
    calibration: StereoCalibration | None = None
    tight_crop: bool = False

    def __post_init__(self):
        if len(self.images) not in (1, 2) or len(self.uv_px) != len(self.images):
            raise ValueError(f"EvalSample {self.sample_id}: need 1 or 2 images and one uv_px per image")
        for i, (img, uv) in enumerate(zip(self.images, self.uv_px, strict=True)):
            check_array(f"EvalSample.images[{i}]", img, (None, None, 3), np.uint8)
            check_array(f"EvalSample.uv_px[{i}]", uv, (N_KEYPOINTS, 2), np.float64)
        check_array("EvalSample.K", self.K, (3, 3), np.float64)
        if self.xyz_cam_m is not None:
            check_array("EvalSample.xyz_cam_m", self.xyz_cam_m, (N_KEYPOINTS, 3), np.float64)
        if len(self.images) == 2 and self.calibration is None:
            raise ValueError(f"EvalSample {self.sample_id}: a stereo sample needs its calibration")

    @property
    def is_stereo(self) -> bool:
        return len(self.images) == 2


@dataclass(frozen=True)
class Prediction:
    """A method's output for one sample. uv_px: per view (21, 2) float64 pixels or None (hand not found);
    xyz_cam_m: (21, 3) float64 metres, first-camera frame (NaN rows = dropped keypoints) or None."""

    uv_px: tuple[np.ndarray | None, ...]
    xyz_cam_m: np.ndarray | None = None
