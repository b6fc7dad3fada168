"""Stereo calibration recovers a known rig from synthetic checkerboard renders with noise."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from calibration.calibrate import calibrate_stereo, pair_images, parse_board
from calibration.cli import main as calibration_main
from calibration.errors import CalibrationError
from calibration.fileio import load_calibration

SIZE_WH = (480, 360)
K = np.array([[450.0, 0, 242.0], [0, 449.0, 181.0], [0, 0, 1]])
DIST = {
    "left": np.array([-0.08, 0.05, 0.0005, -0.0003, 0.0]),
    "right": np.array([-0.07, 0.04, -0.0004, 0.0002, 0.0]),
}
R_RIGHT, _ = cv2.Rodrigues(np.array([0.01, -0.04, 0.005]))
T_RIGHT = np.array([-0.1, 0.002, 0.001])  # metres: right camera 10 cm to the left-camera's +x
COLS, ROWS, SQUARE_M = 9, 6, 0.025
TEX_PER_SQUARE = 32


def board_texture() -> tuple[np.ndarray, float]:
    """Checkerboard of (COLS+1)x(ROWS+1) squares with a one-square white margin; returns (texture, origin)
    where texture coordinate = board metres / SQUARE_M * TEX_PER_SQUARE + origin (first inner corner)."""
    n_w, n_h = COLS + 3, ROWS + 3
    u = (np.arange(n_w * TEX_PER_SQUARE) + 0.5) / TEX_PER_SQUARE - 2.0  # squares from the first inner corner
    v = (np.arange(n_h * TEX_PER_SQUARE) + 0.5) / TEX_PER_SQUARE - 2.0
    uu, vv = np.meshgrid(u, v)
    inside = (uu >= -1) & (uu < COLS) & (vv >= -1) & (vv < ROWS)
    black = inside & ((np.floor(uu) + np.floor(vv)) % 2 == 0)
    return np.where(black, 20, 235).astype(np.float32), 2.0 * TEX_PER_SQUARE - 0.5


def normalized_rays(dist: np.ndarray) -> np.ndarray:
    """(H*W, 2) undistorted normalized coordinates of every pixel centre of a view."""
    w, h = SIZE_WH
    px = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).reshape(-1, 1, 2).astype(np.float64)
    return cv2.undistortPoints(px, K, dist).reshape(-1, 2)


def render(rays, R_b, t_b, texture, origin, rng) -> np.ndarray:
    """A view of the board posed at X_cam = R_b X_board + t_b (metres), with Gaussian noise (sigma 2)."""
    H = np.column_stack([R_b[:, 0], R_b[:, 1], t_b])  # board plane (X, Y, 1) -> normalized homogeneous
    board = np.linalg.solve(H, np.column_stack([rays, np.ones(len(rays))]).T).T
    uv = board[:, :2] / board[:, 2:3] / SQUARE_M * TEX_PER_SQUARE + origin
    w, h = SIZE_WH
    mx, my = (uv[:, i].reshape(h, w).astype(np.float32) for i in (0, 1))
    img = cv2.remap(texture, mx, my, cv2.INTER_LINEAR, borderValue=128)
    return np.clip(img + rng.normal(0, 2.0, img.shape), 0, 255).astype(np.uint8)


def random_pose(rng):
    """A board pose (R_b, t_b) whose corners fall well inside both views."""
    corners = np.mgrid[0:COLS, 0:ROWS].T.reshape(-1, 2) * SQUARE_M
    corners = np.hstack([corners, np.zeros((len(corners), 1))])
    while True:
        R_b, _ = cv2.Rodrigues(rng.uniform([-0.45, -0.45, -0.25], [0.45, 0.45, 0.25]))
        centre = np.array([rng.uniform(-0.02, 0.12), rng.uniform(-0.05, 0.05), rng.uniform(0.45, 0.75)])
        t_b = centre - R_b @ np.array([(COLS - 1) * SQUARE_M / 2, (ROWS - 1) * SQUARE_M / 2, 0])
        ok = True
        for R, t, d in ((np.eye(3), np.zeros(3), DIST["left"]), (R_RIGHT, T_RIGHT, DIST["right"])):
            p, _ = cv2.projectPoints(corners, cv2.Rodrigues(R @ R_b)[0], R @ t_b + t, K, d)
            ok &= bool(np.all((p > 15) & (p < np.array(SIZE_WH) - 15)))
        if ok:
            return R_b, t_b


@pytest.fixture(scope="module")
def pair_dirs(tmp_path_factory):
    """12 good pairs plus one whose right view misses the board, as PNG files in left/ and right/."""
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(7)
    texture, origin = board_texture()
    rays = {side: normalized_rays(d) for side, d in DIST.items()}
    for side in ("left", "right"):
        (root / side).mkdir()
    for i in range(12):
        R_b, t_b = random_pose(rng)
        cv2.imwrite(str(root / "left" / f"{i:02d}.png"), render(rays["left"], R_b, t_b, texture, origin, rng))
        cv2.imwrite(
            str(root / "right" / f"{i:02d}.png"),
            render(rays["right"], R_RIGHT @ R_b, R_RIGHT @ t_b + T_RIGHT, texture, origin, rng),
        )
    cv2.imwrite(str(root / "left" / "99.png"), render(rays["left"], R_b, t_b, texture, origin, rng))
    cv2.imwrite(str(root / "right" / "99.png"), np.full(SIZE_WH[::-1], 128, np.uint8))
    return root


def test_calibrate_cli_recovers_known_rig(pair_dirs, tmp_path, capsys):
    out = tmp_path / "calib.json"
    args = ["calibrate", "--left-dir", str(pair_dirs / "left"), "--right-dir", str(pair_dirs / "right"),
            "--board", "9x6", "--square-mm", "25", "--out", str(out)]
    assert calibration_main(args) == 0
    printed = capsys.readouterr().out
    assert "pairs used: 12, rejected: 1" in printed and "99.png: board not found in the right view" in printed
    assert "RMS reprojection error: left" in printed and "stereo" in printed
    data = json.loads(out.read_text())
    assert data["baseline_m"] == pytest.approx(np.linalg.norm(T_RIGHT), rel=0.01)
    assert data["rms_px"] < 0.5 and data["extra"]["rms_left_px"] < 0.5 and data["extra"]["rms_right_px"] < 0.5
    cal = load_calibration(out)
    np.testing.assert_allclose(cal.right.T_cam_left[:3, 3], T_RIGHT, atol=0.002)
    np.testing.assert_allclose(cal.right.T_cam_left[:3, :3], R_RIGHT, atol=6e-3)  # ~0.3 deg
    np.testing.assert_allclose(cal.left.K, K, rtol=0.01, atol=1.5)
    assert calibration_main(["show", str(out)]) == 0
    assert "baseline: 100.0" in capsys.readouterr().out


def test_too_few_pairs_refused_with_counts(pair_dirs, tmp_path):
    for side in ("left", "right"):
        (tmp_path / side).mkdir()
        for name in ("00.png", "01.png", "99.png"):
            (tmp_path / side / name).write_bytes((pair_dirs / side / name).read_bytes())
    with pytest.raises(CalibrationError, match=r"only 2 image pairs .* \(1 rejected\); at least 10"):
        calibrate_stereo(tmp_path / "left", tmp_path / "right", parse_board("9x6", 25))
    args = ["calibrate", "--left-dir", str(tmp_path / "left"), "--right-dir", str(tmp_path / "right"),
            "--board", "9x6", "--square-mm", "25", "--out", str(tmp_path / "c.json")]
    assert calibration_main(args) == 2 and not (tmp_path / "c.json").exists()


@pytest.mark.parametrize(
    "text, mm, words", [("9-6", 25, "COLSxROWS"), ("9x1", 25, "COLSxROWS"), ("9x6", 0, "--square-mm")]
)
def test_bad_board_arguments(text, mm, words):
    with pytest.raises(CalibrationError, match=words):
        parse_board(text, mm)


def test_pairing_errors(tmp_path):
    with pytest.raises(CalibrationError, match="--left-dir .* folder not found"):
        pair_images(tmp_path / "nope", tmp_path)
    (tmp_path / "L").mkdir()
    (tmp_path / "R").mkdir()
    with pytest.raises(CalibrationError, match="no images"):
        pair_images(tmp_path / "L", tmp_path / "R")
    (tmp_path / "L" / "a.png").write_bytes(b"x")
    (tmp_path / "R" / "b.png").write_bytes(b"x")
    (tmp_path / "R" / "c.png").write_bytes(b"x")
    with pytest.raises(CalibrationError, match="1 images and --right-dir 2"):
        pair_images(tmp_path / "L", tmp_path / "R")
