"""Pure geometry of the composed view: fitting the camera image into a panel (and moving K with it) and the
orbit camera of the 3D panel. OpenCV conventions throughout (pixel centres at integers, x right, y down)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def round_up16(n: float) -> int:
    """The smallest multiple of 16 >= n (video encoders want frame sizes in 16-pixel blocks)."""
    return int(-(-int(np.ceil(n)) // 16) * 16)


def panel_size(image_wh: tuple[int, int], panel_width_px: int) -> tuple[int, int]:
    """(width, height) of one panel for images of ``image_wh``: the width given, the image's aspect, rounded
    up to 16 pixels."""
    w, h = image_wh
    return panel_width_px, round_up16(panel_width_px * h / w)


@dataclass(frozen=True)
class Placement:
    """Image pixels -> panel pixels: u' = scale (u + 0.5) - 0.5 + offset_x (likewise v)."""

    scale: float
    offset_x: float
    offset_y: float

    def points(self, px: np.ndarray) -> np.ndarray:
        """(N, 2) image pixels -> (N, 2) panel pixels."""
        return (np.asarray(px, np.float64) + 0.5) * self.scale - 0.5 + (self.offset_x, self.offset_y)

    def K(self, K: np.ndarray) -> np.ndarray:
        """Intrinsics (3, 3) of the image -> intrinsics of the placed image in the panel."""
        out = np.asarray(K, np.float64).copy()
        out[:2, :] *= self.scale
        out[0, 2] += 0.5 * self.scale - 0.5 + self.offset_x
        out[1, 2] += 0.5 * self.scale - 0.5 + self.offset_y
        return out


def fit_placement(image_wh: tuple[int, int], panel_wh: tuple[int, int]) -> Placement:
    """Largest centred placement of the image inside the panel keeping its aspect (letterbox)."""
    (w, h), (pw, ph) = image_wh, panel_wh
    s = min(pw / w, ph / h)
    return Placement(s, round((pw - s * w) / 2), round((ph - s * h) / 2))


def place_image(image: np.ndarray, panel_wh: tuple[int, int], place: Placement,
                out: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8 -> (ph, pw, 3) uint8 panel with the image resized and letterboxed (black bars); written
    into ``out`` (a (ph, pw, 3) uint8 array or view) when given. An image placed at its own size is copied."""
    pw, ph = panel_wh
    h, w = image.shape[:2]
    sw, sh = min(pw, round(w * place.scale)), min(ph, round(h * place.scale))
    panel = np.empty((ph, pw, 3), np.uint8) if out is None else out
    x0, y0 = int(place.offset_x), int(place.offset_y)
    panel[:y0], panel[y0 + sh:], panel[y0:y0 + sh, :x0], panel[y0:y0 + sh, x0 + sw:] = 0, 0, 0, 0
    inside = panel[y0:y0 + sh, x0:x0 + sw]
    if (sw, sh) == (w, h):
        inside[:] = image
    else:
        inside[:] = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    return panel


@dataclass(frozen=True)
class Orbit:
    """A virtual camera orbiting ``target`` (metres, left-camera frame). yaw_deg turns about the camera's y
    axis, pitch_deg about its x axis; yaw = pitch = 0 looks along the left camera's own axis."""

    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    distance_m: float = 0.45

    def rotation(self) -> np.ndarray:
        """(3, 3) float64 rotation of left-camera directions into the virtual camera."""
        y, p = np.deg2rad(self.yaw_deg), np.deg2rad(self.pitch_deg)
        Ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
        Rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
        return Rx @ Ry

    def to_view(self, points_m: np.ndarray, target_m: np.ndarray) -> np.ndarray:
        """(N, 3) left-camera points -> (N, 3) float32 in the orbit camera's OpenCV frame."""
        p = (np.asarray(points_m, np.float64) - target_m) @ self.rotation().T
        return (p + (0.0, 0.0, self.distance_m)).astype(np.float32)


def orbit_K(panel_wh: tuple[int, int], fov_deg: float = 40.0) -> np.ndarray:
    """(3, 3) float64 pinhole intrinsics of the 3D panel: horizontal field of view ``fov_deg``, centred."""
    pw, ph = panel_wh
    f = 0.5 * pw / np.tan(np.deg2rad(fov_deg) / 2)
    return np.array([[f, 0, (pw - 1) / 2], [0, f, (ph - 1) / 2], [0, 0, 1.0]])
