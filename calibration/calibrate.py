"""Stereo calibration from checkerboard image pairs (OpenCV): per-view intrinsics, then the stereo pose.

Steps: 1. pair the left/right images (same file name, else sorted order); 2. find the board's inner corners
(``findChessboardCornersSB``) in both views, rejecting pairs where either view misses it; 3. per-view
``calibrateCamera`` (k1 k2 p1 p2 k3); 4. ``stereoCalibrate`` refining all of it from those intrinsics.
Object points are in metres, so T comes out in metres.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from app.types import StereoCalibration
from calibration.errors import CalibrationError
from calibration.rig import make_stereo

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MIN_PAIRS = 10


@dataclass(frozen=True)
class Board:
    """A checkerboard: ``cols`` x ``rows`` inner corners, ``square_m`` metres per square."""

    cols: int
    rows: int
    square_m: float

    def object_points(self) -> np.ndarray:
        """(cols*rows, 3) float32 corner positions on the board plane (z = 0), metres, row-major."""
        grid = np.mgrid[0 : self.cols, 0 : self.rows].T.reshape(-1, 2)
        return np.hstack([grid * self.square_m, np.zeros((len(grid), 1))]).astype(np.float32)


def parse_board(text: str, square_mm: float) -> Board:
    """``COLSxROWS`` inner corners (e.g. 9x6) and the square size in mm."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m or min(int(m.group(1)), int(m.group(2))) < 2:
        raise CalibrationError(
            f"--board {text!r}: write the inner-corner count as COLSxROWS, e.g. 9x6 "
            "(a board of 10x7 squares has 9x6 inner corners)"
        )
    if not square_mm > 0:
        raise CalibrationError(f"--square-mm {square_mm}: give the printed square size in millimetres (> 0)")
    return Board(int(m.group(1)), int(m.group(2)), square_mm / 1000.0)


@dataclass
class CalibrationResult:
    """The calibrated rig, RMS reprojection errors (px) and the pair bookkeeping."""

    calibration: StereoCalibration
    rms_px: float
    rms_left_px: float
    rms_right_px: float
    used: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def extra(self, board: Board) -> dict:
        return {
            "rms_left_px": self.rms_left_px,
            "rms_right_px": self.rms_right_px,
            "n_pairs": len(self.used),
            "n_rejected": len(self.rejected),
            "rejected": self.rejected,
            "board_inner_corners": [board.cols, board.rows],
            "square_mm": board.square_m * 1000.0,
            "tool": "python -m calibration calibrate",
        }


def pair_images(left_dir: str | Path, right_dir: str | Path) -> list[tuple[Path, Path]]:
    """Left/right image pairs: same file names when the folders share any, else sorted order."""
    lists = [_images(Path(d), side) for d, side in ((left_dir, "--left-dir"), (right_dir, "--right-dir"))]
    by_name = [{p.name: p for p in files} for files in lists]
    common = sorted(set(by_name[0]) & set(by_name[1]))
    if common:
        return [(by_name[0][n], by_name[1][n]) for n in common]
    if len(lists[0]) != len(lists[1]):
        raise CalibrationError(
            f"--left-dir has {len(lists[0])} images and --right-dir {len(lists[1])} with no "
            "common file names; name each pair identically in both folders"
        )
    return list(zip(*lists, strict=False))


def _images(folder: Path, option: str) -> list[Path]:
    if not folder.is_dir():
        raise CalibrationError(
            f"{option} {folder}: folder not found; give the folder with that camera's images"
        )
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise CalibrationError(
            f"{option} {folder}: no images ({', '.join(IMAGE_SUFFIXES)}); " "save the calibration shots there"
        )
    return files


def find_corners(gray: np.ndarray, board: Board) -> np.ndarray | None:
    """(cols*rows, 1, 2) float32 sub-pixel corners in row-major board order, or None if not found."""
    ok, corners = cv2.findChessboardCornersSB(
        gray, (board.cols, board.rows), flags=cv2.CALIB_CB_NORMALIZE_IMAGE
    )
    return corners.astype(np.float32) if ok else None


def _consistent(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Right corners reversed when the detector started from the opposite board corner (180 deg)."""
    dl = left[-1, 0] - left[0, 0]
    dr = right[-1, 0] - right[0, 0]
    return right[::-1].copy() if float(dl @ dr) < 0 else right


def detect_pairs(pairs: list[tuple[Path, Path]], board: Board):
    """(corners_left, corners_right, image size, used names, rejected 'name: reason')."""
    cl, cr, used, rejected, size = [], [], [], [], None
    for lp, rp in pairs:
        imgs = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in (lp, rp)]
        if any(i is None for i in imgs):
            rejected.append(f"{lp.name}: unreadable image")
            continue
        if size is None:
            size = imgs[0].shape[::-1]
        if imgs[0].shape[::-1] != size or imgs[1].shape[::-1] != size:
            rejected.append(f"{lp.name}: image size differs from the first pair {size}")
            continue
        a, b = find_corners(imgs[0], board), find_corners(imgs[1], board)
        if a is None or b is None:
            rejected.append(f"{lp.name}: board not found in the {'left' if a is None else 'right'} view")
            continue
        cl.append(a)
        cr.append(_consistent(a, b))
        used.append(lp.name)
    return cl, cr, size, used, rejected


def calibrate_stereo(
    left_dir, right_dir, board: Board, min_pairs: int = MIN_PAIRS, name: str = "calibrated"
) -> CalibrationResult:
    """Calibrate a two-camera rig from checkerboard pairs; CalibrationError with counts when too few."""
    cl, cr, size, used, rejected = detect_pairs(pair_images(left_dir, right_dir), board)
    if len(used) < min_pairs:
        raise CalibrationError(
            f"only {len(used)} image pairs show the {board.cols}x{board.rows} board in both "
            f"views ({len(rejected)} rejected); at least {min_pairs} are needed: take more "
            "pairs with the whole board visible to both cameras, or check --board"
        )
    obj = [board.object_points()] * len(used)
    rms_l, K1, d1, _, _ = cv2.calibrateCamera(obj, cl, size, None, None)
    rms_r, K2, d2, _, _ = cv2.calibrateCamera(obj, cr, size, None, None)
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-9)
    rms, K1, d1, K2, d2, R, T, _, _ = cv2.stereoCalibrate(
        obj, cl, cr, K1, d1, K2, d2, size, flags=cv2.CALIB_USE_INTRINSIC_GUESS, criteria=criteria
    )
    calib = make_stereo(K1, d1.ravel(), K2, d2.ravel(), R, T.ravel(), size, rectified=False, name=name)
    return CalibrationResult(calib, float(rms), float(rms_l), float(rms_r), used, rejected)
