"""Texture stage speed: ms per stereo update (``TextureAccumulator.update``: projection, visibility, sampling,
the thesis 4.2.5 update and the TextureMap) at 512^2 and other sizes, median and p95.

Usage: .venv/bin/python benchmarks/bench_texture.py [--json out.json] [--frames 12] [--rounds 5]
       [--sizes 512,256,1024] [--mode 640x360] [--variants splat-numba,splat-eager,splat-compiled,raster-numba]

Frames: the synthetic capture source (seed 0, ambient light, 640x360 per eye unless --mode), rendered and
posed (ground-truth meshes) before timing, so only the texture stage is timed. Each variant (visibility backend
x kernels x texture size; kernels: numba = TextureConfig.kernels 'numba', eager / compiled = the torch
reference without / with torch.compile) gets its own accumulator, warmed up on two frames (compilation; the
first update's wall time is reported as first_update_ms), then all variants are timed frame by frame in turn,
``--rounds`` passes over the frames, so that changing load on a shared machine hits them alike. Every update
is a full ``update()``: the fill of never-seen texels runs on its schedule (every 10th update) and counts.
Reported per variant: wall-clock (perf_counter) and thread CPU time (thread_time) median and p95 in ms, and
the median per-stage CPU split of one extra pass.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.capture.synthetic import open_hand_model  # noqa: E402
from app.texture.accumulator import ZNEAR_M, TextureAccumulator  # noqa: E402
from app.texture.bench import BenchConfig, _truth_mesh, open_sequence  # noqa: E402
from app.texture.config import TextureConfig  # noqa: E402
from app.texture.projection import sample_views  # noqa: E402


def load_frames(n: int, mode: str) -> list:
    """(mesh, frame) pairs of the first n frames of the benchmark sequence."""
    model = open_hand_model("right")
    source = open_sequence(BenchConfig(frames=n, gt_pose=True, mode=mode))
    try:
        pairs = []
        while (frame := source.read()) is not None:
            pairs.append((_truth_mesh(source, frame, model.faces.numpy()), frame))
        return pairs
    finally:
        source.close()


def build_variant(name: str, size: int) -> TextureAccumulator:
    """BACKEND-KERNELS: splat|raster - numba|eager|compiled."""
    backend, kernels = name.split("-")
    cfg = TextureConfig(size=size, visibility=backend, kernels="numba" if kernels == "numba" else "torch",
                        compile=kernels == "compiled")
    return TextureAccumulator(cfg, open_hand_model("right"))


def stage_split(acc: TextureAccumulator, pairs: list) -> dict:
    """Median CPU ms per stage over one pass (the same work as update(), step by step)."""
    times: dict[str, list] = {}

    def lap(key, t0):
        times.setdefault(key, []).append((time.thread_time() - t0) * 1e3)
        return time.thread_time()

    if acc.kernels_used == "numba":
        return numba_stage_split(acc, pairs, lap, times)
    for mesh, frame in pairs:
        t = time.thread_time()
        g = acc.geometry(mesh, frame)
        t = lap("geometry (projection, depth grid)", t)
        w = acc.kernels.weights(g.thr, g.flat, g.z_m, g.cos, g.slope_per_m, *acc._scalars)
        t = lap("weights", t)
        colours = sample_views(g.images, g.x_px, g.y_px, g.verts_px)
        t = lap("bilinear sampling", t)
        acc._update_slots(g.slots, colours, w)
        t = lap("fuse + update", t)
        acc.texture()
        lap("TextureMap", t)
    return {k: float(np.median(v)) for k, v in times.items()}


def numba_stage_split(acc: TextureAccumulator, pairs: list, lap, times: dict) -> dict:
    """stage_split of the numba path (accumulator._update_fused step by step; the fill on its schedule)."""
    for mesh, frame in pairs:
        t = time.thread_time()
        geo = acc.fused_geometry(mesh, frame)
        t = lap("place (vertices, facing faces, grid frame)", t)
        thr = acc._fused.depth_grid(acc._topology, geo, acc.cfg.visibility, ZNEAR_M)
        t = lap("projection + depth grid (slots projected and z-buffered, thresholds)", t)
        acc._fused_write(geo, thr, frame)
        t = lap("update (weights, sampling, fusion, thesis update, image writes)", t)
        acc._n_updates += 1
        acc._refill_if_due()
        t = lap("fill (every 10th update)", t)
        acc.texture()
        lap("TextureMap (copy of the image)", t)
    return {k: float(np.median(v)) for k, v in times.items()}


def summary(values: list) -> dict:
    return {"median_ms": float(np.median(values)), "p95_ms": float(np.percentile(values, 95)), "n": len(values)}


def run(args) -> dict:
    torch.set_num_threads(1)
    pairs = load_frames(args.frames, args.mode)
    variants = {(v, s): build_variant(v, s) for s in args.sizes for v in args.variants}
    first_ms = {}
    for key, acc in variants.items():
        for i, (mesh, frame) in enumerate(pairs[:2]):
            t_wall = time.perf_counter()
            acc.update(mesh, frame)
            if i == 0:
                first_ms[key] = (time.perf_counter() - t_wall) * 1e3
        acc.reset()
    wall = {k: [] for k in variants}
    cpu = {k: [] for k in variants}
    load = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for mesh, frame in pairs:
            for key, acc in variants.items():
                t_wall, t_cpu = time.perf_counter(), time.thread_time()
                acc.update(mesh, frame)
                wall[key].append((time.perf_counter() - t_wall) * 1e3)
                cpu[key].append((time.thread_time() - t_cpu) * 1e3)
        load.append(os.getloadavg()[0])
    results = {f"{v} {s}^2": {"wall": summary(wall[(v, s)]), "cpu": summary(cpu[(v, s)]),
                              "first_update_ms": first_ms[(v, s)], "kernels_used": variants[(v, s)].kernels_used,
                              "stages_cpu_ms": stage_split(variants[(v, s)], pairs)} for v, s in variants}
    return {"frames": args.frames, "rounds": args.rounds, "mode": args.mode, "load_average_1min": load,
            "variants": results}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", help="write the results here")
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--sizes", default="512", help="comma-separated texture sizes")
    p.add_argument("--mode", default="640x360")
    p.add_argument("--variants", default="splat-numba,splat-eager",
                   help="comma-separated BACKEND-KERNELS: splat|raster - numba|eager|compiled")
    args = p.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.variants = args.variants.split(",")
    out = run(args)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
