"""Live pipeline speed: runs run_live.py headless with --benchmark on file sources (every frame processed) and
collects the reports.

    .venv/bin/python benchmarks/bench_pipeline.py --out out/bench_pipeline [--frames 120] [--iterations 3]

Cases (each writes CASE.json, CASE.png (chart), CASE_view.mp4 and CASE_view_last.png under --out):
- synthetic: the animated synthetic source (app/capture/synthetic.py), 640x360 ZED-mini rig, rectified, paced
  by the pipeline (pace=fast), one hand: the whole pipeline, texture included;
- handpose3d: the real two-camera hand video of ../shared/realdata/temugeb_handpose3d_stereo_video (720x720,
  converging rig, raw images with distortion, so the texture stage is off); skipped when absent.
Each report holds frames, fps, per-stage p50/p95 ms, capture-to-render latency, drops, the settings and the
MediaPipe-only baseline measured in the same run on the same frames. File sources are paced by the pipeline,
so latency includes the time a frame waits for the slowest stage (back-pressure), not only processing;
``--realtime`` plays them at their own pace with drops instead, which is what a camera sees.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.cli import main as run_live  # noqa: E402

HANDPOSE3D = ROOT.parent / "shared" / "realdata" / "temugeb_handpose3d_stereo_video"


def handpose3d_source(out: Path) -> str | None:
    """The real stereo video as a video: URI (its calibration imported to out/handpose3d_rig.json)."""
    if not (HANDPOSE3D / "media" / "cam0_test.mp4").is_file():
        print(f"skipping handpose3d: {HANDPOSE3D} not found")
        return None
    from calibration.fileio import save_calibration
    from calibration.temugeb import import_temugeb

    rig = out / "handpose3d_rig.json"
    save_calibration(rig, import_temugeb(HANDPOSE3D / "camera_parameters"), None, {"source": "handpose3d"})
    media = HANDPOSE3D / "media"
    return f"video:{media / 'cam0_test.mp4'},{media / 'cam1_test.mp4'}?calib={rig}"


def run_case(name: str, source: str, out: Path, args) -> dict:
    argv = ["--source", source, "--headless", "--benchmark", str(out / f"{name}.json"), "--video",
            str(out / f"{name}_view.mp4"), "--iterations", str(args.iterations), "--hands", str(args.hands),
            "--max-frames", str(args.frames)] + (["--realtime"] if args.realtime else [])
    code = run_live(argv)
    if code != 0:
        raise SystemExit(f"{name}: run_live.py exited with {code}")
    return json.loads((out / f"{name}.json").read_text())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="out/bench_pipeline", help="output folder")
    p.add_argument("--frames", type=int, default=120, help="frames per case")
    p.add_argument("--iterations", type=int, default=3, help="refinement iterations")
    p.add_argument("--hands", type=int, default=1, choices=(1, 2))
    p.add_argument("--realtime", action="store_true",
                   help="play the files at their recorded pace with latest-wins drops (as a live camera) instead "
                        "of processing every frame")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = {"synthetic": f"synthetic?frames={args.frames}&pace=fast&hands={args.hands}"}
    if (real := handpose3d_source(out)) is not None:
        cases["handpose3d"] = real
    summary = {name: run_case(name, src, out, args) for name, src in cases.items()}
    for name, r in summary.items():
        stages = ", ".join(f"{k} {v['p50_ms']}/{v['p95_ms']}" for k, v in r["stages"].items())
        print(f"{name}: {r['frames']} frames, {r['fps']} fps (MediaPipe alone {r['baseline_mediapipe_fps']}), "
              f"latency p50/p95 {r['latency_ms']['p50']}/{r['latency_ms']['p95']} ms; stages p50/p95 ms: {stages}")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
