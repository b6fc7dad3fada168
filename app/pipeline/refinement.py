"""Glue between detection, the segmentation target and the refiner (app/reconstruction): per hand and view,
the crop camera of the detection, the image crop, the fitted mesh's silhouette as seed, the segmentation mask
-> ``ViewTarget`` s for ``Refiner.refine(mesh, targets)``. With a HandNet checkpoint the network's own masks
(its U-Net decoder, over the same detection crops) replace the colour segmentation.

Crops are cut at ``size_px`` (the refiner's render size: no resampling there) through the detection's
crop_from_image affine rescaled with the pixel-centre convention u' = (u + 0.5) s - 0.5; a left hand's crop is
mirrored by its affine, so its crop camera has fx < 0 (app/detection/mirror.py) and mesh, image crop and mask
stay consistent. Segmentation keeps a colour model per (hand side, view), reset when that hand's track starts.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from app.detection.crop import apply_affine, crop_intrinsics, cut_crop
from app.types import HandMesh, HandObservation, StereoFrame

VIEWS = ("left", "right")


def rescale_affine(crop_from_image: np.ndarray, s: float) -> np.ndarray:
    """(2, 3) image -> crop affine of the same crop resized by s (pixel centres at integers:
    u' = (u + 0.5) s - 0.5)."""
    S = np.array([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5], [0.0, 0.0, 1.0]])
    return (S @ np.vstack([np.asarray(crop_from_image, np.float64), [0.0, 0.0, 1.0]]))[:2]


def resize_mask(mask: np.ndarray, size_px: int) -> np.ndarray:
    """(S, S) float probabilities over a crop -> (size_px, size_px) float32 in [0, 1] over the same crop (area
    resampling keeps the pixel-centre convention of ``rescale_affine``: u' = (u + 0.5) s - 0.5)."""
    m = np.asarray(mask, np.float32)
    if m.shape[0] == size_px:
        return np.clip(m, 0.0, 1.0)
    interp = cv2.INTER_AREA if size_px < m.shape[0] else cv2.INTER_LINEAR
    return np.clip(cv2.resize(m, (size_px, size_px), interpolation=interp), 0.0, 1.0).astype(np.float32)


class TargetBuilder:
    """``targets(mesh, obs, frame, new_track, masks=None) -> list[ViewTarget]`` for the views that saw the hand;
    ``colour_target`` / ``mask_target`` build one view's target (also used by models/eval)."""

    def __init__(self, seg_module, refine_module, size_px: int, crop_size_px: int):
        self.seg, self.ref, self.size_px, self.scale = seg_module, refine_module, size_px, size_px / crop_size_px
        self._segmenters: dict[tuple[bool, str], Callable] = {}

    def new_segmenter(self) -> Callable:
        """A colour segmentation target with a fresh colour model."""
        return self.seg.build_segmentation_target(self.seg.ColourSegmentationConfig())

    def _segmenter(self, is_left: bool, view: str, new_track: bool):
        key = (is_left, view)
        if new_track or key not in self._segmenters:
            self._segmenters[key] = self.new_segmenter()
        return self._segmenters[key]

    def _crop(self, det, cam) -> tuple[np.ndarray, np.ndarray]:
        """(A (2, 3) image -> render-size crop affine, K (3, 3) of that crop) for a detection seen by ``cam``
        (anything with K (3, 3) full-image pixels)."""
        A = rescale_affine(det.crop_from_image, self.scale)
        return A, crop_intrinsics(cam.K, A)

    def colour_target(self, mesh: HandMesh, det, cam, image: np.ndarray, segment: Callable):
        """One view's ViewTarget from the weightless colour segmentation of its crop, seeded by the mesh's
        silhouette and cut at the wrist. cam: K (3, 3) and T_cam_left (4, 4) of the view; image: its RGB frame."""
        A, K = self._crop(det, cam)
        seed = self.seg.mesh_silhouette_mask(mesh.verts_m, mesh.faces, K, cam.T_cam_left, self.size_px)
        mask = segment(cut_crop(image, A, self.size_px), seed)
        mask = self.seg.cut_at_wrist(mask, apply_affine(A, det.keypoints_px), seed)
        return self.ref.ViewTarget(np.asarray(mask, np.float32), K, cam.T_cam_left)

    def mask_target(self, mask: np.ndarray, det, cam):
        """One view's ViewTarget from HandNet's (S, S) mask over the detection crop, resized to the render size."""
        _, K = self._crop(det, cam)
        return self.ref.ViewTarget(resize_mask(mask, self.size_px), K, cam.T_cam_left)

    def targets(self, mesh: HandMesh, obs: HandObservation, frame: StereoFrame, new_track: bool,
                masks: tuple | None = None) -> list:
        """masks: HandNet's segmentation per seeing view (left first), (S, S) float32 probabilities over the
        detection crop, used as the targets; None: the colour segmentation of each crop."""
        seen = [v for v in VIEWS if getattr(obs, v) is not None]
        out = []
        for i, view in enumerate(seen):
            det, cam = getattr(obs, view), getattr(frame.calibration, view)
            if masks is not None:
                out.append(self.mask_target(masks[i], det, cam))
            else:
                segment = self._segmenter(obs.is_left, view, new_track)
                out.append(self.colour_target(mesh, det, cam, getattr(frame, view), segment))
        return out
