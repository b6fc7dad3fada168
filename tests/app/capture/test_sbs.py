"""The sbs: and zed-uvc: sources (side-by-side ZED frames without the SDK)."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from app.capture import CaptureError, open_source, parse_uri
from app.capture.sbs import open_zed_uvc


def test_sbs_video_plays_rectified_with_rows_aligned(zed_files, kit):
    conf, video = zed_files
    with open_source(f"sbs:{video}?conf={conf}") as src:
        assert (src.frames_total, src.is_live, src.nominal_fps) == (3, False, 30.0)
        cal = src.calibration
        assert cal.rectified and cal.left.size_wh == (672, 376)
        true_b = np.linalg.norm([kit.STEREO["baseline_mm"], kit.STEREO["ty_mm"], kit.STEREO["tz_mm"]]) / 1000
        assert cal.baseline_m == pytest.approx(true_b, rel=0.005)
        frames = [src.read() for _ in range(3)]
        assert src.read() is None
    assert [f.frame_id for f in frames] == [0, 1, 2]
    assert [f.t_capture_ns for f in frames] == [0, 33333333, 66666667]
    for f, X in zip(frames, kit.SCENE_M, strict=False):
        assert f.left.dtype == np.uint8 and f.left.shape == (376, 672, 3)
        cl, cr = kit.centroid(f.left), kit.centroid(f.right)
        assert abs(cl[1] - cr[1]) < 0.5
        disparity = cl[0] - cr[0]
        assert disparity == pytest.approx(cal.left.K[0, 0] * cal.baseline_m / X[2], rel=0.05)


def test_sbs_raw_mode_keeps_factory_calibration(zed_files, kit):
    conf, video = zed_files
    with open_source(f"sbs:{video}?conf={conf}&rectify=0") as src:
        assert not src.calibration.rectified
        f = src.read()
    pl, _ = kit.raw_projection(kit.SCENE_M)
    np.testing.assert_allclose(kit.centroid(f.left), pl[0], atol=0.3)


def test_sbs_rgb_order(tmp_path, zed_files):
    conf, _ = zed_files
    path = tmp_path / "red.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 30, (1344, 376))
    img = np.zeros((376, 1344, 3), np.uint8)
    img[:, :, 2] = 200  # red in BGR
    w.write(img)
    w.release()
    with open_source(f"sbs:{path}?conf={conf}&rectify=0") as src:
        f = src.read()
    assert f.left[100, 100].tolist() == [200, 0, 0]


def test_sbs_errors_name_the_problem(tmp_path, zed_files):
    conf, video = zed_files
    with pytest.raises(CaptureError, match="calib.stereolabs.com"):
        open_source(f"sbs:{video}")
    with pytest.raises(CaptureError, match="not found"):
        open_source(f"sbs:{tmp_path / 'nope.mp4'}?conf={conf}")
    with pytest.raises(CaptureError, match="HD720.*2560x720"):
        open_source(f"sbs:{video}?conf={conf}&mode=HD720")
    no_hd = tmp_path / "SN1.conf"
    no_hd.write_text(conf.read_text().replace("_CAM_HD]", "_CAM_XX]"))
    hd = tmp_path / "hd.avi"
    w = cv2.VideoWriter(str(hd), cv2.VideoWriter_fourcc(*"FFV1"), 30, (2560, 720))
    w.write(np.zeros((720, 2560, 3), np.uint8))
    w.release()
    with pytest.raises(CaptureError, match=r"SN1.conf: section \[LEFT_CAM_HD\] is missing"):
        open_source(f"sbs:{hd}?conf={no_hd}")
    with pytest.raises(CaptureError, match="unknown parameter"):
        open_source(f"sbs:{video}?conf={conf}&calib=x")
    with pytest.raises(CaptureError, match="pace=fast or pace=recorded"):
        open_source(f"sbs:{video}?conf={conf}&pace=slow")


class FakeCamera:
    """A cv2.VideoCapture stand-in delivering a fixed side-by-side frame (BGR) of size_wh."""

    def __init__(self, size_wh=(1344, 376), opened=True, frame=None):
        self.size_wh, self.opened, self.released = size_wh, opened, False
        self.props = {}
        self.reads = 0
        self.lock = threading.Lock()
        self.frame = np.zeros((size_wh[1], size_wh[0], 3), np.uint8) if frame is None else frame

    def __call__(self, index, backend):
        self.index = index
        return self

    def isOpened(self):
        return self.opened

    def set(self, prop, value):
        self.props[prop] = value
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_WIDTH: self.size_wh[0], cv2.CAP_PROP_FRAME_HEIGHT: self.size_wh[1]}.get(
            prop, 0
        )

    def read(self):
        with self.lock:
            self.reads += 1
        return True, self.frame.copy()

    def release(self):
        self.released = True


def test_zed_uvc_with_fake_camera(zed_files, kit):
    conf, _ = zed_files
    pl, pr = kit.raw_projection(kit.SCENE_M)
    cam = FakeCamera(frame=np.hstack([kit.blob((672, 376), pl[0]), kit.blob((672, 376), pr[0])]))
    src = open_zed_uvc(parse_uri(f"zed-uvc:2?conf={conf}&mode=VGA&fps=100"), capture_factory=cam)
    with src:
        assert src.is_live and src.frames_total is None and src.nominal_fps == 100
        assert cam.index == 2 and cam.props[cv2.CAP_PROP_FRAME_WIDTH] == 1344
        frames = [src.read() for _ in range(3)]
        assert src.dropped_frames >= 0
    assert cam.released
    assert [f.frame_id for f in frames] == [0, 1, 2]
    assert frames[0].t_capture_ns < frames[1].t_capture_ns < frames[2].t_capture_ns
    cl, cr = kit.centroid(frames[0].left), kit.centroid(frames[0].right)
    assert abs(cl[1] - cr[1]) < 0.5


def test_zed_uvc_errors(zed_files):
    conf, _ = zed_files
    with pytest.raises(CaptureError, match="1280x720.*2560x720"):
        open_zed_uvc(parse_uri(f"zed-uvc:0?conf={conf}&mode=HD720"), capture_factory=FakeCamera((1280, 720)))
    with pytest.raises(CaptureError, match="cannot open camera 0"):
        open_zed_uvc(parse_uri(f"zed-uvc:0?conf={conf}&mode=VGA"), capture_factory=FakeCamera(opened=False))
    with pytest.raises(CaptureError, match=r"fps=60 is not offered in HD2K; use one of \[15\]"):
        open_zed_uvc(parse_uri(f"zed-uvc:0?conf={conf}&mode=HD2K&fps=60"), capture_factory=FakeCamera())
    with pytest.raises(CaptureError, match="conf="):
        open_zed_uvc(parse_uri("zed-uvc:0?mode=VGA"), capture_factory=FakeCamera())
    with pytest.raises(CaptureError, match="not a camera index"):
        open_zed_uvc(parse_uri(f"zed-uvc:abc?conf={conf}"), capture_factory=FakeCamera())
