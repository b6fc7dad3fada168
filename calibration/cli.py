"""``python -m calibration calibrate | show | import``: thin CLI; errors print one message and exit 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from app.types import CameraView, StereoCalibration
from calibration.errors import CalibrationError
from calibration.fileio import CalibrationRecord, load_calibration_record, save_calibration


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m calibration", description="Stereo calibration files.")
    sub = p.add_subparsers(dest="command", required=True)
    cal = sub.add_parser("calibrate", help="calibrate a two-camera rig from checkerboard image pairs")
    cal.add_argument("--left-dir", required=True, help="folder of left-camera images")
    cal.add_argument("--right-dir", required=True, help="folder of right-camera images (same file names)")
    cal.add_argument("--board", required=True, help="inner corners COLSxROWS, e.g. 9x6")
    cal.add_argument("--square-mm", type=float, required=True, help="printed square size in millimetres")
    cal.add_argument("--out", required=True, help="calibration file to write (JSON)")
    cal.add_argument("--min-pairs", type=int, default=10, help="refuse with fewer usable pairs (default 10)")
    cal.add_argument("--name", default="calibrated", help="a name stored in the file")
    show = sub.add_parser("show", help="print a calibration file (JSON, or a ZED SN.conf with --mode)")
    show.add_argument("file")
    show.add_argument("--mode", default="HD720", help="ZED mode for a .conf file (HD2K, HD1080, HD720, VGA)")
    imp = sub.add_parser("import", help="convert another tool's calibration into this project's JSON")
    imp.add_argument(
        "kind",
        choices=("handpose3d", "zed-conf"),
        help="handpose3d: a TemugeB/handpose3d camera_parameters folder; zed-conf: a ZED SN.conf",
    )
    imp.add_argument("path", help="the camera_parameters folder, or the SN<serial>.conf file")
    imp.add_argument("--out", required=True, help="calibration file to write (JSON)")
    imp.add_argument("--unit", default="cm", help="handpose3d: unit of its T (m, cm, mm; default cm)")
    imp.add_argument("--size", default="720x720", help="handpose3d: image size WxH (default 720x720)")
    imp.add_argument("--mode", default="HD720", help="zed-conf: ZED mode (HD2K, HD1080, HD720, VGA)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"calibrate": _calibrate, "show": _show, "import": _import}[args.command](args)
    except CalibrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _calibrate(args) -> int:
    from calibration.calibrate import calibrate_stereo, parse_board

    board = parse_board(args.board, args.square_mm)
    result = calibrate_stereo(args.left_dir, args.right_dir, board, args.min_pairs, args.name)
    print(f"pairs used: {len(result.used)}, rejected: {len(result.rejected)}")
    for reason in result.rejected:
        print(f"  rejected {reason}")
    print(
        f"RMS reprojection error: left {result.rms_left_px:.3f} px, right {result.rms_right_px:.3f} px, "
        f"stereo {result.rms_px:.3f} px"
    )
    print(f"baseline: {result.calibration.baseline_m * 1000:.2f} mm")
    save_calibration(args.out, result.calibration, result.rms_px, result.extra(board))
    print(f"wrote {args.out}")
    return 0


def _show(args) -> int:
    path = Path(args.file)
    if path.suffix.lower() == ".conf":
        from calibration.zed_conf import read_zed_conf

        record = CalibrationRecord(
            read_zed_conf(path, args.mode), None, {"source": f"ZED factory file, {args.mode}"}
        )
    else:
        record = load_calibration_record(path)
    print(describe(record, str(path)))
    return 0


def _import(args) -> int:
    if args.kind == "handpose3d":
        from calibration.temugeb import import_temugeb

        calib = import_temugeb(args.path, args.unit, _size(args.size))
        extra = {"source": f"TemugeB/handpose3d camera_parameters ({args.path}); T unit assumed {args.unit}"}
    else:
        from calibration.zed_conf import read_zed_conf

        calib = read_zed_conf(args.path, args.mode)
        extra = {"source": f"ZED factory file {args.path}, mode {args.mode}"}
    save_calibration(args.out, calib, None, extra)
    print(describe(CalibrationRecord(calib, None, extra), args.out))
    return 0


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise CalibrationError(
            f"--size {text!r}: write the image size as WIDTHxHEIGHT, e.g. 720x720"
        ) from exc
    if w <= 0 or h <= 0:
        raise CalibrationError(f"--size {text!r}: width and height must be > 0")
    return w, h


def describe(record: CalibrationRecord, origin: str) -> str:
    """A readable multi-line summary of a calibration (sizes, intrinsics, pose, baseline, errors)."""
    cal: StereoCalibration = record.calibration
    rms = "unknown" if record.rms_px is None else f"{record.rms_px:.3f} px"
    R, t = cal.right.T_cam_left[:3, :3], cal.right.T_cam_left[:3, 3]
    rvec = cv2.Rodrigues(R)[0].ravel()
    lines = [
        f"{origin}: calibration {cal.name!r}",
        f"  rectified: {'yes' if cal.rectified else 'no'}   baseline: {cal.baseline_m * 1000:.2f} mm   "
        f"stereo RMS: {rms}",
        _describe_view("left ", cal.left),
        _describe_view("right", cal.right),
        f"  right from left: rotation {np.degrees(np.linalg.norm(rvec)):.3f} deg (Rodrigues "
        f"{np.round(rvec, 5).tolist()}), t = {np.round(t, 5).tolist()} m",
    ]
    lines += [f"  {k}: {v}" for k, v in record.extra.items()]
    return "\n".join(lines)


def _describe_view(name: str, v: CameraView) -> str:
    K = v.K
    return (
        f"  {name}: {v.size_wh[0]}x{v.size_wh[1]} px  fx {K[0, 0]:.2f} fy {K[1, 1]:.2f}  "
        f"cx {K[0, 2]:.2f} cy {K[1, 2]:.2f}  dist {np.round(v.dist, 5).tolist()}"
    )
