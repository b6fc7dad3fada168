"""Shared fixtures of the detection tests: a synthetic 21-keypoint hand and two stereo rigs (no MediaPipe)."""

from pathlib import Path

import numpy as np
import pytest

from calibration.rig import make_stereo

REALDATA = Path(__file__).resolve().parents[3].parent / "shared" / "realdata"

# A right hand, fingers up (-y), palm facing the camera, metres in the hand frame (wrist at the origin).
_HAND_RIGHT_M = np.array([
    [0.000, 0.000, 0.000],
    [-0.025, -0.020, -0.005], [-0.045, -0.040, -0.010], [-0.060, -0.060, -0.012], [-0.070, -0.080, -0.012],
    [-0.025, -0.085, 0.000], [-0.028, -0.125, -0.004], [-0.030, -0.150, -0.006], [-0.032, -0.170, -0.008],
    [0.000, -0.090, 0.000], [0.000, -0.135, -0.004], [0.000, -0.163, -0.006], [0.000, -0.185, -0.008],
    [0.020, -0.085, 0.000], [0.022, -0.125, -0.004], [0.024, -0.150, -0.006], [0.025, -0.170, -0.008],
    [0.040, -0.075, 0.002], [0.045, -0.105, -0.002], [0.048, -0.125, -0.004], [0.050, -0.142, -0.006],
])


def _rot_y(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


@pytest.fixture
def hand_points():
    """hand_points(wrist_m (3,), is_left=False, yaw_deg=0) -> (21, 3) float64 metres, left-camera frame."""

    def make(wrist_m, is_left: bool = False, yaw_deg: float = 0.0) -> np.ndarray:
        pts = _HAND_RIGHT_M * (np.array([-1.0, 1.0, 1.0]) if is_left else 1.0)
        return pts @ _rot_y(yaw_deg).T + np.asarray(wrist_m, dtype=np.float64)

    return make


@pytest.fixture
def rectified_rig():
    """ZED-Mini-like rectified rig: 1280x720, f 700 px, baseline 63 mm (right camera at +x)."""
    K = np.array([[700.0, 0, 640.0], [0, 700.0, 360.0], [0, 0, 1]])
    return make_stereo(K, np.zeros(5), K, np.zeros(5), np.eye(3), [-0.063, 0, 0], (1280, 720), rectified=True)


@pytest.fixture
def general_rig():
    """An unrectified rig: different intrinsics, right camera yawed 8 degrees and offset in y and z."""
    K_l = np.array([[650.0, 0, 630.0], [0, 655.0, 350.0], [0, 0, 1]])
    K_r = np.array([[720.0, 0, 650.0], [0, 715.0, 370.0], [0, 0, 1]])
    return make_stereo(K_l, np.zeros(5), K_r, np.zeros(5), _rot_y(-8.0), [-0.12, 0.01, 0.005], (1280, 720))


def project(P: np.ndarray, points_m: np.ndarray) -> np.ndarray:
    """(M, 3) metres -> (M, 2) pixels through a (3, 4) projection matrix."""
    h = np.c_[points_m, np.ones(len(points_m))] @ P.T
    return h[:, :2] / h[:, 2:]


@pytest.fixture
def projector():
    return project


@pytest.fixture
def realdata():
    """Path of ../shared/realdata; skips the test when the folder is absent (a fresh clone has none)."""
    if not REALDATA.is_dir():
        pytest.skip(f"needs the shared real data at {REALDATA} (absent: a fresh clone has no ../shared)")
    return REALDATA
