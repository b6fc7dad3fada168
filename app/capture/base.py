"""The one interface every frame source implements, and small helpers they share.

Timestamps (``StereoFrame.t_capture_ns``): live sources use ``time.monotonic_ns()`` at capture (the ZED SDK's
image timestamp converted to the monotonic clock); file sources use the file's own clock: recordings their
recorded monotonic ns, SVO files the image timestamp minus the first one, plain videos
``frame_id * 1e9 / fps``.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from app.capture.errors import CaptureError
from app.capture.uri import SourceURI
from app.types import StereoCalibration, StereoFrame


@runtime_checkable
class FrameSource(Protocol):
    """A stereo source. ``read()`` returns the next frame (frame_id counting from 0) or None at the end of a
    file; live sources block until a new frame arrives. ``calibration`` describes the emitted images."""

    calibration: StereoCalibration
    frames_total: int | None  # None for live sources (and files whose length is unknown)
    nominal_fps: float
    is_live: bool

    @property
    def dropped_frames(self) -> int: ...

    def read(self) -> StereoFrame | None: ...

    def close(self) -> None: ...

    def __enter__(self) -> FrameSource: ...

    def __exit__(self, *exc) -> None: ...


class ClosingMixin:
    """Context-manager support for classes with ``close()``."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Pacer:
    """Sleeps so file frames come out at their recorded pace (``pace=recorded``) or not at all (``fast``)."""

    def __init__(self, mode: str, origin: str):
        if mode not in ("fast", "recorded"):
            raise CaptureError(f"source {origin!r}: pace={mode!r} is unknown; use pace=fast or pace=recorded")
        self.enabled = mode == "recorded"
        self._first: tuple[int, int] | None = None  # (file t_ns, monotonic ns) of the first frame

    def wait(self, t_file_ns: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic_ns()
        if self._first is None:
            self._first = (t_file_ns, now)
            return
        due = self._first[1] + (t_file_ns - self._first[0])
        if due > now:
            time.sleep((due - now) / 1e9)


def pacer_for(uri: SourceURI) -> Pacer:
    return Pacer(uri.params.get("pace", "fast") or "fast", uri.text)


def bgr_to_rgb(img: np.ndarray) -> np.ndarray:
    """(H, W, 3|4) uint8 BGR(A) -> contiguous (H, W, 3) uint8 RGB; (H, W) grey is expanded."""
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    code = cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(img, code)


def file_time_ns(frame_id: int, fps: float) -> int:
    """The timestamp of frame ``frame_id`` of a constant-rate video: frame_id / fps seconds, in ns."""
    return int(round(frame_id * 1e9 / fps))
