"""Importer for the TemugeB/handpose3d calibration files (synthetic copies, and the real ones)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.cli import main as calibration_main
from calibration.errors import CalibrationError
from calibration.fileio import load_calibration
from calibration.temugeb import import_temugeb

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata" / "temugeb_handpose3d_stereo_video"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real data folder {REAL} is absent")


def _rows(a) -> str:
    return "\n".join(" ".join(repr(float(v)) for v in row) for row in np.atleast_2d(a)) + "\n"


def write_folder(folder: Path, K, dist, R, T, extra_block: str = "") -> None:
    """The handpose3d layout: c{i}.dat (intrinsic + distortion), rot_trans_c{i}.dat (R, T world -> cam i)."""
    folder.mkdir(exist_ok=True)
    for i in (0, 1):
        (folder / f"c{i}.dat").write_text(f"intrinsic:\n{_rows(K[i])}distortion:\n{_rows(dist[i])}")
        (folder / f"rot_trans_c{i}.dat").write_text(
            f"R:\n{_rows(R[i])}T:\n{_rows(np.reshape(T[i], (3, 1)))}" + (extra_block if i == 1 else "")
        )


@pytest.fixture
def rig():
    K = [
        np.array([[900.0, 0, 350], [0, 901, 360], [0, 0, 1]]),
        np.array([[910.0, 0, 355], [0, 908, 352], [0, 0, 1]]),
    ]
    dist = [np.array([0.01, 0.5, 0, 0, -2.0]), np.array([0.02, 0.4, 0.001, 0, -1.0])]
    R = [cv2.Rodrigues(np.array(v))[0] for v in ([0.3, -0.2, 1.5], [-0.5, 0.9, 0.2])]
    T = [np.array([-2.0, 1.0, 17.0]), np.array([1.5, 5.0, 16.0])]
    return K, dist, R, T


def test_import_relative_pose_in_metres(tmp_path, rig):
    K, dist, R, T = rig
    write_folder(tmp_path / "cp", K, dist, R, T, "\n#below is cam0 -> cam1\nR:\n1 0 0\n")
    cal = import_temugeb(tmp_path / "cp", unit="cm")
    R01 = R[1] @ R[0].T
    np.testing.assert_allclose(cal.right.T_cam_left[:3, :3], R01, atol=1e-12)
    np.testing.assert_allclose(cal.right.T_cam_left[:3, 3], (T[1] - R01 @ T[0]) / 100, atol=1e-12)
    np.testing.assert_array_equal(cal.left.K, K[0])
    np.testing.assert_array_equal(cal.right.dist, dist[1])
    assert cal.left.size_wh == (720, 720) and not cal.rectified
    # a world point maps consistently: camera 1 sees R1 X + T1 (in cm)
    X = np.array([3.0, -2.0, 5.0])
    in_left_m = (R[0] @ X + T[0]) / 100
    np.testing.assert_allclose(
        cal.right.T_cam_left[:3, :3] @ in_left_m + cal.right.T_cam_left[:3, 3],
        (R[1] @ X + T[1]) / 100,
        atol=1e-12,
    )


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda f: (f / "c1.dat").unlink(), ["c1.dat", "not found"]),
        (
            lambda f: (f / "c0.dat").write_text("intrinsic:\n1 2 x\n"),
            ["c0.dat", "line 2", "not a row of numbers"],
        ),
        (
            lambda f: (f / "c0.dat").write_text("intrinsic:\n1 0 0\n0 1 0\n"),
            ["c0.dat", "'intrinsic:'", "9 numbers"],
        ),
        (
            lambda f: (f / "rot_trans_c0.dat").write_text("T:\n1\n2\n3\n"),
            ["rot_trans_c0.dat", "'R:' is missing"],
        ),
        (
            lambda f: (f / "rot_trans_c1.dat").write_text("R:\n2 0 0\n0 1 0\n0 0 1\nT:\n1\n2\n3\n"),
            ["rot_trans_c1.dat", "not a rotation"],
        ),
        (lambda f: (f / "c0.dat").write_bytes(b"\xff\xfe\x00"), ["c0.dat", "not a text file"]),
    ],
)
def test_bad_files_name_file_and_fix(tmp_path, rig, edit, words):
    write_folder(tmp_path / "cp", *rig)
    edit(tmp_path / "cp")
    with pytest.raises(CalibrationError) as info:
        import_temugeb(tmp_path / "cp")
    for w in words:
        assert w in str(info.value)


def test_unknown_unit(tmp_path, rig):
    write_folder(tmp_path / "cp", *rig)
    with pytest.raises(CalibrationError, match="--unit 'inch'"):
        import_temugeb(tmp_path / "cp", unit="inch")


@needs_real
def test_real_files_import_matches_the_datasets_derived_pose(tmp_path):
    out = tmp_path / "hp.json"
    assert calibration_main(["import", "handpose3d", str(REAL / "camera_parameters"), "--out", str(out)]) == 0
    cal = load_calibration(out)
    derived = json.loads((REAL / "calibration_derived.json").read_text())["cam0_to_cam1"]
    np.testing.assert_allclose(cal.right.T_cam_left[:3, :3], derived["R"], atol=1e-6)
    np.testing.assert_allclose(cal.right.T_cam_left[:3, 3], np.array(derived["T"]) / 100, atol=1e-8)
    assert cal.baseline_m == pytest.approx(0.1252, abs=1e-4)
