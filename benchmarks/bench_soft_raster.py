"""Soft silhouette renderer speed: ms per forward + backward of the silhouette MSE loss.

Usage: .venv/bin/python benchmarks/bench_soft_raster.py [--json out.json] [--backend auto|numba|torch|all]
       [--compile off|on|both]

Backends (SoftRasterConfig.backend): numba (the fused CPU kernels, float32 pair loops for float32 input), torch
(the per-pair tensor kernels; --compile on runs them through torch.compile). all = numba, then torch.

Scene: an icosphere (subdivisions 3: 642 vertices, 1280 faces; a MANO hand has 778 / 1538) of radius
--radius-m at 0.4 m in front of a pinhole camera with f = 1.5 W: 0.1 m (a hand's length across, spans 75 % of
the crop width, the default) and 0.05 m (0.1 m across, 38 %; closer to a real hand's pair count, since a hand
covers much less of its crop than a disc of its length).
Stereo = a batch of two views (the second sees the sphere shifted 5 mm).
The loss is mean((S - S_target)^2), S_target the silhouette of the sphere shifted by 1 cm.
Baseline: a dense pixels x faces evaluation of the same formula at 112^2 (one view), timed side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import trimesh

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.render import (  # noqa: E402
    SoftRasterConfig,
    SoftRasterizer,
    SoftSilhouetteRenderer,
    SoftSilhouetteShader,
    build_soft_silhouette_renderer,
)
from app.render.soft_raster import resolved_backend  # noqa: E402


def make_scene(size: int, n_views: int, radius_m: float, dtype=torch.float32):
    """Returns verts (B, V, 3) metres camera frame, faces (F, 3) int64, K (B, 3, 3), target (B, H, W)."""
    sphere = trimesh.creation.icosphere(subdivisions=3)
    verts = torch.as_tensor(sphere.vertices, dtype=dtype) * radius_m
    faces = torch.as_tensor(sphere.faces, dtype=torch.int64)
    shifts = torch.tensor([[0.0, 0.0, 0.4], [0.005, 0.0, 0.4]], dtype=dtype)[:n_views]
    verts = verts[None] + shifts[:, None, :]
    f = 1.5 * size
    c = (size - 1) / 2.0
    K = torch.tensor([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]], dtype=dtype).expand(n_views, 3, 3)
    return verts, faces, K.contiguous()


def dense_silhouette(verts, faces, K, cfg: SoftRasterConfig):
    """Baseline: every pixel x face pair, one edge at a time ((B, H*W, F) tensors), truncated like the renderer."""
    height, width = cfg.image_size
    z = verts[..., 2]
    uv = torch.stack(
        (K[:, 0, 0, None] * verts[..., 0] / z + K[:, 0, 2, None],
         K[:, 1, 1, None] * verts[..., 1] / z + K[:, 1, 2, None]),
        -1,
    )
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    px = xs.reshape(1, -1, 1).to(verts.dtype)
    py = ys.reshape(1, -1, 1).to(verts.dtype)
    tri = uv[:, faces]  # (B, F, 3, 2)
    d2 = None
    crosses = []
    for k in range(3):
        a, b = tri[:, None, :, k], tri[:, None, :, (k + 1) % 3]
        ex, ey = b[..., 0] - a[..., 0], b[..., 1] - a[..., 1]
        wx, wy = px - a[..., 0], py - a[..., 1]
        t = ((wx * ex + wy * ey) / (ex * ex + ey * ey)).clamp(0.0, 1.0)
        dk = (wx - t * ex) ** 2 + (wy - t * ey) ** 2
        d2 = dk if d2 is None else torch.minimum(d2, dk)
        crosses.append(ex * wy - ey * wx)
    inside = ((crosses[0] > 0) & (crosses[1] > 0) & (crosses[2] > 0)) | (
        (crosses[0] < 0) & (crosses[1] < 0) & (crosses[2] < 0)
    )
    x = torch.where(inside, d2, -d2) / cfg.sigma_px2
    log_miss = torch.where(inside | (d2 < cfg.blur_radius2_px2), -torch.nn.functional.softplus(x), 0.0)
    return (-torch.expm1(log_miss.sum(-1))).reshape(-1, height, width)


def time_iterations(render, verts, faces, K, target, runs: int, warmup: int):
    """Median and p95 ms (wall; CPU of this process in "cpu") of forward + backward of mean((S - target)^2)
    w.r.t. a vertex offset."""
    offset = torch.zeros_like(verts, requires_grad=True)
    times, cpu = [], []
    for i in range(warmup + runs):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = ((render(verts + offset, faces, K) - target) ** 2).mean()
        loss.backward()
        dt, dc = (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3
        offset.grad = None
        if i >= warmup:
            times.append(dt)
            cpu.append(dc)
    return {**percentiles(times), "cpu": percentiles(cpu), "runs": runs}


def percentiles(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"median_ms": statistics.median(s), "p95_ms": s[min(len(s) - 1, int(0.95 * len(s)))]}


def bench_case(size, n_views, radius_m, backend, compile_, runs, warmup):
    cfg = SoftRasterConfig(image_size=(size, size), backend=backend, compile=compile_)
    render = build_soft_silhouette_renderer(cfg)
    verts, faces, K = make_scene(size, n_views, radius_m)
    eager_cfg = dataclasses.replace(cfg, backend="torch", compile=False)
    with torch.no_grad():
        target = render(verts + torch.tensor([0.01, 0.0, 0.0]), faces, K)
        frags = SoftRasterizer(eager_cfg)(verts, faces, K)
        eager = SoftSilhouetteRenderer(SoftRasterizer(eager_cfg), SoftSilhouetteShader(eager_cfg))
        diff = float((render(verts, faces, K) - eager(verts, faces, K)).abs().max())
    res = time_iterations(render, verts, faces, K, target, runs, warmup)
    res.update(size=size, views=n_views, backend=resolved_backend(backend), compile=compile_,
               max_abs_diff_vs_torch_eager=diff, candidate_pairs=int(frags.pixel_index.numel()),
               kept_pairs=int(torch.isfinite(frags.signed_dist2_px2).sum()))
    return res


def bench_dense(size, radius_m, runs):
    cfg = SoftRasterConfig(image_size=(size, size))
    verts, faces, K = make_scene(size, 1, radius_m)
    with torch.no_grad():
        target = dense_silhouette(verts + torch.tensor([0.01, 0.0, 0.0]), faces, K, cfg)
        sparse = build_soft_silhouette_renderer(dataclasses.replace(cfg, compile=False))(verts, faces, K)
        diff = float((dense_silhouette(verts, faces, K, cfg) - sparse).abs().max())
    res = time_iterations(lambda v, f, k: dense_silhouette(v, f, k, cfg), verts, faces, K, target, runs, 1)
    res.update(size=size, views=1, compile=False, impl="dense", max_abs_diff_vs_sparse=diff)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--backend", choices=("auto", "numba", "torch", "all"), default="all")
    ap.add_argument("--compile", choices=("off", "on", "both"), default="off",
                    help="torch.compile the torch backend's kernels (ignored by numba)")
    ap.add_argument("--radius-m", type=float, nargs="+", default=[0.1, 0.05])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--dense-runs", type=int, default=5, help="0 skips the dense baseline")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    backends = ["numba", "torch"] if args.backend == "all" else [args.backend]
    modes = [(b, c) for b in backends for c in (compiles if resolved_backend(b) == "torch" else compiles[:1])]
    results = []
    for radius_m in args.radius_m:
        for backend, compile_ in modes:
            for size in (112, 224):
                for n_views in (1, 2):
                    r = bench_case(size, n_views, radius_m, backend, compile_, args.runs, args.warmup)
                    r.update(impl="sparse", radius_m=radius_m, load_avg_1min=os.getloadavg()[0])
                    results.append(r)
                    name = r["backend"] + (" + torch.compile" if r["backend"] == "torch" and compile_ else "")
                    print(f"sparse r={radius_m} m {name} {size}^2 views={n_views} (load {r['load_avg_1min']:.1f}): "
                          f"median {r['median_ms']:.2f} ms wall, {r['cpu']['median_ms']:.2f} ms CPU, p95 "
                          f"{r['p95_ms']:.2f} ms wall, pairs {r['candidate_pairs']} -> {r['kept_pairs']}, max "
                          f"|S - torch eager S| {r['max_abs_diff_vs_torch_eager']:.1e}", flush=True)
    if args.dense_runs > 0:
        radius_m = args.radius_m[0]
        dense = bench_dense(112, radius_m, args.dense_runs)
        dense["radius_m"] = radius_m
        results.append(dense)
        for r in results:
            if r["impl"] == "sparse" and r["size"] == 112 and r["views"] == 1 and r["radius_m"] == radius_m:
                r["speedup_vs_dense"] = dense["median_ms"] / r["median_ms"]
                print(f"dense 112^2 views=1 r={radius_m} m: median {dense['median_ms']:.0f} ms "
                      f"({r['speedup_vs_dense']:.0f}x the {r['backend']} renderer, compile={r['compile']}); "
                      f"max |sparse - dense| {dense['max_abs_diff_vs_sparse']:.1e}")
    out = {"threads": args.threads, "torch": torch.__version__, "load_avg_1min_at_end": os.getloadavg()[0],
           "note": "shared 2-core CPU, other jobs running; wall in median_ms / p95_ms, process CPU in cpu",
           "results": results}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
