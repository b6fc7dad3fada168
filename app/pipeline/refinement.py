"""Glue between detection, the segmentation target and the refiner (app/reconstruction): per hand and view,
the crop camera of the detection, the image crop, the fitted mesh's silhouette as seed, the segmentation mask
-> ``ViewTarget`` s for ``Refiner.refine(mesh, targets)``.

Crops are cut at ``size_px`` (the refiner's render size: no resampling there) through the detection's
crop_from_image affine rescaled with the pixel-centre convention u' = (u + 0.5) s - 0.5; a left hand's crop is
mirrored by its affine, so its crop camera has fx < 0 (app/detection/mirror.py) and mesh, image crop and mask
stay consistent. Segmentation keeps a colour model per (hand side, view), reset when that hand's track starts.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from app.detection.crop import apply_affine, crop_intrinsics, cut_crop
from app.types import HandMesh, HandObservation, StereoFrame

VIEWS = ("left", "right")


def rescale_affine(crop_from_image: np.ndarray, s: float) -> np.ndarray:
    """(2, 3) image -> crop affine of a crop resized by s (pixel centres at integers)."""
    S = np.array([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5], [0.0, 0.0, 1.0]])
    return (S @ np.vstack([np.asarray(crop_from_image, np.float64), [0.0, 0.0, 1.0]]))[:2]


class TargetBuilder:
    """``targets(mesh, obs, frame, new_track) -> list[ViewTarget]`` for the views that saw the hand."""

    def __init__(self, seg_module, refine_module, size_px: int, crop_size_px: int):
        self.seg, self.ref, self.size_px, self.scale = seg_module, refine_module, size_px, size_px / crop_size_px
        self._segmenters: dict[tuple[bool, str], Callable] = {}

    def _segmenter(self, is_left: bool, view: str, new_track: bool):
        key = (is_left, view)
        if new_track or key not in self._segmenters:
            self._segmenters[key] = self.seg.build_segmentation_target(self.seg.ColourSegmentationConfig())
        return self._segmenters[key]

    def targets(self, mesh: HandMesh, obs: HandObservation, frame: StereoFrame, new_track: bool) -> list:
        out = []
        for view in VIEWS:
            det = getattr(obs, view)
            if det is None:
                continue
            cam, image = getattr(frame.calibration, view), getattr(frame, view)
            A = rescale_affine(det.crop_from_image, self.scale)
            K = crop_intrinsics(cam.K, A)
            seed = self.seg.mesh_silhouette_mask(mesh.verts_m, mesh.faces, K, cam.T_cam_left, self.size_px)
            mask = self._segmenter(obs.is_left, view, new_track)(cut_crop(image, A, self.size_px), seed)
            mask = self.seg.cut_at_wrist(mask, apply_affine(A, det.keypoints_px), seed)
            out.append(self.ref.ViewTarget(np.asarray(mask, np.float32), K, cam.T_cam_left))
        return out
