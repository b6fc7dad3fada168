"""ZED without the SDK: side-by-side frames from a UVC camera (``zed-uvc:``) or a video file (``sbs:``).

Both go through ``sbs_source``: check the frame shape against the ZED mode and split it into left/right, then
the shared pair loop (app/capture/pair.py) rectifies with maps built once from the factory ``SN<serial>.conf``
(``calibration.rectify``) and converts BGR -> RGB.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from app.capture.base import Pacer, file_time_ns, pacer_for
from app.capture.errors import CaptureError
from app.capture.latest import LatestFrameThread
from app.capture.pair import PairSource
from app.capture.uri import SourceURI
from app.types import StereoCalibration
from calibration.errors import CalibrationError
from calibration.zed_conf import ZedMode, mode_for_eye_size, read_zed_conf, zed_mode

CONF_HINT = (
    "give ?conf=SN<serial>.conf: the factory file from https://calib.stereolabs.com/?SN=<serial> "
    "(or /usr/local/zed/settings/ where the SDK was installed)"
)


class VideoFile:
    """Sequential reader of one video file through OpenCV's FFmpeg backend; images (H, W, 3) uint8 BGR."""

    def __init__(self, path: str | Path, origin: str):
        self.path = Path(path)
        if not self.path.is_file():
            raise CaptureError(f"source {origin!r}: video file {self.path} not found; check the path")
        self._cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            raise CaptureError(
                f"source {origin!r}: {self.path} is not a video OpenCV can decode; "
                "check the file or convert it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4)"
            )
        self.size_wh = (
            int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frames_total = count if count > 0 else None  # from the header; may be approximate
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if math.isfinite(fps) and fps > 0 else 30.0

    def read(self) -> np.ndarray | None:
        ok, img = self._cap.read()
        return img if ok else None

    def close(self) -> None:
        self._cap.release()


class FileFeed:
    """Images of a video file with file-clock timestamps (frame_id / fps), paced by ``pacer``."""

    dropped = 0

    def __init__(self, video: VideoFile, pacer: Pacer):
        self.video, self._pacer, self._index = video, pacer, 0

    def next(self) -> tuple[np.ndarray, int] | None:
        img = self.video.read()
        if img is None:
            return None
        t_ns = file_time_ns(self._index, self.video.fps)
        self._index += 1
        self._pacer.wait(t_ns)
        return img, t_ns

    def close(self) -> None:
        self.video.close()


class LiveFeed:
    """Newest image of an opened cv2.VideoCapture-like device, read by a latest-wins thread."""

    def __init__(self, cap, name: str):
        self._cap = cap
        self._thread = LatestFrameThread(self._grab, name)

    def _grab(self) -> np.ndarray | None:
        ok, img = self._cap.read()
        return img if ok else None

    @property
    def dropped(self) -> int:
        return self._thread.dropped

    def next(self) -> tuple[np.ndarray, int]:
        return self._thread.get()

    def close(self) -> None:
        self._thread.stop()
        self._cap.release()


def split_sbs(img: np.ndarray, eye_wh: tuple[int, int], origin: str) -> tuple[np.ndarray, np.ndarray]:
    """(H, 2W, C) side-by-side -> left, right (H, W, C) views; CaptureError if the shape is not the mode's."""
    w, h = eye_wh
    if img.ndim != 3 or img.shape[:2] != (h, 2 * w):
        got = f"{img.shape[1]}x{img.shape[0]}" if img.ndim >= 2 else str(img.shape)
        raise CaptureError(
            f"source {origin!r}: frame is {got} but the ZED mode needs {2 * w}x{h} side-by-side; "
            "pass the matching mode= (HD2K, HD1080, HD720, VGA) or check the camera/video"
        )
    return img[:, :w], img[:, w:]


class SideBySideFeed:
    """A feed of side-by-side frames as a feed of (left, right, t_ns) pairs (app/capture/pair.py)."""

    def __init__(self, feed, eye_wh: tuple[int, int], origin: str):
        self._feed, self._eye_wh, self._origin = feed, eye_wh, origin

    @property
    def dropped(self) -> int:
        return self._feed.dropped

    def next(self):
        item = self._feed.next()
        if item is None:
            return None
        img, t_ns = item
        left, right = split_sbs(img, self._eye_wh, self._origin)
        return left, right, t_ns

    def close(self) -> None:
        self._feed.close()


def sbs_source(feed, raw: StereoCalibration, origin: str, *, rectify: bool = True, is_live: bool, fps: float,
               frames_total: int | None) -> PairSource:
    """Side-by-side ZED frames -> StereoFrame (RGB): split per the raw rig's eye size, then the shared pair
    read loop (``calibration`` rectified when ``rectify``, ``raw_calibration`` the factory rig)."""
    return PairSource(SideBySideFeed(feed, raw.left.size_wh, origin), raw, origin, rectify=rectify, is_live=is_live,
                      fps=fps, frames_total=frames_total)


def _load_conf(uri: SourceURI, mode: ZedMode) -> StereoCalibration:
    conf = uri.require("conf", CONF_HINT)
    try:
        return read_zed_conf(conf, mode)
    except CalibrationError as exc:
        raise CaptureError(f"source {uri.text!r}: {exc}") from exc


def _mode(uri: SourceURI, default: str) -> ZedMode:
    try:
        return zed_mode(uri.params.get("mode") or default, f"source {uri.text!r}")
    except CalibrationError as exc:
        raise CaptureError(str(exc)) from exc


def open_sbs_file(uri: SourceURI) -> PairSource:
    """``sbs:FILE?conf=SN.conf[&mode=M][&rectify=1][&pace=fast|recorded]``: a side-by-side ZED video."""
    uri.check_params(("conf", "mode", "rectify", "pace"))
    if not uri.target:
        raise CaptureError(f"source {uri.text!r}: give the video file, e.g. sbs:session.mp4?conf=SN123.conf")
    pacer, rectify = pacer_for(uri), uri.flag("rectify", True)
    uri.require("conf", CONF_HINT)
    video = VideoFile(uri.target, uri.text)
    try:
        raw = _load_conf(uri, _sbs_mode(uri, video))
    except CaptureError:
        video.close()
        raise
    return sbs_source(FileFeed(video, pacer), raw, uri.text, rectify=rectify, is_live=False, fps=video.fps,
                     frames_total=video.frames_total)


def _sbs_mode(uri: SourceURI, video: VideoFile) -> ZedMode:
    """The ZED mode of a side-by-side video: from its frame size, checked against ``mode=`` when given."""
    w, h = video.size_wh
    mode = mode_for_eye_size((w // 2, h)) if w % 2 == 0 else None
    if "mode" in uri.params or mode is None:
        mode = _mode(uri, "HD720")
        if (w, h) != (2 * mode.size_wh[0], mode.size_wh[1]):
            raise CaptureError(
                f"source {uri.text!r}: {video.path} is {w}x{h} but a side-by-side ZED {mode.name} "
                f"video is {2 * mode.size_wh[0]}x{mode.size_wh[1]}; record in a ZED mode "
                "(HD2K, HD1080, HD720, VGA) or pass the matching mode="
            )
    return mode


def default_backend() -> int:
    return cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY


def open_zed_uvc(uri: SourceURI, capture_factory: Callable = cv2.VideoCapture) -> PairSource:
    """``zed-uvc:INDEX?conf=SN.conf[&mode=HD720][&fps=30][&rectify=1]``: a ZED as a plain UVC camera.
    ``capture_factory(index, backend)`` returns a cv2.VideoCapture-like object (tests pass a fake)."""
    uri.check_params(("conf", "mode", "fps", "rectify"))
    index = _index(uri) if uri.target else 0
    mode = _mode(uri, "HD720")
    fps = uri.number("fps", 30 if 30 in mode.fps_choices else mode.fps_choices[0], int)
    if fps not in mode.fps_choices:
        raise CaptureError(
            f"source {uri.text!r}: fps={fps} is not offered in {mode.name}; "
            f"use one of {list(mode.fps_choices)}"
        )
    raw = _load_conf(uri, mode)
    cap = _open_camera(capture_factory, index, mode, fps, uri.text)
    return sbs_source(
        LiveFeed(cap, f"zed-uvc:{index}"),
        raw,
        uri.text,
        rectify=uri.flag("rectify", True),
        is_live=True,
        fps=fps,
        frames_total=None,
    )


def _index(uri: SourceURI) -> int:
    try:
        return int(uri.target)
    except ValueError as exc:
        raise CaptureError(
            f"source {uri.text!r}: {uri.target!r} is not a camera index; write zed-uvc:0 "
            "(see `ls /dev/video*`)"
        ) from exc


def _open_camera(factory: Callable, index: int, mode: ZedMode, fps: int, origin: str):
    cap = factory(index, default_backend())
    if not cap.isOpened():
        raise CaptureError(
            f"source {origin!r}: cannot open camera {index}; check the ZED is plugged into a "
            "USB 3 port, its index (`ls /dev/video*`), and that no other program uses it"
        )
    w, h = mode.size_wh
    cap.set(cv2.CAP_PROP_FRAME_WIDTH, 2 * w)
    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
    cap.set(cv2.CAP_PROP_FPS, fps)
    got = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    if got != (2 * w, h):
        cap.release()
        raise CaptureError(
            f"source {origin!r}: camera {index} delivers {got[0]}x{got[1]}, not the {2 * w}x{h} "
            f"of mode {mode.name}; is it a ZED (ZED 2/Mini) on USB 3? try another mode="
        )
    return cap
