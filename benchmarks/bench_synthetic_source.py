"""Synthetic source speed: ms per stereo frame of ``read()`` (pose the hand, render both views, composite).

Usage: .venv/bin/python benchmarks/bench_synthetic_source.py [--frames 60] [--json out.json]

Configurations (all ``pace=fast``, seed 0, the default ZED Mini rig): 640x360 one hand (the live default),
640x360 two hands, 640x360 with ``aa=1`` (pyrender's 4x multisampling), HD720 one hand. Every source is opened
first; then the reads are interleaved round-robin, one frame of each configuration per round, after 5 warm-up
frames each, so load changes on the shared machine hit all of them alike. Also timed at 640x360, one hand:
``ground_truth(i, masks=False)`` (model evaluation + projection only) and ``ground_truth(i)`` (plus the
segmentation pass of both views). Prints wall-clock median, p95 and min ms (the min approaches an idle machine's
figure), the median and p95 CPU ms of the whole process per call (all threads: the GL thread and Mesa llvmpipe's
render threads included; what a frame costs whatever the load) and the load average before and after.
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

from app.capture import open_source  # noqa: E402

CONFIGS = {
    "640x360 1 hand": "synthetic?pace=fast&mode=640x360",
    "640x360 2 hands": "synthetic?pace=fast&mode=640x360&hands=2",
    "640x360 1 hand aa=1": "synthetic?pace=fast&mode=640x360&aa=1",
    "HD720 1 hand": "synthetic?pace=fast&mode=HD720",
}


def stats(ms: list[tuple[float, float]]) -> dict:
    """Wall and CPU ms per call -> median / p95 / min wall ms, median / p95 CPU ms, calls per second at the
    median."""
    wall, cpu = np.array(ms).T
    return {"median_ms": float(np.median(wall)), "p95_ms": float(np.percentile(wall, 95)),
            "min_ms": float(wall.min()), "cpu_median_ms": float(np.median(cpu)),
            "cpu_p95_ms": float(np.percentile(cpu, 95)), "n": len(wall),
            "fps_at_median": float(1000.0 / np.median(wall))}


def timed(fn) -> tuple[float, float]:
    """(wall ms, CPU ms of the whole process, all threads: the GL thread and Mesa's render threads included)."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - t) * 1e3, (time.process_time() - c) * 1e3


def bench_reads(frames: int) -> dict:
    sources = {name: open_source(uri) for name, uri in CONFIGS.items()}
    try:
        for src in sources.values():
            for _ in range(5):
                src.read()
        ms = {name: [] for name in sources}
        for _ in range(frames):
            for name, src in sources.items():
                ms[name].append(timed(src.read))
        return {name: stats(v) for name, v in ms.items()}
    finally:
        for src in sources.values():
            src.close()


def bench_truth(frames: int) -> dict:
    with open_source(CONFIGS["640x360 1 hand"]) as src:
        src.ground_truth(0)
        pose = [timed(lambda i=i: src.ground_truth(1000 + i, masks=False)) for i in range(frames)]
        masks = [timed(lambda i=i: src.ground_truth(2000 + i)) for i in range(frames)]
    return {"ground_truth masks=False": stats(pose), "ground_truth with masks": stats(masks)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=60, help="timed frames per configuration")
    p.add_argument("--json", dest="json_path", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    results = {**bench_reads(args.frames), **bench_truth(args.frames)}
    report = {"results": results, "load_before": load_before, "load_after": os.getloadavg(),
              "cpu_count": os.cpu_count()}
    for name, r in results.items():
        print(f"{name:28s} median {r['median_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  min {r['min_ms']:6.1f} ms  "
              f"CPU {r['cpu_median_ms']:6.1f} / p95 {r['cpu_p95_ms']:6.1f} ms  "
              f"({r['fps_at_median']:.0f} /s at the median)")
    print(f"load average before {load_before[0]:.1f}, after {report['load_after'][0]:.1f} on {os.cpu_count()} cores")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
