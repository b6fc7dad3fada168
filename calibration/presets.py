"""Nominal rectified ZED-family rigs for synthetic data and the synthetic source.

Rectified: both views share K, rows are equal and the right camera sits ``baseline_m`` along +x of the left
(``X_right = X_left - (baseline, 0, 0)``). Focal lengths are the nominal ones of each camera at each mode
(about 700 px at HD720, about 350 px at VGA, scaled with the width for other sizes); the principal point is the
image centre. Real units vary by a few pixels; a calibration file gives a custom rig.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.types import StereoCalibration
from calibration.errors import CalibrationError
from calibration.rig import make_stereo


@dataclass(frozen=True)
class RigPreset:
    """A camera model: baseline in metres and the nominal focal length (px) at 1280 px per-eye width."""

    name: str
    baseline_m: float
    focal_px_at_1280: float


RIG_PRESETS = {
    p.name: p
    for p in (
        RigPreset("zed", 0.120, 700.0),
        RigPreset("zed-mini", 0.063, 700.0),
        RigPreset("zed2", 0.120, 700.0),
    )
}

# Per-eye sizes: the ZED modes plus the 640x360 working size used by benchmarks.
RIG_MODES = {"HD720": (1280, 720), "VGA": (672, 376), "640x360": (640, 360)}


def rig_mode_size(mode: str) -> tuple[int, int]:
    """(width, height) of a mode name (HD720, VGA, 640x360 or any WxH)."""
    if mode.upper() in RIG_MODES:
        return RIG_MODES[mode.upper()]
    w, sep, h = mode.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) <= 0 or int(h) <= 0:
        raise CalibrationError(f"unknown rig mode {mode!r}; use one of {sorted(RIG_MODES)} or WIDTHxHEIGHT")
    return int(w), int(h)


def preset_rig(name: str = "zed-mini", mode: str = "HD720") -> StereoCalibration:
    """The rectified StereoCalibration of a preset rig at a mode, e.g. ``preset_rig('zed-mini', 'VGA')``."""
    preset = RIG_PRESETS.get(name.lower())
    if preset is None:
        raise CalibrationError(f"unknown rig {name!r}; use one of {sorted(RIG_PRESETS)} or a calibration file")
    w, h = rig_mode_size(mode)
    f = preset.focal_px_at_1280 * w / 1280.0
    K = np.array([[f, 0.0, (w - 1) / 2.0], [0.0, f, (h - 1) / 2.0], [0.0, 0.0, 1.0]])
    T = np.array([-preset.baseline_m, 0.0, 0.0])
    return make_stereo(K, np.zeros(5), K, np.zeros(5), np.eye(3), T, (w, h), rectified=True,
                       name=f"{preset.name}-{mode.lower()}")


def rig_from_spec(spec: str, mode: str = "HD720") -> StereoCalibration:
    """A preset name (``zed``, ``zed-mini``, ``zed2``) or the path of a calibration JSON file."""
    if spec.lower() in RIG_PRESETS:
        return preset_rig(spec, mode)
    from pathlib import Path

    from calibration.fileio import load_calibration

    if not Path(spec).is_file():
        raise CalibrationError(f"unknown rig {spec!r}: not a preset ({', '.join(sorted(RIG_PRESETS))}) and not "
                               "a calibration file; pass a preset name or a file from `python -m calibration`")
    return load_calibration(spec)
