"""Synthetic stereo generator speed: stereo samples per second at 640x360 and HD720, 1 and 2 workers.

Usage: .venv/bin/python benchmarks/bench_synth.py [--n 20] [--modes 640x360,HD720] [--workers 1,2] [--json out.json]

Each configuration writes --n samples (zed-mini rig, PNG, procedural backgrounds, skin textures 512 px, no
MediaPipe) into a temporary folder through models.synth.generate.run_samples, as ``python -m models.synth
generate`` does. Reported per configuration:
- per-sample seconds inside a worker (draw + render both views + labels + PNG/npz writing), median and p95;
- throughput: samples per second between the first and the last sample's arrival in the parent (worker
  start-up excluded), and the wall time including start-up;
- for 1 worker, the median split of a sample into draw (pose, skin, lights, background), render (colour + part
  pass, both views) and write (PNG encoding + npz), measured on separate calls.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.synth.dataset import sample_files  # noqa: E402
from models.synth.generate import (  # noqa: E402
    GenerateConfig,
    SampleMaker,
    prepare_out_dir,
    resolve_rig,
    run_samples,
    write_sample,
)


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def time_run(mode: str, workers: int, n: int, seed: int) -> dict:
    """Generate n samples; per-sample worker seconds, steady throughput and wall time."""
    cfg = GenerateConfig(n=n, seed=seed, mode=mode, workers=workers, mediapipe=False, progress=False)
    calib = resolve_rig(cfg.rig, cfg.mode)
    with tempfile.TemporaryDirectory() as tmp:
        root = prepare_out_dir(tmp, overwrite=False)
        t0 = time.monotonic()
        arrivals, records = [], []
        for rec in run_samples(calib, cfg, root):
            arrivals.append(time.monotonic())
            records.append(rec)
    per = [r.seconds for r in records]
    steady = (n - 1) / (arrivals[-1] - arrivals[0]) if n > 1 else float("nan")
    return {"mode": mode, "workers": workers, "n": n, "median_s": statistics.median(per), "p95_s": p95(per),
            "samples_per_s": steady, "wall_s": arrivals[-1] - t0}


def time_stages(mode: str, n: int, seed: int) -> dict:
    """Median seconds of draw, render and write of one sample, in this process."""
    cfg = GenerateConfig(n=n, seed=seed, mode=mode, mediapipe=False, progress=False)
    maker = SampleMaker(resolve_rig(cfg.rig, cfg.mode), cfg)
    stages = {"draw_s": [], "render_s": [], "write_s": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = prepare_out_dir(tmp, overwrite=False)
        for i in range(n):
            t0 = time.perf_counter()
            s = maker.scene(i)
            t1 = time.perf_counter()
            maker.render(s)
            t2 = time.perf_counter()
            sample = maker.make(i)
            t3 = time.perf_counter()
            write_sample(sample_files(root, i, "png"), sample, "png", 95)
            t4 = time.perf_counter()
            for key, dt in zip(stages, (t1 - t0, t2 - t1, t4 - t3), strict=True):
                stages[key].append(dt)
    maker.close()
    return {"mode": mode, **{k: statistics.median(v) for k, v in stages.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20, help="samples per configuration")
    p.add_argument("--modes", default="640x360,HD720")
    p.add_argument("--workers", default="1,2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    modes, workers = args.modes.split(","), [int(w) for w in args.workers.split(",")]
    runs = [time_run(m, w, args.n, args.seed) for m in modes for w in workers]
    stages = [time_stages(m, min(args.n, 8), args.seed) for m in modes]
    for r in runs:
        print(f"{r['mode']:>8} workers={r['workers']}: {r['samples_per_s']:.2f} samples/s, per sample median "
              f"{r['median_s']:.3f} s p95 {r['p95_s']:.3f} s, wall {r['wall_s']:.1f} s (n={r['n']})")
    for s in stages:
        print(f"{s['mode']:>8} stages (1 worker, median s): draw {s['draw_s']:.3f} render {s['render_s']:.3f} "
              f"write {s['write_s']:.3f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"runs": runs, "stages": stages}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
