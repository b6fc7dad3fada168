"""What the viewer draws, numpy only (no torch): a ViewerSnapshot plus the camera and the HUD status."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.types import ViewerSnapshot, check_array

VIEW_MODES = ("split", "camera", "3d")


@dataclass(frozen=True)
class HudStatus:
    """HUD text. fps: frames through the whole pipeline per second (recent); hands_seen: hands detected in
    this frame; recording: a session is being recorded, recorded_frames raw frames so far; dropped: stale
    frames skipped by all stages; notes: short lines about missing components."""

    fps: float = 0.0
    hands_seen: int = 0
    recording: bool = False
    recorded_frames: int = 0
    dropped: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ViewerInput:
    """One frame for the viewer.

    snapshot.image: (H, W, 3) uint8 RGB, the left view; snapshot.meshes in the left-camera frame (metres).
    K_px: (3, 3) float64 intrinsics of snapshot.image (pixels, OpenCV convention).
    keypoints_px: per hand seen, (21, 2) float32 pixels in snapshot.image (MediaPipe order).
    keypoints_cam_m: per hand with a stereo fix, (21, 3) float32 metres, left-camera frame (NaN rows allowed).
    uv_layouts: per mesh, (vt (T, 2) float32, ft (F, 3) int64) of its hand model, or None (no texture).
    textures: per mesh, the TextureMap of its hand side, or None (drawn in a skin tone).
    """

    snapshot: ViewerSnapshot
    K_px: np.ndarray
    keypoints_px: tuple[np.ndarray, ...] = ()
    keypoints_cam_m: tuple[np.ndarray, ...] = ()
    uv_layouts: tuple = ()
    textures: tuple = ()
    status: HudStatus = HudStatus()

    def __post_init__(self):
        check_array("ViewerInput.K_px", self.K_px, (3, 3), np.float64)
        check_array("ViewerInput.snapshot.image", self.snapshot.image, (None, None, 3), np.uint8)


class ViewerError(RuntimeError):
    """The view cannot be shown or written; the message names the file or display and the fix."""
