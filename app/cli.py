"""Command line of run_live.py: arguments -> one AppConfig (defaults <- --config YAML <- flags), then the live
app (app/live.py)."""

from __future__ import annotations

import argparse
import sys

from app.config import AppConfig, ConfigError, merge_config

EPILOG = """\
keys in the window: R record on/off, T texture reset, V view (split, camera, 3D), S screenshot;
drag to orbit the 3D view, scroll to zoom; Esc or closing the window stops.
examples:
  python run_live.py                                  # a ZED if one answers, else the synthetic source
  python run_live.py --source recording:session1 --headless --max-frames 100
  python run_live.py --source "sbs:clip.mp4?conf=SN123.conf" --record out/take1 --benchmark out/bench.json
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_live.py", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="RealisticHands Live: a textured 3D hand mesh from a ZED stereo camera, in real time.")
    p.add_argument("--source", default=None,
                   help="frame source URI: zed[:SERIAL], zed-uvc:INDEX?conf=SN.conf, sbs:FILE.mp4?conf=SN.conf, "
                        "video:L.mp4,R.mp4?calib=FILE, recording:DIR, synthetic, or auto (default): a ZED if one "
                        "answers, else synthetic (docs/CAPTURE.md)")
    p.add_argument("--mano-dir", default=None,
                   help="folder with MANO_RIGHT.pkl / MANO_LEFT.pkl (default: the embedded open hand model; "
                        "the environment variable REALHANDS_MANO_DIR also works)")
    p.add_argument("--checkpoint", default=None,
                   help="HandNet weights file; HandNet inference is not in the live pipeline yet, so the flag is "
                        "accepted and reported, and the stereo keypoint fit initialises the hands")
    p.add_argument("--iterations", type=int, default=None,
                   help="test-time refinement iterations per frame (default 3; 0 = fit only)")
    p.add_argument("--hands", type=int, choices=(1, 2), default=None, help="hands tracked per frame (default 2)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None,
                   help="where the hand model and refinement run (default auto: cuda when available)")
    p.add_argument("--headless", action="store_true", default=None,
                   help="no window: write the composed view to an MP4 (--video) and the last frame to a PNG; "
                        "chosen automatically, with a message, when there is no display")
    p.add_argument("--video", default=None,
                   help="headless MP4 path (default out/live_view.mp4); the last frame goes to NAME_last.png")
    p.add_argument("--max-frames", type=int, default=None,
                   help="stop after N captured frames (default: until the source ends or Ctrl-C)")
    p.add_argument("--record", default=None, metavar="DIR",
                   help="record the session into DIR from the start: raw stereo frames (playable as "
                        "recording:DIR), per-frame hand states, the texture, and hand.glb / sequence.glb at the end")
    p.add_argument("--benchmark", default=None, metavar="PATH",
                   help="write a JSON report (fps, per-stage p50/p95 ms, latency, drops, MediaPipe-only baseline "
                        "on the same frames) and a PNG bar chart beside it")
    p.add_argument("--config", default=None, metavar="FILE.yaml",
                   help="YAML with configuration sections (source, hand_model, detection, reconstruction, "
                        "pipeline, viewer, session, benchmark); flags override it")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set detection.model_complexity=0 (repeatable)")
    p.add_argument("--realtime", action="store_true", default=None,
                   help="file sources play at their recorded pace and stages drop stale frames like a live "
                        "camera (default: every frame of a file is processed)")
    return p


def overrides_from(args: argparse.Namespace) -> dict:
    """Dotted config keys from the flags (None = not given, so the YAML value stays)."""
    out = {"source": args.source, "hand_model.mano_dir": args.mano_dir,
           "reconstruction.checkpoint": args.checkpoint, "reconstruction.iterations": args.iterations,
           "pipeline.hands": args.hands, "pipeline.device": args.device, "pipeline.max_frames": args.max_frames,
           "pipeline.realtime": args.realtime, "viewer.headless": args.headless, "viewer.video_path": args.video,
           "session.record_dir": args.record, "benchmark.path": args.benchmark}
    if args.video:
        out["viewer.screenshot_path"] = args.video.rsplit(".", 1)[0] + "_last.png"
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"--set {item!r}: write KEY=VALUE, e.g. --set pipeline.queue_size=2")
        out[key.strip()] = value.strip()
    return out


def load_config(args: argparse.Namespace) -> AppConfig:
    return merge_config(AppConfig(), args.config, overrides_from(args))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from models.hand_model import describe_default_model

    print(describe_default_model(args.mano_dir))
    try:
        cfg = load_config(args)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from app.live import run_live

    try:
        return run_live(cfg)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
