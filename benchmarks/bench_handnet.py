"""HandNet speed: ms per stereo forward pass (both views batched, fused flow, with and without segmentation).

Usage: .venv/bin/python benchmarks/bench_handnet.py [--json out.json] [--runs 20] [--threads 2]
       [--configs full,reduced,reduced@128] [--device auto|cpu|cuda]

Inputs: one stereo pair of random crops (224x224, or S x S for NAME@S) and 21-channel heatmaps (B = 1 hand,
2 views), eval mode, ``torch.no_grad``. CPU: float32, ``--threads`` intra-op threads (default 1: on the busy
shared 2-core machine 2 threads ran the reduced net 20x slower). CUDA (when available and --device is auto or
cuda): half precision, channels-last, synchronised timings. Reported: median and p95 over --runs timed calls after
3 warm-up calls; the rows are interleaved run by run so load changes on a shared machine hit all of them alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.handnet import build_handnet, handnet_preset  # noqa: E402


def preset_config(name: str):
    """A HandNet preset by name; 'NAME@S' is that preset at S px crops (e.g. 'reduced@128', the cpu-learn net)."""
    base, _, size = name.partition("@")
    cfg = handnet_preset(base)
    return dataclasses.replace(cfg, crop_size=int(size)) if size else cfg


def make_case(name: str, device: torch.device, segment: bool):
    """(label, callable running one stereo forward) for a HandNet preset on a device."""
    net = build_handnet(preset_config(name)).eval()
    s = net.cfg.crop_size
    images, heat = torch.randn(1, 2, 3, s, s), torch.randn(1, 2, 21, s, s)
    if device.type == "cuda":
        net = net.half().to(device, memory_format=torch.channels_last)
        net.stereo.float()
        images, heat = images.half().to(device), heat.half().to(device)

    def run():
        with torch.no_grad():
            out = net(images.flatten(0, 1), heat.flatten(0, 1), "fused", segment=segment)
            net.fuse_views(*(type(out)(out.pose[i:i + 1].float(), out.shape[i:i + 1].float(),
                                       out.cam[i:i + 1].float(), out.features[i:i + 1].float()) for i in (0, 1)))
        if device.type == "cuda":
            torch.cuda.synchronize()

    label = f"{name} {device.type}{' +seg' if segment else ''}"
    return label, run


def time_cases(cases, runs: int) -> dict:
    for _, fn in cases:
        for _ in range(3):
            fn()
    times = {label: [] for label, _ in cases}
    for _ in range(runs):
        for label, fn in cases:
            t0 = time.perf_counter()
            fn()
            times[label].append((time.perf_counter() - t0) * 1e3)
    return {label: {"median_ms": statistics.median(v), "p95_ms": sorted(v)[max(0, int(0.95 * len(v)) - 1)],
                    "runs": len(v)} for label, v in times.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", default="")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--configs", default="full,reduced")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] if args.device != "cuda" else []
    if args.device in ("auto", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    cases = [make_case(n, d, seg) for d in devices for n in args.configs.split(",") for seg in (False, True)]
    result = time_cases(cases, args.runs)
    for label, r in result.items():
        print(f"{label:24s} median {r['median_ms']:8.1f} ms   p95 {r['p95_ms']:8.1f} ms")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        meta = {"threads": args.threads, "torch": torch.__version__,
                "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
        Path(args.json).write_text(json.dumps({"meta": meta, "results": result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
