"""The ZED SDK adapter against a fake ``pyzed.sl`` (SDK 3.x and 4.x/5.x attribute layouts)."""

from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest

from app.capture import CaptureError, open_source


class Code:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name.replace("_", " ")


def enum(*names):
    return types.SimpleNamespace(**{n: Code(n) for n in names})


def fake_sl(sdk=4, open_error=None, svo_frames=3, size=(8, 6), baseline=-0.063):
    """A pyzed.sl stand-in. The image buffer is reused by every retrieve_image, as in the real SDK."""
    sl = types.ModuleType("pyzed.sl")
    sl.ERROR_CODE = enum("SUCCESS", "END_OF_SVOFILE_REACHED", "CAMERA_NOT_DETECTED", "LOW_USB_BANDWIDTH")
    sl.RESOLUTION = enum("HD2K", "HD1080", "HD720", "VGA")
    sl.DEPTH_MODE = enum("NEURAL", "PERFORMANCE", "NONE")
    sl.UNIT = enum("MILLIMETER", "METER")
    sl.VIEW = enum("LEFT", "RIGHT")
    sl.TIME_REFERENCE = enum("IMAGE", "CURRENT")
    sl.opened = []

    class InitParameters:
        def __init__(self):
            self.depth_mode, self.coordinate_units = sl.DEPTH_MODE.NEURAL, sl.UNIT.MILLIMETER
            self.camera_resolution, self.camera_fps, self.serial, self.svo = (
                sl.RESOLUTION.HD720,
                0,
                None,
                None,
            )

        def set_from_serial_number(self, serial):
            self.serial = serial

        def set_from_svo_file(self, path):
            self.svo = path

    class RuntimeParameters:
        enable_depth = True

    class Mat:
        def __init__(self):
            self.buf = np.zeros((size[1], size[0], 4), np.uint8)

        def get_data(self):
            return self.buf

    class Camera:
        def open(self, init):
            self.init, self.n = init, 0
            sl.opened.append(self)
            return open_error or sl.ERROR_CODE.SUCCESS

        def grab(self, runtime):
            self.runtime = runtime
            if self.init.svo and self.n >= svo_frames:
                return sl.ERROR_CODE.END_OF_SVOFILE_REACHED
            self.n += 1
            self.ts = time.time_ns() if self.init.svo is None else 5_000_000_000 + self.n * 16_000_000
            return sl.ERROR_CODE.SUCCESS

        def retrieve_image(self, mat, view):
            mat.buf[:] = (10 * self.n, 20, 100 if view is sl.VIEW.LEFT else 200, 255)  # BGRA
            return sl.ERROR_CODE.SUCCESS

        def get_timestamp(self, ref):
            assert ref is sl.TIME_REFERENCE.IMAGE
            return types.SimpleNamespace(get_nanoseconds=lambda: self.ts)

        def get_frame_dropped_count(self):
            return 4

        def get_svo_number_of_frames(self):
            return svo_frames

        def get_camera_information(self):
            cam = types.SimpleNamespace(fx=350.0, fy=350.0, cx=4.0, cy=3.0, disto=np.zeros(5))
            res = types.SimpleNamespace(width=size[0], height=size[1])
            scale = 1.0 if self.init.coordinate_units is sl.UNIT.METER else 1000.0
            if sdk == 3:
                params = types.SimpleNamespace(
                    left_cam=cam, right_cam=cam, T=np.array([baseline * scale, 0, 0])
                )
                return types.SimpleNamespace(
                    calibration_parameters=params, camera_resolution=res, camera_fps=60, serial_number=1234
                )
            params = types.SimpleNamespace(
                left_cam=cam, right_cam=cam, get_camera_baseline=lambda: baseline * scale
            )
            conf = types.SimpleNamespace(calibration_parameters=params, resolution=res, fps=60)
            return types.SimpleNamespace(camera_configuration=conf, serial_number=1234)

        def close(self):
            self.closed = True

    sl.InitParameters, sl.RuntimeParameters, sl.Mat, sl.Camera = (
        InitParameters,
        RuntimeParameters,
        Mat,
        Camera,
    )
    return sl


@pytest.fixture
def install(monkeypatch):
    def _install(sl):
        pkg = types.ModuleType("pyzed")
        pkg.sl = sl
        monkeypatch.setitem(sys.modules, "pyzed", pkg)
        monkeypatch.setitem(sys.modules, "pyzed.sl", sl)
        return sl

    return _install


@pytest.mark.parametrize("sdk", [3, 4])
def test_live_camera_frames_calibration_and_settings(install, sdk):
    sl = install(fake_sl(sdk))
    with open_source("zed:1234?mode=VGA&fps=60") as src:
        f0, f1 = src.read(), src.read()
        assert src.dropped_frames == 4 and src.is_live and src.frames_total is None and src.nominal_fps == 60
    cam = sl.opened[0]
    assert cam.init.depth_mode is sl.DEPTH_MODE.NONE and cam.init.coordinate_units is sl.UNIT.METER
    assert (
        cam.init.serial == 1234
        and cam.init.camera_resolution is sl.RESOLUTION.VGA
        and cam.init.camera_fps == 60
    )
    assert cam.runtime.enable_depth is False and cam.closed
    cal = f0.calibration
    assert cal.rectified and cal.baseline_m == pytest.approx(0.063) and cal.right.T_cam_left[0, 3] < 0
    assert cal.left.size_wh == (8, 6) and cal.left.K[0, 0] == 350.0 and not cal.left.dist.any()
    assert f0.left[0, 0].tolist() == [100, 20, 10] and f0.right[0, 0].tolist() == [200, 20, 10]  # BGRA -> RGB
    assert f1.left[0, 0].tolist() == [100, 20, 20]  # frame 0 kept its pixels although the buffer was reused
    assert (f0.frame_id, f1.frame_id) == (0, 1)
    assert abs(f1.t_capture_ns - time.monotonic_ns()) < 1_000_000_000 and f0.t_capture_ns <= f1.t_capture_ns


def test_svo_file_plays_to_the_end(install, tmp_path):
    install(fake_sl(svo_frames=3))
    svo = tmp_path / "a.svo2"
    svo.write_bytes(b"x")
    with open_source(f"svo:{svo}") as src:
        assert src.frames_total == 3 and not src.is_live and src.dropped_frames == 0
        frames = [src.read() for _ in range(3)]
        assert src.read() is None
    assert [f.t_capture_ns for f in frames] == [0, 16_000_000, 32_000_000]


def test_sdk_errors_are_mapped_to_clear_messages(install, tmp_path):
    sl = fake_sl()
    install(fake_sl(open_error=sl.ERROR_CODE.CAMERA_NOT_DETECTED))
    with pytest.raises(
        CaptureError, match="opening the camera failed with CAMERA_NOT_DETECTED: no ZED found"
    ):
        open_source("zed")
    install(fake_sl())
    with pytest.raises(CaptureError, match="not a serial number"):
        open_source("zed:abc")
    with pytest.raises(CaptureError, match="mode=HD4K is not a ZED resolution"):
        open_source("zed?mode=HD4K")
    with pytest.raises(CaptureError, match="SVO file .* not found"):
        open_source(f"svo:{tmp_path / 'none.svo'}")
    install(fake_sl(baseline=-63.0))
    with pytest.raises(CaptureError, match="baseline of 63.0"):
        open_source("zed")


def test_without_the_sdk_zed_explains_install_and_suggests_zed_uvc(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyzed", None)
    monkeypatch.setitem(sys.modules, "pyzed.sl", None)
    with pytest.raises(CaptureError, match="get_python_api.py.*zed-uvc:0\\?conf=SN<serial>.conf"):
        open_source("zed")
