"""Any calibrated two-camera rig: two video files or two camera indices plus a calibration file.

``video:LEFT.mp4,RIGHT.mp4?calib=FILE[&rectify=0|1][&pace=fast|recorded]`` and ``video:0,1?calib=FILE``
(two numbers = two live cameras, each read by a latest-wins thread; their pairing is by arrival, not
hardware-synchronised). Unrectified rigs (converging ones included) emit the raw K, distortion and R|T with
``rectified=False``; ``rectify=1`` rectifies a horizontal rig once the maps are built.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from app.capture.base import file_time_ns, pacer_for
from app.capture.errors import CaptureError
from app.capture.pair import PairSource
from app.capture.sbs import LiveFeed, VideoFile, default_backend
from app.capture.uri import SourceURI
from app.types import CameraView, StereoCalibration
from calibration.errors import CalibrationError
from calibration.fileio import load_calibration

CALIB_HINT = (
    "give ?calib=FILE.json, a calibration made by `python -m calibration calibrate` "
    "or `python -m calibration import`"
)


class PairFileFeed:
    """Two video files read in lockstep; timestamps from the left file's frame rate."""

    dropped = 0

    def __init__(self, left: VideoFile, right: VideoFile, pacer):
        self.left, self.right, self._pacer, self._index = left, right, pacer, 0
        self.uneven_end = False  # True when one file ended before the other

    def next(self) -> tuple[np.ndarray, np.ndarray, int] | None:
        a, b = self.left.read(), self.right.read()
        if a is None or b is None:
            self.uneven_end = (a is None) != (b is None)
            return None
        t_ns = file_time_ns(self._index, self.left.fps)
        self._index += 1
        self._pacer.wait(t_ns)
        return a, b, t_ns

    def close(self) -> None:
        self.left.close()
        self.right.close()


class PairLiveFeed:
    """Two live cameras; each pair is the newest image of each, stamped with the left image's time."""

    def __init__(self, left: LiveFeed, right: LiveFeed):
        self.left, self.right = left, right

    @property
    def dropped(self) -> int:
        return self.left.dropped + self.right.dropped

    def next(self) -> tuple[np.ndarray, np.ndarray, int]:
        a, t_ns = self.left.next()
        b, _ = self.right.next()
        return a, b, t_ns

    def close(self) -> None:
        self.left.close()
        self.right.close()


def open_video_pair(uri: SourceURI, capture_factory: Callable = cv2.VideoCapture) -> PairSource:
    """Open ``video:L,R?calib=FILE``; ``capture_factory(index, backend)`` is for camera indices (tests)."""
    uri.check_params(("calib", "rectify", "pace"))
    parts = [p.strip() for p in uri.target.split(",")]
    if len(parts) != 2 or not all(parts):
        raise CaptureError(
            f"source {uri.text!r}: give two views, video:LEFT.mp4,RIGHT.mp4?calib=FILE "
            "or two camera indices video:0,1?calib=FILE"
        )
    try:
        raw = load_calibration(uri.require("calib", CALIB_HINT))
    except CalibrationError as exc:
        raise CaptureError(f"source {uri.text!r}: {exc}") from exc
    rectify = uri.flag("rectify", False)
    if all(p.isdigit() for p in parts):
        feed = PairLiveFeed(
            *(
                _live_camera(capture_factory, int(p), v, uri.text)
                for p, v in zip(parts, (raw.left, raw.right), strict=False)
            )
        )
        return PairSource(feed, raw, uri.text, rectify=rectify, is_live=True, fps=30.0, frames_total=None)
    return _file_pair(uri, parts, raw, rectify)


def _file_pair(uri: SourceURI, parts: list[str], raw: StereoCalibration, rectify: bool) -> PairSource:
    pacer = pacer_for(uri)
    videos: list[VideoFile] = []
    try:
        for part, view, name in zip(parts, (raw.left, raw.right), ("left", "right"), strict=True):
            videos.append(VideoFile(part, uri.text))
            _check_video_size(videos[-1], view, name, uri.text)
    except CaptureError:
        for video in videos:
            video.close()
        raise
    left, right = videos
    counts = [n for n in (left.frames_total, right.frames_total) if n is not None]
    total = min(counts) if len(counts) == 2 else None
    return PairSource(PairFileFeed(left, right, pacer), raw, uri.text, rectify=rectify, is_live=False,
                      fps=left.fps, frames_total=total)


def _check_video_size(video: VideoFile, view: CameraView, name: str, origin: str) -> None:
    if video.size_wh != view.size_wh:
        raise CaptureError(
            f"source {origin!r}: {video.path} is {video.size_wh[0]}x{video.size_wh[1]} but "
            f"the calibration's views.{name}.size_wh is {view.size_wh[0]}x{view.size_wh[1]}; "
            "use the calibration made for these videos"
        )


def _live_camera(factory: Callable, index: int, view: CameraView, origin: str) -> LiveFeed:
    cap = factory(index, default_backend())
    if not cap.isOpened():
        raise CaptureError(
            f"source {origin!r}: cannot open camera {index}; check it is connected "
            "(`ls /dev/video*`) and not used by another program"
        )
    cap.set(cv2.CAP_PROP_FRAME_WIDTH, view.size_wh[0])
    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, view.size_wh[1])
    return LiveFeed(cap, f"camera {index}")
