"""The project's calibration file: JSON, versioned (format ``realhands-stereo-calibration``, version 1).

Layout (documented in docs/CAPTURE.md)::

    {"format": "realhands-stereo-calibration", "version": 1, "name": "...", "rectified": false,
     "baseline_m": 0.12, "rms_px": 0.21 or null,
     "views": {"left":  {"K": [[fx,0,cx],[0,fy,cy],[0,0,1]], "dist": [k1,k2,p1,p2,k3], "size_wh": [w,h],
                         "R_cam_left": identity, "t_cam_left_m": [0,0,0]},
               "right": {... "R_cam_left": R (3x3), "t_cam_left_m": T (3,) metres}},
     "extra": {... free-form: per-view RMS, pair counts, provenance ...}}

K in pixels; dist in OpenCV order; ``X_view = R_cam_left @ X_left + t_cam_left_m`` (metres, OpenCV frame).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.types import CameraView, StereoCalibration
from calibration.errors import CalibrationError
from calibration.rig import make_transform

FORMAT_NAME = "realhands-stereo-calibration"
FORMAT_VERSION = 1
DIST_LENGTHS = (0, 4, 5, 8, 12, 14)  # the distortion vector lengths OpenCV accepts


@dataclass(frozen=True)
class CalibrationRecord:
    """A calibration file's content: the rig, its reprojection RMS (px, None if unknown), extras."""

    calibration: StereoCalibration
    rms_px: float | None = None
    extra: dict = field(default_factory=dict)


def _view_to_dict(view: CameraView) -> dict:
    return {
        "K": view.K.tolist(),
        "dist": view.dist.tolist(),
        "size_wh": list(view.size_wh),
        "R_cam_left": view.T_cam_left[:3, :3].tolist(),
        "t_cam_left_m": view.T_cam_left[:3, 3].tolist(),
    }


def calibration_to_dict(
    calib: StereoCalibration, rms_px: float | None = None, extra: dict | None = None
) -> dict:
    """The JSON-ready dict of the calibration file format (also embedded in recordings' meta.json)."""
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "name": calib.name,
        "rectified": bool(calib.rectified),
        "baseline_m": calib.baseline_m,
        "rms_px": None if rms_px is None else float(rms_px),
        "views": {"left": _view_to_dict(calib.left), "right": _view_to_dict(calib.right)},
        "extra": dict(extra or {}),
    }


def save_calibration(
    path: str | Path, calib: StereoCalibration, rms_px: float | None = None, extra: dict | None = None
) -> Path:
    """Write the calibration file atomically (temp file + rename). Returns the path."""
    p = Path(path)
    text = json.dumps(calibration_to_dict(calib, rms_px, extra), indent=1)
    tmp = p.with_name(p.name + ".tmp")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        os.replace(tmp, p)
    except OSError as exc:
        raise CalibrationError(
            f"{p}: cannot write the calibration file ({exc.strerror or exc}); " "choose a writable --out path"
        ) from exc
    return p


def load_calibration_record(path: str | Path) -> CalibrationRecord:
    """Read and validate a calibration file; every problem raises CalibrationError naming file and field."""
    p = Path(path)
    if not p.is_file():
        raise CalibrationError(
            f"{p}: calibration file not found; pass an existing file "
            "(make one with `python -m calibration calibrate` or `import`)"
        )
    try:
        data = json.loads(p.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CalibrationError(
            f"{p}: not a valid JSON calibration file ({exc}); " "regenerate it with `python -m calibration`"
        ) from exc
    return calibration_from_dict(data, str(p))


def load_calibration(path: str | Path) -> StereoCalibration:
    """The StereoCalibration of a calibration file."""
    return load_calibration_record(path).calibration


def calibration_from_dict(data, origin: str) -> CalibrationRecord:
    """Validate the dict of a calibration file (``origin`` names the file in messages)."""
    if not isinstance(data, dict):
        raise CalibrationError(f"{origin}: top level must be a JSON object; regenerate the file")
    if data.get("format") != FORMAT_NAME:
        raise CalibrationError(
            f"{origin}: field 'format' must be {FORMAT_NAME!r}, got {data.get('format')!r}; "
            "this is not a RealisticHands calibration file (import others with "
            "`python -m calibration import`)"
        )
    if data.get("version") != FORMAT_VERSION:
        raise CalibrationError(
            f"{origin}: field 'version' is {data.get('version')!r}, this program reads "
            f"version {FORMAT_VERSION}; regenerate the file with this version"
        )
    views = _field(data, "views", dict, origin)
    left = _view_from_dict(_field(views, "left", dict, origin, "views."), "views.left", origin)
    right = _view_from_dict(_field(views, "right", dict, origin, "views."), "views.right", origin)
    if not np.allclose(left.T_cam_left, np.eye(4), atol=1e-9):
        raise CalibrationError(
            f"{origin}: views.left must have R_cam_left = identity and t_cam_left_m = 0 "
            "(the left camera is the reference frame); express the right view relative to it"
        )
    rectified = _field(data, "rectified", bool, origin)
    name = data.get("name", "custom")
    calib = StereoCalibration(left=left, right=right, rectified=rectified, name=str(name))
    _check_baseline(data, calib, origin)
    return CalibrationRecord(calib, _optional_number(data, "rms_px", origin), _extra(data, origin))


def _field(data: dict, key: str, typ: type, origin: str, prefix: str = ""):
    if key not in data:
        raise CalibrationError(f"{origin}: field '{prefix}{key}' is missing; add it (see docs/CAPTURE.md)")
    value = data[key]
    if not isinstance(value, typ):
        raise CalibrationError(
            f"{origin}: field '{prefix}{key}' must be a {typ.__name__}, "
            f"got {type(value).__name__}; fix the file (see docs/CAPTURE.md)"
        )
    return value


def _numbers(value, shape: tuple, name: str, origin: str) -> np.ndarray:
    """A finite float64 array of ``shape`` (None = any length) from nested JSON lists."""
    bad = CalibrationError(
        f"{origin}: field '{name}' must be {_shape_words(shape)} of finite numbers, "
        f"got {_short(value)}; fix the file (see docs/CAPTURE.md)"
    )
    if not _is_number_tree(value):
        raise bad
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError, OverflowError) as exc:
        raise bad from exc
    if arr.ndim != len(shape) or any(
        s is not None and s != a for s, a in zip(shape, arr.shape, strict=False)
    ):
        raise bad
    if not np.all(np.isfinite(arr)):
        raise bad
    return arr


def _is_number_tree(value, depth: int = 0) -> bool:
    if depth > 3:
        return False
    if isinstance(value, list):
        return all(_is_number_tree(v, depth + 1) for v in value)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shape_words(shape: tuple) -> str:
    return "a list" if shape == (None,) else "a " + "x".join(str(s) for s in shape) + " nested list"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _view_from_dict(d: dict, name: str, origin: str) -> CameraView:
    K = _numbers(d.get("K"), (3, 3), f"{name}.K", origin)
    if K[0, 0] <= 0 or K[1, 1] <= 0 or not np.allclose(K[2], [0, 0, 1]) or K[1, 0] != 0:
        raise CalibrationError(
            f"{origin}: field '{name}.K' must be [[fx,s,cx],[0,fy,cy],[0,0,1]] with "
            f"fx, fy > 0 (pixels), got {K.tolist()}; fix the intrinsics"
        )
    dist = _numbers(d.get("dist", []), (None,), f"{name}.dist", origin)
    if dist.size not in DIST_LENGTHS:
        raise CalibrationError(
            f"{origin}: field '{name}.dist' has {dist.size} coefficients; OpenCV takes "
            f"{DIST_LENGTHS[1:]} in order k1 k2 p1 p2 k3 ...; fix the list"
        )
    size = _numbers(d.get("size_wh"), (2,), f"{name}.size_wh", origin)
    if np.any(size < 1) or np.any(size != np.round(size)) or np.any(size > 100000):
        raise CalibrationError(
            f"{origin}: field '{name}.size_wh' must be [width, height] in whole pixels, "
            f"got {size.tolist()}; fix the image size"
        )
    R = _numbers(d.get("R_cam_left"), (3, 3), f"{name}.R_cam_left", origin)
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
        raise CalibrationError(
            f"{origin}: field '{name}.R_cam_left' is not a rotation matrix "
            "(R R^T != I or det < 0); fix the extrinsics"
        )
    t = _numbers(d.get("t_cam_left_m"), (3,), f"{name}.t_cam_left_m", origin)
    return CameraView(K=K, dist=dist, T_cam_left=make_transform(R, t), size_wh=(int(size[0]), int(size[1])))


def _optional_number(data: dict, key: str, origin: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CalibrationError(
            f"{origin}: field '{key}' must be a finite number or null, got {_short(value)}; " "fix the file"
        )
    return float(value)


def _check_baseline(data: dict, calib: StereoCalibration, origin: str) -> None:
    stated = _optional_number(data, "baseline_m", origin)
    if stated is not None and abs(stated - calib.baseline_m) > 1e-6 + 1e-4 * calib.baseline_m:
        raise CalibrationError(
            f"{origin}: field 'baseline_m' = {stated} disagrees with "
            f"|views.right.t_cam_left_m| = {calib.baseline_m:.6f}; fix one of them "
            "(baseline_m is informative, delete it to use the translation)"
        )


def _extra(data: dict, origin: str) -> dict:
    extra = data.get("extra", {})
    if not isinstance(extra, dict):
        raise CalibrationError(f"{origin}: field 'extra' must be a JSON object; fix or delete it")
    return extra
