"""``python -m app.capture info SOURCE --json PATH`` and ``record SOURCE DIR``: thin CLIs over open_source."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.capture import open_source
from app.capture.errors import CaptureError
from calibration.errors import CalibrationError


def source_info(uri: str, live_frames: int = 30) -> dict:
    """Open ``uri`` and read every frame of a file source (``live_frames`` of a live one).

    Returns {"frames": int or None (live), "fps": nominal, "width", "height": left view px,
    "baseline_m", "rectified", "dropped_frames", "warnings": [str] (e.g. a truncated recording tail)}.
    """
    with open_source(uri) as src:
        limit = live_frames if src.is_live else None
        count = 0
        while (limit is None or count < limit) and src.read() is not None:
            count += 1
        w, h = src.calibration.left.size_wh
        return {
            "frames": None if src.is_live else count,
            "fps": src.nominal_fps,
            "width": w,
            "height": h,
            "baseline_m": src.calibration.baseline_m,
            "rectified": src.calibration.rectified,
            "dropped_frames": src.dropped_frames,
            "warnings": list(getattr(src, "warnings", [])),
        }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.capture", description="Open and inspect stereo sources.")
    sub = p.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="read a source and report frames, fps, size, baseline")
    info.add_argument("source", help="source URI, e.g. sbs:FILE.mp4?conf=SN123.conf (see docs/CAPTURE.md)")
    info.add_argument(
        "--json", dest="json_path", default=None, help="also write the report to this JSON file"
    )
    info.add_argument("--live-frames", type=int, default=30, help="frames to read from a live source")
    rec = sub.add_parser("record", help="record a source into a recording directory")
    rec.add_argument("source")
    rec.add_argument("out_dir")
    rec.add_argument(
        "--codec", default="png", help="png (lossless, default), raw (lossless) or jpeg[:QUALITY]"
    )
    rec.add_argument(
        "--frames", type=int, default=0, help="stop after this many frames (0: until the end/Ctrl-C)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "info":
            return _info(args)
        return _record(args)
    except (CaptureError, CalibrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _info(args) -> int:
    report = source_info(args.source, args.live_frames)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json_path:
        try:
            Path(args.json_path).write_text(text + "\n")
        except OSError as exc:
            raise CaptureError(
                f"--json {args.json_path}: cannot write ({exc.strerror}); choose a writable path"
            ) from exc
    return 0


def _record(args) -> int:
    from app.capture.recording import record_source

    summary = record_source(args.source, args.out_dir, codec=args.codec, max_frames=args.frames or None)
    print(json.dumps(summary, indent=1))
    return 0
