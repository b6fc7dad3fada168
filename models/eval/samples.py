"""What flows between a dataset reader, a method and the metrics (frozen dataclasses, checked shapes)."""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    Optional mesh ground truth (synthetic sets): verts_cam_m: (V, 3) float64 mesh vertices, metres,
    first-camera frame, or None; masks: per view (H, W) bool hand masks (True = the hand's visible pixels) in
    the view's image size, or () when not annotated; is_left: the person's left hand, None when unknown.
    """

    sample_id: str
    images: tuple[np.ndarray, ...]
    uv_px: tuple[np.ndarray, ...]
    K: np.ndarray
    xyz_cam_m: np.ndarray | None = None
    calibration: StereoCalibration | None = None
    tight_crop: bool = False
    verts_cam_m: np.ndarray | None = None
    masks: tuple[np.ndarray, ...] = ()
    is_left: bool | None = None

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
        if self.verts_cam_m is not None:
            check_array("EvalSample.verts_cam_m", self.verts_cam_m, (None, 3), np.float64)
        if self.masks and len(self.masks) != len(self.images):
            raise ValueError(f"EvalSample {self.sample_id}: masks needs one (H, W) bool mask per image or none")
        for i, mask in enumerate(self.masks):
            check_array(f"EvalSample.masks[{i}]", mask, self.images[i].shape[:2], bool)

    @property
    def is_stereo(self) -> bool:
        return len(self.images) == 2

    def first_view(self) -> EvalSample:
        """The same sample seen by its first (left) view alone: the mono half of a stereo sample."""
        return replace(self, images=self.images[:1], uv_px=self.uv_px[:1], masks=self.masks[:1], calibration=None)


@dataclass(frozen=True)
class Prediction:
    """A method's output for one sample. uv_px: per view (21, 2) float64 pixels or None (hand not found);
    xyz_cam_m: (21, 3) float64 metres, first-camera frame (NaN rows = dropped keypoints) or None.

    Optional outputs of mesh methods (``fit``, ``fit+refine``):
    verts_cam_m: (V, 3) float64 mesh vertices, metres, first-camera frame, or None.
    silhouette_init / silhouette: (H, W) bool hard silhouettes in the first view's image of the initialiser's
    mesh and of the final (refined) mesh, or None; equal for a method without refinement.
    refine_diverged: the refinement's divergence guard fired (the initialiser's mesh came back).
    mediapipe_world_m: (21, 3) float64 metres, MediaPipe's world landmarks of the first view's detection
    (hand-centred, first-camera axes), the baseline that ``baseline_mediapipe_pa_mpjpe_mm`` scores, or None.
    mono: the same method on the first view alone (a stereo sample's mono counterpart), or None.
    """

    uv_px: tuple[np.ndarray | None, ...]
    xyz_cam_m: np.ndarray | None = None
    verts_cam_m: np.ndarray | None = None
    silhouette_init: np.ndarray | None = None
    silhouette: np.ndarray | None = None
    refine_diverged: bool = False
    mediapipe_world_m: np.ndarray | None = None
    mono: Prediction | None = None

    def __post_init__(self):
        if self.xyz_cam_m is not None:
            check_array("Prediction.xyz_cam_m", self.xyz_cam_m, (N_KEYPOINTS, 3), np.float64)
        if self.verts_cam_m is not None:
            check_array("Prediction.verts_cam_m", self.verts_cam_m, (None, 3), np.float64)
        for name in ("silhouette_init", "silhouette"):
            if getattr(self, name) is not None:
                check_array(f"Prediction.{name}", getattr(self, name), (None, None), bool)
        if self.mediapipe_world_m is not None:
            check_array("Prediction.mediapipe_world_m", self.mediapipe_world_m, (N_KEYPOINTS, 3), np.float64)
