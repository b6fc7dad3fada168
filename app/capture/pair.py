"""The read loop every two-view source shares: a feed of (left, right) BGR images -> size check -> optional
rectification (maps built once, ``calibration.rectify``) -> RGB ``StereoFrame`` with consecutive frame ids.

A feed has ``next() -> (left (H, W, 3) uint8 BGR, right, t_ns) | None`` (None = end), ``dropped`` and
``close()``. Side-by-side ZED frames (app/capture/sbs.py) and two videos/cameras (app/capture/video.py) differ
only in their feeds.
"""

from __future__ import annotations

import numpy as np

from app.capture.base import ClosingMixin, bgr_to_rgb
from app.capture.errors import CaptureError
from app.types import CameraView, StereoCalibration, StereoFrame
from calibration.errors import CalibrationError
from calibration.rectify import Rectifier


def check_view_size(img: np.ndarray, view: CameraView, name: str, origin: str) -> None:
    """CaptureError unless ``img`` has the calibration's size for that view."""
    w, h = view.size_wh
    if img.shape[:2] != (h, w):
        raise CaptureError(
            f"source {origin!r}: the {name} image is {img.shape[1]}x{img.shape[0]} but the "
            f"calibration's views.{name}.size_wh is {w}x{h}; use the calibration made for "
            "these videos/cameras at this resolution"
        )


class PairSource(ClosingMixin):
    """Two views -> StereoFrame (RGB) in ``calibration`` (the rectified rig when ``rectify``, else the raw one);
    ``raw_calibration`` is always the raw rig."""

    def __init__(self, feed, raw: StereoCalibration, origin: str, *, rectify: bool, is_live: bool, fps: float,
                 frames_total: int | None):
        self._feed, self._origin, self.raw_calibration = feed, origin, raw
        try:
            self._rectifier = Rectifier(raw) if rectify else None
        except CalibrationError as exc:
            feed.close()
            raise CaptureError(f"source {origin!r}: {exc}") from exc
        self.calibration = self._rectifier.calibration if rectify else raw
        self.is_live, self.nominal_fps, self.frames_total = is_live, float(fps), frames_total
        self._next_id = 0

    @property
    def dropped_frames(self) -> int:
        return self._feed.dropped

    def read(self) -> StereoFrame | None:
        item = self._feed.next()
        if item is None:
            return None
        left, right, t_ns = item
        check_view_size(left, self.raw_calibration.left, "left", self._origin)
        check_view_size(right, self.raw_calibration.right, "right", self._origin)
        if self._rectifier is not None:
            left, right = self._rectifier.rectify_pair(left, right)
        frame = StereoFrame(self._next_id, t_ns, bgr_to_rgb(left), bgr_to_rgb(right), self.calibration)
        self._next_id += 1
        return frame

    def close(self) -> None:
        self._feed.close()
