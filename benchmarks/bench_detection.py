"""Detection stage speed: MediaPipe Hands on both views of a stereo frame, serial vs parallel.

    .venv/bin/python benchmarks/bench_detection.py --json out/bench_detection.json [--frames 80]

Frames come from MediaPipe's sample hand videos in ../shared/realdata/mediapipe_samples_test_assets
(640x360 and 1280x720), resized to each resolution measured; the right view is the left shifted by 96 px
(a plausible disparity). Modes:
- serial: view 1 then view 2 in this thread;
- threads: the detector's two-thread pool (MediaPipe releases the GIL inside its graph);
- processes: one worker process per view, frames sent through pipes.
Each mode uses its own MediaPipe graphs in video (tracking) mode, complexity 1, up to two hands; the modes
run interleaved frame by frame (fair under a changing machine load); the first ``--warmup`` frames are not
timed. ``stage_threads`` times the whole ``detect()`` (MediaPipe + association + triangulation + filtering +
two 224x224 crops and 21x224x224 heatmaps per hand) with threads.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.detection.config import DetectionConfig  # noqa: E402
from app.detection.stereo import build_detector  # noqa: E402
from app.types import StereoFrame  # noqa: E402
from calibration.rig import make_stereo  # noqa: E402

ASSETS = ROOT.parent / "shared" / "realdata" / "mediapipe_samples_test_assets"
VIDEOS = {(640, 360): "hand_landmarker_android_test_video.mp4",
          (1280, 720): "gesture_recognizer_android_test_video.mp4"}
DISPARITY_PX = 96


def read_frames(size_wh: tuple[int, int], n: int) -> list[np.ndarray]:
    """Up to n (H, W, 3) uint8 RGB frames of the sample video for ``size_wh``, resized to it."""
    path = ASSETS / VIDEOS[size_wh]
    if not path.is_file():
        raise SystemExit(f"error: {path} not found; the benchmark needs ../shared/realdata")
    cap, frames = cv2.VideoCapture(str(path)), []
    while len(frames) < n:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(cv2.cvtColor(cv2.resize(bgr, size_wh), cv2.COLOR_BGR2RGB)))
    cap.release()
    return frames


def stereo_pair(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    right = np.zeros_like(frame)
    right[:, :-DISPARITY_PX] = frame[:, DISPARITY_PX:]
    return frame, right


def stats_ms(times_s: list[float]) -> dict:
    ms = np.asarray(times_s) * 1000.0
    return {"median_ms": round(float(np.median(ms)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "n": len(ms)}


def _pair_runner_threads(det):
    return lambda left, right: [len(h) for h in det.detect_views(left, right)]


def _worker(conn) -> None:
    from app.detection.mediapipe_hands import MediaPipeHands

    hands = MediaPipeHands(DetectionConfig())
    while (image := conn.recv()) is not None:
        conn.send(hands.process(image))
    hands.close()


class ProcessPair:
    """Two worker processes, one MediaPipe graph each; ``__call__(left, right)`` -> hands per view."""

    def __init__(self):
        ctx = mp.get_context("spawn")
        self.pipes = [ctx.Pipe() for _ in range(2)]
        self.procs = [ctx.Process(target=_worker, args=(child,), daemon=True) for _, child in self.pipes]
        for proc in self.procs:
            proc.start()

    def __call__(self, left, right):
        for (conn, _), img in zip(self.pipes, (left, right), strict=True):
            conn.send(img)
        return [len(conn.recv()) for conn, _ in self.pipes]

    def close(self):
        for (conn, _), proc in zip(self.pipes, self.procs, strict=True):
            conn.send(None)
            proc.join(timeout=10)


def bench_modes(frames, warmup: int) -> dict:
    """serial / threads / processes, interleaved frame by frame so load changes hit every mode alike."""
    serial = build_detector(DetectionConfig(parallel_views=False))
    threads = build_detector(DetectionConfig(parallel_views=True))
    procs = ProcessPair()
    runners = {"serial": _pair_runner_threads(serial), "threads": _pair_runner_threads(threads),
               "processes": procs}
    times = {k: [] for k in runners}
    hands = {k: [] for k in runners}
    try:
        for i, frame in enumerate(frames):
            left, right = stereo_pair(frame)
            for name, run_pair in runners.items():
                t0 = time.perf_counter()
                found = run_pair(left, right)
                if i >= warmup:
                    times[name].append(time.perf_counter() - t0)
                    hands[name].append(np.mean(found))
    finally:
        serial.close()
        threads.close()
        procs.close()
    return {k: {**stats_ms(times[k]), "hands_per_view": round(float(np.mean(hands[k])), 2)} for k in runners}


def bench_stage(frames, warmup: int) -> dict:
    size_wh = frames[0].shape[1::-1]
    K = np.array([[700.0, 0, size_wh[0] / 2], [0, 700.0, size_wh[1] / 2], [0, 0, 1]])
    calib = make_stereo(K, np.zeros(5), K, np.zeros(5), np.eye(3), [-0.063, 0, 0], size_wh, rectified=True)
    times = []
    with build_detector(DetectionConfig()) as det:
        for i, frame in enumerate(frames):
            left, right = stereo_pair(frame)
            sf = StereoFrame(frame_id=i, t_capture_ns=i * 40_000_000, left=left, right=right,
                             calibration=calib)
            t0 = time.perf_counter()
            det.detect(sf)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return stats_ms(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", required=True, help="output JSON path")
    p.add_argument("--frames", type=int, default=80, help="frames per measurement (video length caps it)")
    p.add_argument("--warmup", type=int, default=10)
    args = p.parse_args(argv)
    results = {}
    for size_wh in VIDEOS:
        frames = read_frames(size_wh, args.frames + args.warmup)
        key = f"{size_wh[0]}x{size_wh[1]}"
        results[key] = {**bench_modes(frames, args.warmup), "stage_threads": bench_stage(frames, args.warmup)}
        print(key, json.dumps(results[key]), flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cpu_count": mp.cpu_count(), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
