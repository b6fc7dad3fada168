"""Importer for the calibration files of TemugeB/handpose3d (a converging two-webcam rig).

Files in ``camera_parameters/`` (units per the dataset's SOURCES.md):
- ``c0.dat``, ``c1.dat``: a line ``intrinsic:``, 3 rows of K (pixels, for 720x720 images), a line
  ``distortion:``, one row ``k1 k2 p1 p2 k3``.
- ``rot_trans_c0.dat``, ``rot_trans_c1.dat``: ``R:`` 3 rows, ``T:`` 3 rows mapping the checkerboard (world)
  frame into camera k: ``X_cam = R X_world + T``; T in checkerboard units (centimetres by default). A second
  block after a ``#`` comment in ``rot_trans_c1.dat`` is ignored (it repeats the cam0->cam1 pose).

Camera 0 becomes the left (reference) view: ``R_01 = R1 R0^T``, ``T_01 = T1 - R_01 T0``, scaled to metres.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from app.types import StereoCalibration
from calibration.errors import CalibrationError
from calibration.rig import make_stereo

UNIT_TO_M = {"m": 1.0, "cm": 0.01, "mm": 0.001}


def read_blocks(path: Path) -> dict[str, np.ndarray]:
    """The labelled number blocks (``label:`` then rows of numbers) of one .dat file, up to the first
    ``#`` comment; values: (rows, cols) float64."""
    text = _read(path)
    blocks: dict[str, list[list[float]]] = {}
    label = None
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line.startswith("#"):
            break
        if line.endswith(":"):
            label = line[:-1].strip().lower()
            blocks.setdefault(label, [])
        elif line:
            if label is None:
                raise CalibrationError(
                    f"{path}: line {lineno} has numbers before any 'name:' label; "
                    "fix the file (expected 'intrinsic:', 'distortion:', 'R:' or 'T:')"
                )
            blocks[label].append(_row(line, path, lineno))
    return {k: _rectangular(v, k, path) for k, v in blocks.items()}


def _read(path: Path) -> str:
    if not path.is_file():
        raise CalibrationError(
            f"{path}: file not found; pass the handpose3d 'camera_parameters' folder "
            "(with c0.dat, c1.dat, rot_trans_c0.dat, rot_trans_c1.dat)"
        )
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CalibrationError(f"{path}: not a text file ({exc.reason}); use the original .dat file") from exc


def _row(line: str, path: Path, lineno: int) -> list[float]:
    try:
        row = [float(t) for t in line.split()]
    except ValueError as exc:
        raise CalibrationError(
            f"{path}: line {lineno} {line[:40]!r} is not a row of numbers; fix it"
        ) from exc
    if not all(math.isfinite(v) for v in row):
        raise CalibrationError(f"{path}: line {lineno} has a non-finite number; fix it")
    return row


def _rectangular(rows: list[list[float]], label: str, path: Path) -> np.ndarray:
    if not rows or len({len(r) for r in rows}) != 1:
        raise CalibrationError(f"{path}: block '{label}:' must hold rows of equal length; fix the file")
    return np.array(rows, dtype=np.float64)


def _block(blocks: dict, label: str, shape: tuple, path: Path) -> np.ndarray:
    arr = blocks.get(label.lower())
    if arr is None:
        raise CalibrationError(f"{path}: block '{label}:' is missing; the handpose3d files have one")
    if arr.size != int(np.prod(shape)):
        raise CalibrationError(
            f"{path}: block '{label}:' must hold {int(np.prod(shape))} numbers {shape}, "
            f"got {arr.shape}; fix the file"
        )
    return arr.reshape(shape)


def read_camera(folder: Path, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(K (3, 3) px, dist (5,), R_world (3, 3), T_world (3,) file units) of camera ``index``."""
    intr_path, pose_path = folder / f"c{index}.dat", folder / f"rot_trans_c{index}.dat"
    intr, pose = read_blocks(intr_path), read_blocks(pose_path)
    K = _block(intr, "intrinsic", (3, 3), intr_path)
    dist = _block(intr, "distortion", (5,), intr_path)
    R = _block(pose, "R", (3, 3), pose_path)
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0:
        raise CalibrationError(f"{pose_path}: block 'R:' is not a rotation matrix; fix the file")
    return K, dist, R, _block(pose, "T", (3,), pose_path)


def import_temugeb(
    folder: str | Path, unit: str = "cm", size_wh: tuple[int, int] = (720, 720)
) -> StereoCalibration:
    """The raw converging rig of a handpose3d ``camera_parameters`` folder; ``unit`` is the unit of T."""
    if unit not in UNIT_TO_M:
        raise CalibrationError(f"--unit {unit!r} is unknown; use one of {sorted(UNIT_TO_M)}")
    folder = Path(folder)
    K0, d0, R0, T0 = read_camera(folder, 0)
    K1, d1, R1, T1 = read_camera(folder, 1)
    R01 = R1 @ R0.T
    T01 = (T1 - R01 @ T0) * UNIT_TO_M[unit]
    return make_stereo(K0, d0, K1, d1, R01, T01, size_wh, rectified=False, name="handpose3d-cam0-cam1")
