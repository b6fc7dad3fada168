"""ZED through the Stereolabs SDK (``zed[:SERIAL]``, ``svo:FILE``); ``pyzed.sl`` is imported lazily.

Frames are the SDK's rectified views (``retrieve_image(VIEW.LEFT/RIGHT)``, BGRA) converted to RGB, which
copies them out of the SDK buffer that the next ``retrieve_image`` reuses. Depth is off
(``DEPTH_MODE.NONE``: the 5.x default is a GPU-heavy neural mode). The emitted calibration is the rectified
rig from ``camera_configuration.calibration_parameters`` (SDK 4.x/5.x; ``calibration_parameters`` in 3.x),
units set to metres, baseline ``|get_camera_baseline()|`` (3.x: ``|T[0]|``). Timestamps: the image timestamp
(``TIME_REFERENCE.IMAGE``, host wall clock) moved onto ``time.monotonic_ns`` for a camera, and the time
since the first frame for an SVO file. A slow consumer makes the SDK skip frames itself; their count
(``get_frame_dropped_count``) is ``dropped_frames``.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import numpy as np

from app.capture.base import ClosingMixin, bgr_to_rgb, pacer_for
from app.capture.errors import CaptureError
from app.capture.uri import SourceURI
from app.types import StereoCalibration, StereoFrame
from calibration.rig import make_stereo

INSTALL_HINT = (
    "the ZED SDK's Python API (pyzed) is not installed in this environment: install the ZED SDK "
    "(https://www.stereolabs.com/developers/release) and run its get_python_api.py with this "
    "venv's python; without the SDK use zed-uvc:0?conf=SN<serial>.conf (factory calibration from "
    "https://calib.stereolabs.com/?SN=<serial>)"
)

# SDK error name -> what to do about it.
ERROR_HINTS = {
    "CAMERA_NOT_DETECTED": "no ZED found: check the USB 3 cable and port (`lsusb | grep 2b03`), the serial",
    "CAMERA_DETECTION_ISSUE": "the camera was seen but not opened: replug it into a USB 3 port",
    "LOW_USB_BANDWIDTH": "not enough USB bandwidth: use a USB 3 port on the computer or a lower mode=",
    "INVALID_RESOLUTION": "this camera does not offer that mode=; try HD720",
    "INVALID_SVO_FILE": "the SVO file cannot be read: check the path and that it is not damaged",
    "SVO_UNSUPPORTED_COMPRESSION": "the SVO uses a compression this SDK/GPU cannot decode",
    "CALIBRATION_FILE_NOT_AVAILABLE": "the SDK needs the factory calibration: go online once or copy "
    "SN<serial>.conf into /usr/local/zed/settings/",
    "INVALID_CALIBRATION_FILE": "the factory calibration is damaged: delete it from /usr/local/zed/settings/ "
    "and let the SDK download it again",
    "NO_GPU_COMPATIBLE": "the SDK needs an NVIDIA GPU with CUDA; without one use zed-uvc:0?conf=SN<sn>.conf",
    "CUDA_ERROR": "CUDA failed: check the NVIDIA driver; without a GPU use zed-uvc:0?conf=SN<serial>.conf",
    "CORRUPTED_SDK_INSTALLATION": "reinstall the ZED SDK",
    "CAMERA_REBOOTING": "the camera is rebooting; try again in a few seconds",
}


def import_sl(origin: str):
    """The ``pyzed.sl`` module, or CaptureError explaining how to install it (and the SDK-free source)."""
    try:
        return importlib.import_module("pyzed.sl")
    except ImportError as exc:
        raise CaptureError(f"source {origin!r}: {INSTALL_HINT}") from exc


def error_name(err) -> str:
    """The ERROR_CODE's name (``CAMERA_NOT_DETECTED``), whatever the SDK version's enum looks like."""
    name = getattr(err, "name", None) or str(err)
    return str(name).split(".")[-1].strip().upper().replace(" ", "_")


def sdk_error(err, what: str, origin: str) -> CaptureError:
    name = error_name(err)
    hint = ERROR_HINTS.get(name, "see the ZED SDK documentation for this error code")
    return CaptureError(f"source {origin!r}: {what} failed with {name}: {hint}")


def _camera_config(info):
    """SDK 4.x/5.x keep resolution, fps and calibration under ``camera_configuration``; 3.x on ``info``."""
    return getattr(info, "camera_configuration", info)


def _baseline_m(params, origin: str) -> float:
    if hasattr(params, "get_camera_baseline"):
        b = params.get_camera_baseline()
    elif hasattr(params, "stereo_transform"):
        b = params.stereo_transform.get_translation().get()[0]
    else:  # SDK 3.x
        b = params.T[0]
    b = abs(float(b))
    if not 0.01 < b < 1.0:
        raise CaptureError(
            f"source {origin!r}: the SDK reports a baseline of {b} (expected metres, 0.01-1); "
            "check the ZED SDK installation and its coordinate units"
        )
    return b


def _K(cam) -> np.ndarray:
    return np.array([[cam.fx, 0.0, cam.cx], [0.0, cam.fy, cam.cy], [0.0, 0.0, 1.0]])


def calibration_from_sdk(info, origin: str) -> StereoCalibration:
    """The rectified rig the SDK's rectified images are in (zero distortion, right at +baseline x)."""
    conf = _camera_config(info)
    params = conf.calibration_parameters
    res = getattr(conf, "resolution", None) or info.camera_resolution
    size = (int(res.width), int(res.height))
    serial = getattr(info, "serial_number", "")
    return make_stereo(
        _K(params.left_cam),
        np.zeros(5),
        _K(params.right_cam),
        np.zeros(5),
        np.eye(3),
        [-_baseline_m(params, origin), 0.0, 0.0],
        size,
        rectified=True,
        name=f"zed-sdk-{serial}",
    )


class ZedSdkSource(ClosingMixin):
    """A ZED camera or SVO file through pyzed. ``sl`` is the pyzed.sl module (tests pass a fake one)."""

    def __init__(self, uri: SourceURI, sl):
        self._sl, self._origin = sl, uri.text
        self.is_live = uri.scheme == "zed"
        self._pacer = pacer_for(uri) if not self.is_live else None
        self._cam = sl.Camera()
        err = self._cam.open(self._init_params(uri))
        if err != sl.ERROR_CODE.SUCCESS:
            raise sdk_error(err, "opening the camera" if self.is_live else "opening the SVO file", uri.text)
        info = self._cam.get_camera_information()
        try:
            self.calibration = calibration_from_sdk(info, uri.text)
        except CaptureError:
            self._cam.close()
            raise
        conf = _camera_config(info)
        self.nominal_fps = float(getattr(conf, "fps", None) or getattr(info, "camera_fps", 30.0))
        self.frames_total = None if self.is_live else int(self._cam.get_svo_number_of_frames())
        self._runtime = sl.RuntimeParameters()
        if hasattr(self._runtime, "enable_depth"):
            self._runtime.enable_depth = False
        self._mats = (sl.Mat(), sl.Mat())
        self._clock_offset_ns = time.time_ns() - time.monotonic_ns()
        self._first_ts: int | None = None
        self._next_id = 0

    def _init_params(self, uri: SourceURI):
        sl = self._sl
        init = sl.InitParameters()
        init.depth_mode = sl.DEPTH_MODE.NONE
        init.coordinate_units = sl.UNIT.METER
        if self.is_live:
            uri.check_params(("mode", "fps"))
            init.camera_resolution = _resolution(sl, uri.params.get("mode") or "HD720", uri.text)
            init.camera_fps = uri.number("fps", 30, int)
            if uri.target:
                init.set_from_serial_number(_serial(uri))
        else:
            uri.check_params(("pace",))
            path = Path(uri.target)
            if not path.is_file():
                raise CaptureError(f"source {uri.text!r}: SVO file {path} not found; check the path")
            init.set_from_svo_file(str(path))
            if hasattr(init, "svo_real_time_mode"):
                init.svo_real_time_mode = False
        return init

    @property
    def dropped_frames(self) -> int:
        return int(self._cam.get_frame_dropped_count()) if self.is_live else 0

    def read(self) -> StereoFrame | None:
        sl = self._sl
        err = self._cam.grab(self._runtime)
        if err != sl.ERROR_CODE.SUCCESS:
            if error_name(err) == "END_OF_SVOFILE_REACHED" and not self.is_live:
                return None
            raise sdk_error(err, "grabbing a frame", self._origin)
        left = self._retrieve(self._mats[0], sl.VIEW.LEFT)
        right = self._retrieve(self._mats[1], sl.VIEW.RIGHT)
        t_ns = self._time_ns(self._cam.get_timestamp(sl.TIME_REFERENCE.IMAGE).get_nanoseconds())
        frame = StereoFrame(self._next_id, t_ns, left, right, self.calibration)
        self._next_id += 1
        return frame

    def _retrieve(self, mat, view) -> np.ndarray:
        err = self._cam.retrieve_image(mat, view)
        if err != self._sl.ERROR_CODE.SUCCESS:
            raise sdk_error(err, "retrieving an image", self._origin)
        return bgr_to_rgb(mat.get_data())  # a new array: the SDK buffer is reused by the next retrieve

    def _time_ns(self, image_ts_ns: int) -> int:
        if self.is_live:
            return int(image_ts_ns) - self._clock_offset_ns
        if self._first_ts is None:
            self._first_ts = int(image_ts_ns)
        t = int(image_ts_ns) - self._first_ts
        self._pacer.wait(t)
        return t

    def close(self) -> None:
        self._cam.close()


def _resolution(sl, mode: str, origin: str):
    value = getattr(sl.RESOLUTION, mode.upper(), None)
    if value is None:
        raise CaptureError(
            f"source {origin!r}: mode={mode} is not a ZED resolution; use HD2K, HD1080, HD720 or VGA"
        )
    return value


def _serial(uri: SourceURI) -> int:
    try:
        return int(uri.target)
    except ValueError as exc:
        raise CaptureError(
            f"source {uri.text!r}: {uri.target!r} is not a serial number; write zed or "
            "zed:12345678 (the number on the camera, or from ZED_Explorer --all)"
        ) from exc


def open_zed(uri: SourceURI) -> ZedSdkSource:
    """``zed[:SERIAL][?mode=HD720&fps=30]`` or ``svo:FILE[?pace=...]`` through the ZED SDK."""
    return ZedSdkSource(uri, import_sl(uri.text))
