"""Parser of the ZED factory calibration file ``SN<serial>.conf`` (INI).

Format (Stereolabs' factory file, downloadable from https://calib.stereolabs.com/?SN=<serial>)::

    [LEFT_CAM_HD]            one section per eye and resolution: 2K, FHD, HD, VGA
    fx=... fy=... cx=... cy=...          pixels, for that resolution
    k1=... k2=... p1=... p2=... k3=...   OpenCV distortion (missing terms read as 0)
    [RIGHT_CAM_HD] ...
    [STEREO]
    Baseline=119.9           mm; TY, TZ mm (plain or per resolution: TY_HD ...)
    CV_HD=... RX_HD=... RZ_HD=...        radians, a Rodrigues vector (RX, CV, RZ) (plain keys also read)

Result: K, distortion (k1 k2 p1 p2 k3), R = Rodrigues(RX, CV, RZ), T = (-Baseline, TY, TZ) / 1000 metres,
with the cv2.stereoCalibrate meaning ``X_right = R X_left + T``.
"""

from __future__ import annotations

import configparser
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from app.types import StereoCalibration
from calibration.errors import CalibrationError
from calibration.rig import make_stereo


@dataclass(frozen=True)
class ZedMode:
    """A ZED video mode: per-eye image size (pixels), the .conf section suffix and the allowed frame rates."""

    name: str
    size_wh: tuple[int, int]
    conf_suffix: str
    fps_choices: tuple[int, ...]


ZED_MODES: dict[str, ZedMode] = {
    m.name: m
    for m in (
        ZedMode("HD2K", (2208, 1242), "2K", (15,)),
        ZedMode("HD1080", (1920, 1080), "FHD", (30, 15)),
        ZedMode("HD720", (1280, 720), "HD", (60, 30, 15)),
        ZedMode("VGA", (672, 376), "VGA", (100, 60, 30, 15)),
    )
}

DIST_KEYS = ("k1", "k2", "p1", "p2", "k3")


def zed_mode(name: str, origin: str = "source") -> ZedMode:
    """The ZedMode called ``name`` (case-insensitive), or CalibrationError listing the known modes."""
    mode = ZED_MODES.get(name.upper())
    if mode is None:
        raise CalibrationError(f"{origin}: unknown ZED mode {name!r}; use one of {sorted(ZED_MODES)}")
    return mode


def mode_for_eye_size(size_wh: tuple[int, int]) -> ZedMode | None:
    """The ZedMode whose per-eye size is ``size_wh``, or None."""
    return next((m for m in ZED_MODES.values() if m.size_wh == tuple(size_wh)), None)


def read_zed_conf(path: str | Path, mode: str | ZedMode) -> StereoCalibration:
    """The raw (unrectified) rig of a factory .conf file for one ZED mode."""
    p = Path(path)
    m = mode if isinstance(mode, ZedMode) else zed_mode(mode, str(p))
    return parse_zed_conf(_read_text(p), m, str(p))


def parse_zed_conf(text: str, mode: ZedMode, origin: str = "<conf>") -> StereoCalibration:
    """Parse the text of a .conf file for ``mode``; CalibrationError names the file, section and key."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text, source=origin)
    except configparser.Error as exc:
        raise CalibrationError(
            f"{origin}: not a valid ZED .conf (INI) file: {_one_line(exc)}; "
            "download it again from https://calib.stereolabs.com/?SN=<serial>"
        ) from exc
    K_l, d_l = _camera(parser, f"LEFT_CAM_{mode.conf_suffix}", origin)
    K_r, d_r = _camera(parser, f"RIGHT_CAM_{mode.conf_suffix}", origin)
    R, T_m = _stereo(parser, mode.conf_suffix, origin)
    serial = Path(origin).stem
    return make_stereo(
        K_l, d_l, K_r, d_r, R, T_m, mode.size_wh, rectified=False, name=f"zed-{serial}-{mode.name}"
    )


def _read_text(p: Path) -> str:
    if not p.is_file():
        raise CalibrationError(
            f"{p}: ZED calibration file not found; download SN<serial>.conf from "
            "https://calib.stereolabs.com/?SN=<serial> or copy it from /usr/local/zed/settings/"
        )
    try:
        return p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CalibrationError(
            f"{p}: not a text .conf file ({exc.reason} at byte {exc.start}); "
            "download it again from https://calib.stereolabs.com/?SN=<serial>"
        ) from exc


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) < 160 else text[:157] + "..."


def _section(parser: configparser.ConfigParser, name: str, origin: str):
    for section in parser.sections():
        if section.upper() == name:
            return parser[section]
    raise CalibrationError(
        f"{origin}: section [{name}] is missing; this file has {parser.sections()[:12]}; "
        "use a complete factory file from https://calib.stereolabs.com/?SN=<serial> "
        "or choose a mode the file covers"
    )


def _number(section, key: str, origin: str, default: float | None = None) -> float:
    """A finite float from ``section[key]`` (keys are case-insensitive); ``default`` when absent."""
    raw = section.get(key.lower())
    if raw is None:
        if default is None:
            raise CalibrationError(
                f"{origin}: key '{key}' is missing in [{section.name}]; add it "
                "(see docs/CAPTURE.md for the .conf format)"
            )
        return default
    try:
        value = float(raw.strip())
    except ValueError as exc:
        raise CalibrationError(
            f"{origin}: [{section.name}] {key} = {raw.strip()[:40]!r} is not a number; " "fix the value"
        ) from exc
    if not math.isfinite(value):
        raise CalibrationError(
            f"{origin}: [{section.name}] {key} = {raw.strip()[:40]!r} is not finite; " "fix the value"
        )
    return value


def _camera(parser, name: str, origin: str) -> tuple[np.ndarray, np.ndarray]:
    """(K (3, 3) px, dist (5,)) of one [LEFT_CAM_x] / [RIGHT_CAM_x] section."""
    sec = _section(parser, name, origin)
    fx, fy, cx, cy = (_number(sec, k, origin) for k in ("fx", "fy", "cx", "cy"))
    if fx <= 0 or fy <= 0:
        raise CalibrationError(
            f"{origin}: [{name}] fx, fy must be > 0 pixels, got {fx}, {fy}; fix the values"
        )
    dist = np.array([_number(sec, k, origin, 0.0) for k in DIST_KEYS])
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]]), dist


def _stereo(parser, suffix: str, origin: str) -> tuple[np.ndarray, np.ndarray]:
    """(R (3, 3), T_m (3,)) from [STEREO]: per-resolution keys (``TY_HD``) win over plain ones (``TY``)."""
    sec = _section(parser, "STEREO", origin)
    baseline = _stereo_value(sec, "Baseline", suffix, origin, None)
    if baseline <= 0:
        raise CalibrationError(f"{origin}: [STEREO] Baseline must be > 0 mm, got {baseline}; fix the value")
    rvec = np.array([_stereo_value(sec, k, suffix, origin, 0.0) for k in ("RX", "CV", "RZ")])
    if np.linalg.norm(rvec) > 0.5:
        raise CalibrationError(
            f"{origin}: [STEREO] rotation (RX, CV, RZ)_{suffix} = {rvec.tolist()} rad is "
            "over 0.5 rad, not a ZED; check the values are radians"
        )
    R, _ = cv2.Rodrigues(rvec.reshape(3, 1))
    ty, tz = (_stereo_value(sec, k, suffix, origin, 0.0) for k in ("TY", "TZ"))
    return R, np.array([-baseline, ty, tz]) / 1000.0


def _stereo_value(sec, key: str, suffix: str, origin: str, default: float | None) -> float:
    """``key_suffix`` if present, else ``key``, else ``default`` (None = required)."""
    for name in (f"{key}_{suffix}", key):
        if name.lower() in sec:
            return _number(sec, name, origin)
    if default is None:
        raise CalibrationError(
            f"{origin}: key '{key}' (or '{key}_{suffix}') is missing in [STEREO]; add it "
            "(see docs/CAPTURE.md for the .conf format)"
        )
    return default
