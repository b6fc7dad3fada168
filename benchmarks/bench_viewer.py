"""Viewer speed: ms per composed frame of the live app's 'split' view, and ms per frame written to the MP4.

Usage: .venv/bin/python benchmarks/bench_viewer.py [--frames 60] [--hands 1] [--static-texture] [--json out.json]

Inputs are made once, before any timing, from the synthetic source (``synthetic?pace=fast``, seed 0, ZED Mini
640x360): per frame the left image, the ground-truth hand meshes (open model, left-camera frame), their
keypoints (pixels and metres) and a TextureMap of the source's skin. By default every frame carries a new
TextureMap (alternating between the skin and a tinted copy), as the live texture stage publishes one per frame
while a hand is seen; ``--static-texture`` passes the same object every frame. The orbit swings +-30 degrees
of yaw over the run (distance 0.6 m, the live default), the HUD shows six lines of status.

Timed: ``Composer.compose(view, 'split')`` per frame after ``--warmup`` frames (wall ms and CPU ms of the whole
process over all threads, Mesa llvmpipe's render threads included), then ``VideoWriter.write`` of the composed
frames to an MP4 for each encoder preset (wall ms the caller is blocked per frame, and the ffmpeg process's CPU
ms per frame, taken from the children's rusage after the writer closed). Prints median / p95 and the load
average before and after.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.capture import open_source  # noqa: E402
from app.capture.synthetic import open_hand_model  # noqa: E402
from app.types import HandMesh, TextureMap, ViewerSnapshot  # noqa: E402
from app.viewer import Composer, HudStatus, ViewerInput, ViewSettings  # noqa: E402
from app.viewer.layout import Orbit  # noqa: E402
from app.viewer.sinks import VideoWriter  # noqa: E402

TIMINGS_MS = {"capture": 12.0, "detection": 48.0, "reconstruction": 61.0, "texture": 17.0, "render": 9.0}
PRESETS = ("medium", "veryfast", "ultrafast")


def textures(skin_rgb8: np.ndarray, n: int, static: bool) -> list[TextureMap]:
    """n TextureMaps of the (S, S, 3) uint8 skin: one object reused (static) or a new one per frame,
    alternating between the skin and a copy tinted towards red (so the content changes too)."""
    base = skin_rgb8.astype(np.float32) / 255.0
    tinted = np.clip(base * np.array([1.15, 0.9, 0.9], np.float32), 0.0, 1.0)
    weight = np.ones(base.shape[:2], np.float32)
    if static:
        return [TextureMap(base, weight, 1)] * n
    return [TextureMap(base if i % 2 == 0 else tinted, weight, i + 1) for i in range(n)]


def make_inputs(n: int, hands: int, static_texture: bool) -> tuple[list[ViewerInput], tuple[int, int]]:
    """n ViewerInputs from the synthetic source's frames and ground truth, and the image size (w, h)."""
    models = [open_hand_model(side) for side in ("right", "left")[:hands]]
    uv = tuple((m.uv[0].numpy(), m.uv[1].numpy()) for m in models)
    faces = [m.faces.numpy().astype(np.int64) for m in models]
    status = HudStatus(fps=14.8, hands_seen=hands, recording=True, recorded_frames=120, dropped=3,
                       notes=("texture: 512^2, 41% covered", "refinement: 3 iterations", "device: cpu",
                              "keys: R record, T texture reset, V view, S screenshot"))
    with open_source(f"synthetic?pace=fast&frames={n}&hands={hands}") as src:
        maps = textures(src.skin.image, n, static_texture)
        out = []
        for i in range(n):
            frame = src.read()
            truths = src.hands_truth(frame.frame_id, masks=False)
            meshes = tuple(HandMesh(frame.frame_id, frame.t_capture_ns, t.verts_m, f, t.keypoints_m, t.state)
                           for t, f in zip(truths, faces, strict=True))
            snap = ViewerSnapshot(frame.frame_id, frame.t_capture_ns, frame.left, meshes, maps[i], TIMINGS_MS)
            out.append(ViewerInput(snap, frame.calibration.left.K, tuple(t.keypoints_px[0] for t in truths),
                                   tuple(t.keypoints_m for t in truths), uv, (maps[i],) * hands, status))
        size = src.calibration.left.size_wh
    return out, size


def stats(wall_ms: list[float], cpu_ms: list[float]) -> dict:
    """Per-frame wall and CPU ms -> median / p95 of each."""
    w, c = np.asarray(wall_ms), np.asarray(cpu_ms)
    return {"wall_median_ms": float(np.median(w)), "wall_p95_ms": float(np.percentile(w, 95)),
            "cpu_median_ms": float(np.median(c)), "cpu_p95_ms": float(np.percentile(c, 95)), "n": len(w)}


def bench_compose(inputs: list[ViewerInput], size_wh: tuple[int, int], warmup: int) -> tuple[dict, list[np.ndarray]]:
    """Compose every input ('split', orbit swinging); the stats of the frames after ``warmup`` and all frames."""
    composer = Composer(size_wh, 640, 0.8)
    wall, cpu, frames = [], [], []
    for i, view in enumerate(inputs):
        yaw = 30.0 * math.sin(2 * math.pi * i / max(len(inputs), 1))
        settings = ViewSettings("split", Orbit(yaw_deg=yaw, distance_m=0.6))
        t, c = time.perf_counter(), time.process_time()
        frames.append(composer.compose(view, settings))
        if i >= warmup:
            wall.append((time.perf_counter() - t) * 1e3)
            cpu.append((time.process_time() - c) * 1e3)
    composer.close()
    return stats(wall, cpu), frames


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_mp4(frames: list[np.ndarray], preset: str, fps: float = 30.0) -> dict:
    """Write the frames with one x264 preset: wall ms per write() (caller blocked), encoder CPU ms per frame
    (the ffmpeg process, measured once it has exited) and the file size."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mp4"
        c0 = children_cpu_s()
        writer = VideoWriter(path, fps, preset=preset)
        wall = []
        for f in frames:
            t = time.perf_counter()
            writer.write(f)
            wall.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        writer.close()
        close_ms = (time.perf_counter() - t) * 1e3
        enc_cpu_ms = (children_cpu_s() - c0) * 1e3 / len(frames)
        size_kb = path.stat().st_size / 1024
    w = np.asarray(wall)
    return {"write_median_ms": float(np.median(w)), "write_p95_ms": float(np.percentile(w, 95)),
            "close_ms": close_ms, "encoder_cpu_ms_per_frame": enc_cpu_ms, "kb_per_frame": size_kb / len(frames)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=60, help="timed frames (after the warm-up)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--hands", type=int, default=1, choices=(1, 2))
    p.add_argument("--static-texture", action="store_true", help="the same TextureMap object every frame")
    p.add_argument("--presets", default=",".join(PRESETS), help="x264 presets to time, comma separated ('' none)")
    p.add_argument("--json", dest="json_path", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    inputs, size = make_inputs(args.frames + args.warmup, args.hands, args.static_texture)
    load_before = os.getloadavg()
    compose, frames = bench_compose(inputs, size, args.warmup)
    mp4 = {preset: bench_mp4(frames[args.warmup:], preset) for preset in filter(None, args.presets.split(","))}
    report = {"compose_split": compose, "mp4": mp4, "frame_shape": list(frames[0].shape), "args": vars(args),
              "load_before": load_before, "load_after": os.getloadavg(), "cpu_count": os.cpu_count()}
    print(f"compose split {frames[0].shape[1]}x{frames[0].shape[0]}: wall median {compose['wall_median_ms']:.1f} "
          f"p95 {compose['wall_p95_ms']:.1f} ms, CPU median {compose['cpu_median_ms']:.1f} "
          f"p95 {compose['cpu_p95_ms']:.1f} ms ({compose['n']} frames)")
    for preset, r in mp4.items():
        print(f"mp4 {preset:9s}: write median {r['write_median_ms']:.1f} p95 {r['write_p95_ms']:.1f} ms, "
              f"close {r['close_ms']:.0f} ms, ffmpeg CPU {r['encoder_cpu_ms_per_frame']:.1f} ms/frame, "
              f"{r['kb_per_frame']:.0f} kB/frame")
    print(f"load average before {load_before[0]:.1f}, after {report['load_after'][0]:.1f} on {os.cpu_count()} cores")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
