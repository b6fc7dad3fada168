"""The video: source (any calibrated two-camera rig), including the real handpose3d recording."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.capture import CaptureError, open_source
from app.capture.info import main as capture_main
from calibration.fileio import save_calibration
from calibration.rig import make_stereo
from calibration.temugeb import import_temugeb

REPO = Path(__file__).resolve().parents[3]
REAL = REPO / ".." / "shared" / "realdata" / "temugeb_handpose3d_stereo_video"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real data folder {REAL} is absent")


def _video(path, frames, size_wh=(64, 48)):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 25, size_wh)
    for i in range(frames):
        img = np.zeros((size_wh[1], size_wh[0], 3), np.uint8)
        img[:, :, 0] = 10 * i  # blue channel (BGR) carries the frame index
        w.write(img)
    w.release()
    return path


@pytest.fixture
def rig_files(tmp_path):
    cal = make_stereo(
        np.diag([60.0, 60.0, 1.0]) + [[0, 0, 32], [0, 0, 24], [0, 0, 0]],
        np.zeros(5),
        np.diag([61.0, 61.0, 1.0]) + [[0, 0, 31], [0, 0, 23], [0, 0, 0]],
        np.zeros(5),
        cv2.Rodrigues(np.array([0.0, -0.5, 0.0]))[0],
        [-0.2, 0.0, 0.05],
        (64, 48),
    )
    calib = save_calibration(tmp_path / "rig.json", cal)
    return _video(tmp_path / "l.avi", 4), _video(tmp_path / "r.avi", 5), calib


def test_two_videos_play_with_raw_converging_calibration(rig_files):
    left, right, calib = rig_files
    with open_source(f"video:{left},{right}?calib={calib}") as src:
        assert not src.calibration.rectified and src.frames_total == 4 and src.nominal_fps == 25
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
        assert src._feed.uneven_end
    assert [f.frame_id for f in frames] == [0, 1, 2, 3]
    assert [f.t_capture_ns for f in frames] == [0, 40_000_000, 80_000_000, 120_000_000]
    assert [int(f.left[0, 0, 2]) for f in frames] == [0, 10, 20, 30]  # RGB: blue is channel 2
    np.testing.assert_allclose(
        frames[0].calibration.right.P,
        frames[0].calibration.right.K @ frames[0].calibration.right.T_cam_left[:3],
    )


def test_video_errors(rig_files, tmp_path):
    left, right, calib = rig_files
    with pytest.raises(CaptureError, match="give two views"):
        open_source(f"video:{left}?calib={calib}")
    with pytest.raises(CaptureError, match="calib=FILE.json"):
        open_source(f"video:{left},{right}")
    with pytest.raises(CaptureError, match="nope.json: calibration file not found"):
        open_source(f"video:{left},{right}?calib={tmp_path / 'nope.json'}")
    big = _video(tmp_path / "big.avi", 1, (80, 48))
    with pytest.raises(
        CaptureError, match=r"big.avi is 80x48 but the calibration's views.right.size_wh is 64x48"
    ):
        open_source(f"video:{left},{big}?calib={calib}")
    with pytest.raises(CaptureError, match="horizontal rig"):
        bad = make_stereo(np.eye(3), np.zeros(5), np.eye(3), np.zeros(5), np.eye(3), [0, -0.1, 0], (64, 48))
        open_source(f"video:{left},{right}?calib={save_calibration(tmp_path / 'v.json', bad)}&rectify=1")


def test_unknown_scheme_lists_known_ones():
    with pytest.raises(
        CaptureError, match=r"unknown scheme 'webcam'; known schemes: .*recording.*sbs.*video"
    ):
        open_source("webcam:0")


@needs_real
def test_real_two_camera_recording_plays_with_imported_calibration(tmp_path):
    calib = save_calibration(tmp_path / "hp.json", import_temugeb(REAL / "camera_parameters"))
    media = REAL / "media"
    uri = f"video:{media / 'cam0_test.mp4'},{media / 'cam1_test.mp4'}?calib={calib}"
    out = tmp_path / "info.json"
    assert capture_main(["info", uri, "--json", str(out)]) == 0
    info = json.loads(out.read_text())
    assert info["frames"] == 378 and info["fps"] == 30.0 and (info["width"], info["height"]) == (720, 720)
    assert info["rectified"] is False and info["baseline_m"] == pytest.approx(0.1252, abs=1e-4)


def test_info_cli_exit_status_2_without_traceback(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "app.capture", "info", "nope:1", "--json", str(tmp_path / "i.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "unknown scheme 'nope'" in r.stderr and "Traceback" not in r.stderr


@needs_real
def test_real_converging_rig_refuses_rectification_with_a_reason(tmp_path):
    calib = save_calibration(tmp_path / "hp.json", import_temugeb(REAL / "camera_parameters"))
    media = REAL / "media"
    with pytest.raises(CaptureError, match="74 deg apart.*rectify=0"):
        open_source(f"video:{media / 'cam0_test.mp4'},{media / 'cam1_test.mp4'}?calib={calib}&rectify=1")
