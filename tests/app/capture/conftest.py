"""Helpers for capture tests: a ZED factory .conf written from the documented format, blob images."""

from __future__ import annotations

import types

import cv2
import numpy as np
import pytest

# VGA (672x376 per eye) ZED-like rig: 63 mm baseline (ZED Mini) with small offsets and rotation.
EYES = {
    "LEFT": dict(fx=366.1, fy=365.8, cx=338.2, cy=186.9, k1=-0.17, k2=0.026, p1=0.0003, p2=-0.0002, k3=0.0),
    "RIGHT": dict(fx=365.2, fy=365.0, cx=333.7, cy=190.1, k1=-0.165, k2=0.024, p1=-0.0002, p2=0.0001, k3=0.0),
}
STEREO = dict(baseline_mm=63.05, ty_mm=0.12, tz_mm=-0.2, rvec=(0.0015, -0.003, 0.001))


def conf_text() -> str:
    """A factory .conf; every resolution gets the VGA numbers (only VGA images are used in these tests)."""
    lines = []
    rx, cv, rz = STEREO["rvec"]
    stereo = [
        "[STEREO]",
        f"Baseline={STEREO['baseline_mm']}",
        f"TY={STEREO['ty_mm']}",
        f"TZ={STEREO['tz_mm']}",
    ]
    for suffix in ("2K", "FHD", "HD", "VGA"):
        for eye, vals in EYES.items():
            lines += [f"[{eye}_CAM_{suffix}]"] + [f"{k}={v}" for k, v in vals.items()] + [""]
        stereo += [f"CV_{suffix}={cv}", f"RX_{suffix}={rx}", f"RZ_{suffix}={rz}"]
    return "\n".join(lines + stereo + [""])


def raw_projection(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) metres, left-camera frame -> raw distorted pixels (N, 2) in the left and right eye."""

    def K(e):
        return np.array([[e["fx"], 0, e["cx"]], [0, e["fy"], e["cy"]], [0, 0, 1.0]])

    def d(e):
        return np.array([e[k] for k in ("k1", "k2", "p1", "p2", "k3")])

    T = np.array([-STEREO["baseline_mm"], STEREO["ty_mm"], STEREO["tz_mm"]]) / 1000
    pl, _ = cv2.projectPoints(X, np.zeros(3), np.zeros(3), K(EYES["LEFT"]), d(EYES["LEFT"]))
    pr, _ = cv2.projectPoints(X, np.array(STEREO["rvec"]), T, K(EYES["RIGHT"]), d(EYES["RIGHT"]))
    return pl.reshape(-1, 2), pr.reshape(-1, 2)


def blob(size_wh: tuple[int, int], center_xy, sigma: float = 2.5) -> np.ndarray:
    """(H, W, 3) uint8 BGR: a Gaussian blob at a sub-pixel centre on black."""
    w, h = size_wh
    yy, xx = np.mgrid[0:h, 0:w]
    g = np.exp(-((xx - center_xy[0]) ** 2 + (yy - center_xy[1]) ** 2) / (2 * sigma**2))
    return np.repeat((g * 250).astype(np.uint8)[:, :, None], 3, axis=2)


def centroid(img: np.ndarray) -> np.ndarray:
    m = cv2.moments(img[:, :, 0] if img.ndim == 3 else img)
    return np.array([m["m10"] / m["m00"], m["m01"] / m["m00"]])


SCENE_M = np.array([[0.05, -0.02, 0.8], [-0.1, 0.05, 1.2], [0.0, 0.0, 0.6]])


def write_sbs_video(path, n_frames: int = 3, fourcc: str = "FFV1", eye_wh=(672, 376)) -> None:
    """A side-by-side video: frame i shows SCENE_M[i % 3] as a blob in both raw eyes (BGR)."""
    pl, pr = raw_projection(SCENE_M)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 30, (2 * eye_wh[0], eye_wh[1]))
    assert writer.isOpened()
    for i in range(n_frames):
        j = i % len(SCENE_M)
        writer.write(np.hstack([blob(eye_wh, pl[j]), blob(eye_wh, pr[j])]))
    writer.release()


@pytest.fixture
def zed_files(tmp_path):
    """(conf path, side-by-side VGA video path) written into tmp_path."""
    conf = tmp_path / "SN4242.conf"
    conf.write_text(conf_text())
    video = tmp_path / "sbs.avi"
    write_sbs_video(video)
    return conf, video


@pytest.fixture
def kit():
    """This file's helpers (test modules cannot import conftest under --import-mode=importlib)."""
    return types.SimpleNamespace(
        SCENE_M=SCENE_M,
        STEREO=STEREO,
        EYES=EYES,
        blob=blob,
        centroid=centroid,
        raw_projection=raw_projection,
        conf_text=conf_text,
        write_sbs_video=write_sbs_video,
    )
