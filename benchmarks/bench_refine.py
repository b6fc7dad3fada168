"""Test-time refinement and segmentation target: speed, and IoU on synthetic stereo hands.

Usage: .venv/bin/python benchmarks/bench_refine.py [--json out.json] [--backend auto|numba|torch]
       [--compile on|off|both] [--eval N]

Speed (no GL needed): ms per refinement iteration (forward + backward + SGD step of the whole loss) for one
view and stereo at 112^2 and 224^2, measured as (time of refine() with --iters steps - time with 0 steps) /
--iters, per run, so the per-call setup (input checks, the model at the input state, the final render) is left
out (the four configurations interleaved run by run, so that they see the same load); the full refine() call
with 3 steps is reported too, and the first call of a fresh refiner (Refiner.warm_up:
numba kernels compiled or loaded from their disk cache, torch.compile's compilation). --backend picks the soft
rasterizer (auto = numba on the CPU); --compile (torch.compile of the renderer's kernels) only changes the
torch backend. The loop's hand model is RefineConfig.lean_skinning's (--smplx-loop: smplx's autograd graph).
Scene: the open hand model in a random pose 0.3-0.5 m in front of a ZED-like rig (baseline 0.12 m, f = 700 px),
detection-style crops (keypoint box x 2), the true silhouettes as targets, the initial mesh a perturbed copy (0.1
rad per joint, 0.05 rad global, shape +-0.5, 5 mm).
Segmentation: ms per view of ColourSegmenter at 112^2 and 224^2 on rendered crops (needs the offscreen GL
renderer).
--mesh-eval N: N scenes whose targets are the true mesh's own silhouettes (no GL): silhouette IoU with the
targets before / after and MPVE (mm) for the paper preset, the paper preset without L_n, and the scaled preset
at 3, 10 and 15 iterations.
--eval N: N rendered stereo scenes (skin, forearm, lights, clutter; models/synth/scene.py): IoU against the
ground-truth hand masks (forearm excluded) of the seed (perturbed mesh) and of the segmentation target, of the
true mesh's silhouette (the ceiling: the forearm hides part of the wrist), and the
projection IoU / vertex error (MPVE, mm) of the mesh before and after refinement on the segmentation targets
(paper preset, paper preset without L_n, scaled preset at 3 and 10 iterations) and on the true masks (oracle).
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

import numpy as np
import torch
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.detection.crop import crop_affine, crop_intrinsics, keypoint_box  # noqa: E402
from app.geometry.camera import project  # noqa: E402
from app.reconstruction.mesh_losses import (  # noqa: E402
    build_mesh_topology,
    mesh_regularisers,
    vertex_offset_loss,
)
from app.reconstruction.refine import ViewTarget, build_refiner, refine_preset, views_at_size  # noqa: E402
from app.reconstruction.segmentation import (  # noqa: E402
    ColourSegmentationConfig,
    build_segmentation_target,
    mesh_silhouette_mask,
)
from app.render.soft_raster import resolved_backend  # noqa: E402
from app.types import HandMesh, HandState  # noqa: E402
from models.hand_model.layer import HandModel  # noqa: E402
from models.hand_model.mano_io import load_mano_dict, open_model_path  # noqa: E402
from models.hand_model.pose_space import angles_to_axis_angle, sample_angles  # noqa: E402
from models.synth.views import sample_view  # noqa: E402

K_FULL = np.array([[700.0, 0.0, 639.5], [0.0, 700.0, 359.5], [0.0, 0.0, 1.0]])
T_RIGHT = np.eye(4)
T_RIGHT[0, 3] = -0.12
VIEWS = (np.eye(4), T_RIGHT)


@dataclasses.dataclass(frozen=True)
class Case:
    """truth / init: HandMesh; cams: per view (K crop (3, 3), T_cam_left (4, 4)); colours etc. for rendering."""

    truth: HandMesh
    init: HandMesh
    cams: tuple
    rng_seed: int


class Scenes:
    """Random posed hands and their perturbed initialisations (the embedded open right-hand model, also when
    REALHANDS_MANO_DIR is set: the rendered scenes need its part labels and joint frames)."""

    def __init__(self):
        self.data = load_mano_dict(open_model_path("right"))
        self.model = HandModel(self.data, name="open")

    def mesh(self, state: HandState) -> HandMesh:
        with torch.no_grad():
            out = self.model(*(torch.from_numpy(a)[None] for a in (state.pose, state.shape, state.transl_m)))
        return HandMesh(0, 0, out.verts_m[0].numpy(), self.model.faces.numpy(), out.keypoints_m[0].numpy(), state)

    def truth(self, rng: np.random.Generator) -> HandState:
        view = sample_view(rng, None, distance_m=(0.3, 0.5))
        fingers = angles_to_axis_angle(sample_angles(rng, 1), self.data["joint_frames"])[0]
        pose = np.concatenate([Rotation.from_matrix(view.R_cam_model).as_rotvec(), fingers]).astype(np.float32)
        shape = rng.normal(0, 1, 10).astype(np.float32)
        centre = self.mesh(HandState(pose, shape, np.zeros(3, np.float32), False)).verts_m.mean(0)
        transl = np.array([0.06, 0.0, view.distance_m]) + np.r_[rng.normal(0, 0.01, 2), 0.0] - centre
        return HandState(pose, shape, transl.astype(np.float32), False)

    def case(self, seed: int, size: int) -> Case:
        rng = np.random.default_rng(seed)
        truth = self.truth(rng)
        pose = truth.pose + np.r_[rng.normal(0, 0.05, 3), rng.normal(0, 0.1, 45)].astype(np.float32)
        init = HandState(pose, (truth.shape + rng.normal(0, 0.5, 10)).astype(np.float32),
                         (truth.transl_m + rng.normal(0, 0.005, 3)).astype(np.float32), False)
        gt = self.mesh(truth)
        cams = []
        for T in VIEWS:
            kp = gt.joints_m.astype(np.float64) @ T[:3, :3].T + T[:3, 3]
            cams.append((crop_intrinsics(K_FULL, crop_affine(keypoint_box(project(kp, K_FULL), 2.0), size)), T))
        return Case(gt, self.mesh(init), tuple(cams), seed)


def mesh_targets(mesh: HandMesh, cams, size: int) -> list[ViewTarget]:
    return [ViewTarget(mesh_silhouette_mask(mesh.verts_m, mesh.faces, K, T, size).astype(np.float32), K, T)
            for K, T in cams]


def stats(samples_ms: list[float]) -> dict:
    s = sorted(samples_ms)
    return {"median_ms": statistics.median(s), "p95_ms": s[min(len(s) - 1, int(0.95 * len(s)))], "min_ms": s[0],
            "runs": len(s)}


def clocks() -> np.ndarray:
    """(wall, CPU) seconds: perf_counter and this process's CPU time (the CPU time barely grows while other
    jobs hold the cores, so it estimates the cost on an idle machine; torch runs one thread here)."""
    return np.array([time.perf_counter(), time.process_time()])


def wall_and_cpu(samples: list) -> dict:
    """samples: (wall_ms, cpu_ms) pairs -> {"wall": stats, "cpu": stats}."""
    a = np.asarray(samples, dtype=np.float64).reshape(-1, 2)
    return {"wall": stats(a[:, 0].tolist()), "cpu": stats(a[:, 1].tolist())}


def fmt(r: dict) -> str:
    w, c = r["wall"], r["cpu"]
    return (f"wall median {w['median_ms']:.2f} / p95 {w['p95_ms']:.2f} ms, CPU median {c['median_ms']:.2f} / "
            f"p95 {c['p95_ms']:.2f} ms")


def timed(fn) -> np.ndarray:
    """(wall_ms, cpu_ms) of one call."""
    t0 = clocks()
    fn()
    return (clocks() - t0) * 1e3


def refine_config(size: int, backend: str, compile_: bool, smplx_loop: bool = False, **kw):
    """The scaled preset at render size `size` with the benchmark's backend choices."""
    return refine_preset("scaled", render_size_px=size, backend=backend, compile=compile_,
                         lean_skinning=not smplx_loop, **kw)


CONFIGS = ((112, 1), (112, 2), (224, 1), (224, 2))


class IterationBench:
    """One (render size, views) configuration of a mode: refiners with --iters, 0 and 3 steps sharing one
    renderer, 4 scenes; run(k) times scene k % 4 once."""

    def __init__(self, scenes: Scenes, size: int, n_views: int, mode: dict, iters: int):
        cfg = refine_config(size, **mode)
        self.size, self.n_views, self.mode, self.iters = size, n_views, mode, iters
        self.backend = resolved_backend(cfg.backend)
        self.full = build_refiner(dataclasses.replace(cfg, iterations=iters), scenes.model)
        self.first = timed(self.full.warm_up)  # compiles / loads the kernels (numba cache, inductor cache)
        self.base = build_refiner(dataclasses.replace(cfg, iterations=0), scenes.model)
        self.three = build_refiner(dataclasses.replace(cfg, iterations=3), scenes.model)
        self.base.renderer = self.three.renderer = self.full.renderer  # one (compiled) renderer for all
        cases = [scenes.case(100 + k, size) for k in range(4)]
        self.problems = [(c.init, mesh_targets(c.truth, c.cams, size)[:n_views]) for c in cases]
        for init, targets in self.problems:  # warm-up
            self.full.refine(init, targets)
        self.per_iter, self.calls = [], []

    def run(self, k: int) -> None:
        init, targets = self.problems[k % len(self.problems)]
        t_base = timed(lambda: self.base.refine(init, targets))
        t_full = timed(lambda: self.full.refine(init, targets))
        self.calls.append(timed(lambda: self.three.refine(init, targets)))
        self.per_iter.append((t_full - t_base) / self.iters)

    def result(self) -> dict:
        return {"size": self.size, "views": self.n_views, **self.mode, "backend_resolved": self.backend,
                "first_call_ms": {"wall": float(self.first[0]), "cpu": float(self.first[1])},
                "per_iteration": wall_and_cpu(self.per_iter), "refine_call_3_iterations": wall_and_cpu(self.calls)}


def bench_iterations(scenes: Scenes, mode: dict, runs: int, iters: int) -> list[dict]:
    """Per-iteration and refine() timings of the four CONFIGS, interleaved run by run (each sees the same
    machine load)."""
    benches = [IterationBench(scenes, size, n_views, mode, iters) for size, n_views in CONFIGS]
    for k in range(runs):
        for bench in benches:
            bench.run(k)
    return [b.result() for b in benches]


def bench_breakdown(scenes: Scenes, size: int, mode: dict, runs: int) -> dict:
    """Where a stereo iteration's time goes: forward + backward of the loop's hand model alone (and of smplx's,
    for reference), of the silhouette MSE alone (both views), and of the mesh regularisers alone (L_v + the
    refiner's L_n + L_lap + 0.1 L_edge), interleaved run by run."""
    refiner = build_refiner(refine_config(size, **mode), scenes.model)
    case = scenes.case(100, size)
    views = views_at_size(mesh_targets(case.truth, case.cams, size), size)
    topo = build_mesh_topology(scenes.model.faces, scenes.model.num_verts)
    st = case.init.state
    pose, shape, transl = (torch.from_numpy(a)[None].requires_grad_(True) for a in (st.pose, st.shape, st.transl_m))
    dshape = torch.zeros(1, 10, requires_grad=True)
    dv = torch.zeros(scenes.model.num_verts, 3, requires_grad=True)
    verts = torch.from_numpy(case.init.verts_m)
    shaped = refiner.skin.shaped(shape) if refiner.skin is not None else None

    def model_step():
        if refiner.skin is None:
            return smplx_step()
        (refiner.skin(shaped, pose, dshape) + transl).sum().backward()

    def smplx_step():
        scenes.model(pose, shape + dshape, transl).verts_m.sum().backward()

    def render_step():
        v = (verts + dv)[None] @ views.R.transpose(1, 2) + views.t[:, None, :]
        ((refiner.renderer(v, scenes.model.faces, views.K) - views.mask) ** 2).mean().backward()

    def regulariser_step():
        v = verts + dv
        (vertex_offset_loss(dv) + mesh_regularisers(v, topo, 1.0, 1.0, 0.1)).backward()

    parts = {"hand_model": model_step, "hand_model_smplx": smplx_step, "silhouette_2_views": render_step,
             "regularisers": regulariser_step}
    for fn in parts.values():  # warm-up (compiles)
        fn()
    times: dict = {k: [] for k in parts}
    for _ in range(runs):
        for name, fn in parts.items():
            times[name].append(timed(fn))
    return {"size": size, **mode, **{k: wall_and_cpu(v) for k, v in times.items()}}


def render_case(scenes: Scenes, case: Case, renderers: dict, size: int):
    """Per view (rgb (S, S, 3) uint8, ground-truth hand mask (S, S) bool) of the case's true hand."""
    from models.synth.appearance import random_background, skin_vertex_colours
    from models.synth.forearm import pose_forearm
    from models.synth.scene import FOREARM_LABEL, FOREARM_VERTS_M, HandScene, face_parts, render_scene, sample_lighting

    if size not in renderers:
        from app.offscreen.renderer import OffscreenRenderer

        renderers[size] = OffscreenRenderer(size, size)
    rng = np.random.default_rng(10_000 + case.rng_seed)
    d, model, st = scenes.data, scenes.model, case.truth.state
    rest = np.asarray(d["v_template"])
    colours = skin_vertex_colours(rest, np.asarray(d["J_regressor"]) @ rest, model.tip_vertex_ids.numpy(), rng)
    root = model.rest_joints(torch.from_numpy(st.shape)[None])[0, 0].numpy()
    arm = pose_forearm(FOREARM_VERTS_M, Rotation.from_rotvec(st.pose[:3]).as_matrix(), root, st.transl_m)
    faces = case.truth.faces
    scene = HandScene(case.truth.verts_m, faces, face_parts(np.asarray(d["vertex_part"]), faces), colours,
                      arm.astype(np.float32), colours[faces[0, 0]], sample_lighting(rng))
    background = random_background(rng, size, size)
    out = []
    for K, T in case.cams:
        view = render_scene(renderers[size], scene, K, background, T_cam_left=T)
        out.append((view.rgb, (view.parts >= 0) & (view.parts != FOREARM_LABEL)))
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def projection_iou(mesh: HandMesh, cams, truths, size: int) -> float:
    """Mean over views of the IoU of the mesh's hard silhouette with the true hand mask."""
    return float(np.mean([iou(mesh_silhouette_mask(mesh.verts_m, mesh.faces, K, T, size), m)
                          for (K, T), m in zip(cams, truths, strict=True)]))


def mpve_mm(a: HandMesh, b: HandMesh) -> float:
    return float(np.linalg.norm(a.verts_m - b.verts_m, axis=1).mean() * 1000)


VARIANTS = {"paper_3": ("paper", {}), "paper_no_normal_3": ("paper", {"w_normal": 0.0}),
            "scaled_3": ("scaled", {}), "scaled_10": ("scaled", {"iterations": 10}),
            "scaled_15": ("scaled", {"iterations": 15})}


def variant_refiners(scenes: Scenes, compile_: bool) -> dict:
    return {name: build_refiner(refine_preset(p, render_size_px=112, compile=compile_, **kw), scenes.model)
            for name, (p, kw) in VARIANTS.items()}


def evaluate_on_mesh_targets(scenes: Scenes, n: int, size: int, compile_: bool) -> dict:
    """Silhouette IoU with the targets and MPVE when the targets are the true mesh's own hard silhouettes."""
    refiners = variant_refiners(scenes, compile_)
    rows = []
    for k in range(n):
        case = scenes.case(400 + k, size)
        targets = mesh_targets(case.truth, case.cams, size)
        row = {"mpve_init_mm": mpve_mm(case.init, case.truth)}
        for name, ref in refiners.items():
            res = ref.refine(case.init, targets)
            row.update({f"iou_before_{name}": res.iou_before, f"iou_after_{name}": res.iou_after,
                        f"mpve_{name}_mm": mpve_mm(res.mesh, case.truth), f"diverged_{name}": res.diverged})
        rows.append(row)
    return {"scenes": n, "crop_size": size, "mean": {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}}


def evaluate(scenes: Scenes, n: int, size: int, compile_: bool) -> dict:
    """IoU and vertex error figures on n rendered stereo scenes (see the module docstring)."""
    renderers: dict = {}
    seg_cfg = ColourSegmentationConfig()
    refiners = variant_refiners(scenes, compile_)
    rows, seg_ms = [], []
    for k in range(n):
        case = scenes.case(200 + k, size)
        views = render_case(scenes, case, renderers, size)
        truths = [m for _, m in views]
        seeds = [mesh_silhouette_mask(case.init.verts_m, case.init.faces, K, T, size) for K, T in case.cams]
        masks = []
        for (rgb, _), seed in zip(views, seeds, strict=True):
            seg = build_segmentation_target(seg_cfg)  # a fresh colour model per scene and view
            t0 = clocks()
            masks.append(seg(rgb, seed))
            seg_ms.append((clocks() - t0) * 1e3)
        seg_targets = [ViewTarget(m, K, T) for m, (K, T) in zip(masks, case.cams, strict=True)]
        oracle = [ViewTarget(m.astype(np.float32), K, T) for m, (K, T) in zip(truths, case.cams, strict=True)]
        row = {"seed_iou": float(np.mean([iou(s, t) for s, t in zip(seeds, truths, strict=True)])),
               "target_iou": float(np.mean([iou(m > 0.5, t) for m, t in zip(masks, truths, strict=True)])),
               "proj_iou_truth": projection_iou(case.truth, case.cams, truths, size),
               "proj_iou_init": projection_iou(case.init, case.cams, truths, size),
               "mpve_init_mm": mpve_mm(case.init, case.truth)}
        for name, ref in refiners.items():
            res = ref.refine(case.init, seg_targets)
            row[f"proj_iou_{name}"] = projection_iou(res.mesh, case.cams, truths, size)
            row[f"mpve_{name}_mm"] = mpve_mm(res.mesh, case.truth)
            row[f"diverged_{name}"] = res.diverged
        res = refiners["scaled_3"].refine(case.init, oracle)
        row["proj_iou_scaled_3_oracle"] = projection_iou(res.mesh, case.cams, truths, size)
        row["mpve_scaled_3_oracle_mm"] = mpve_mm(res.mesh, case.truth)
        rows.append(row)
    for r in renderers.values():
        r.close()
    summary = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    return {"scenes": n, "crop_size": size, "mean": summary, "segmentation_ms_per_view": wall_and_cpu(seg_ms)}


def bench_segmentation(scenes: Scenes, size: int, runs: int) -> dict:
    renderers: dict = {}
    cases = [scenes.case(300 + k, size) for k in range(4)]
    inputs = []
    for case in cases:
        (rgb, _), _ = render_case(scenes, case, renderers, size)
        K, T = case.cams[0]
        inputs.append((rgb, mesh_silhouette_mask(case.init.verts_m, case.init.faces, K, T, size)))
    out = {}
    for name, cfg in {"default": ColourSegmentationConfig(),
                      "grabcut_2": ColourSegmentationConfig(grabcut_iters=2)}.items():
        seg = build_segmentation_target(cfg)
        times = []
        for k in range(runs):
            rgb, seed = inputs[k % len(inputs)]
            times.append(timed(lambda: seg(rgb, seed)))  # noqa: B023 - called at once
        out[name] = wall_and_cpu(times)
    for r in renderers.values():
        r.close()
    return {"size": size, **out}


def timing_modes(args) -> list[dict]:
    """The (backend, compile_, smplx_loop) combinations to time; compile only matters for the torch backend."""
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    if resolved_backend(args.backend) != "torch":
        compiles = compiles[:1]
    return [{"backend": args.backend, "compile_": c, "smplx_loop": args.smplx_loop} for c in compiles]


def mode_name(mode: dict) -> str:
    backend = resolved_backend(mode["backend"])
    name = f"{backend}{' + torch.compile' if backend == 'torch' and mode['compile_'] else ''}"
    return name + (" (smplx in the loop)" if mode["smplx_loop"] else "")


def run_timings(scenes: Scenes, args, out: dict) -> None:
    """The speed figures (module docstring), printed and stored in out."""
    for mode in timing_modes(args):
        load = os.getloadavg()[0]
        for r in bench_iterations(scenes, mode, args.runs, args.iters):
            r["load_avg_1min"] = [load, os.getloadavg()[0]]
            out.setdefault("refine", []).append(r)
            print(f"refine {mode_name(mode)} {r['size']}^2 views={r['views']} (load {load:.1f} -> "
                  f"{r['load_avg_1min'][1]:.1f}): per iteration {fmt(r['per_iteration'])}; refine() with 3 "
                  f"iterations {fmt(r['refine_call_3_iterations'])}; first call {r['first_call_ms']['wall'] / 1e3:.2f}"
                  " s wall", flush=True)
        for size in (112, 224):
            r = bench_breakdown(scenes, size, mode, args.runs)
            out.setdefault("breakdown", []).append(r)
            print(f"breakdown {mode_name(mode)} {size}^2 stereo, fwd + bwd: " + "; ".join(
                f"{k} {fmt(r[k])}" for k in ("hand_model", "hand_model_smplx", "silhouette_2_views",
                                             "regularisers")), flush=True)
    for size in () if args.no_segmentation else (112, 224):
        r = bench_segmentation(scenes, size, args.runs)
        out.setdefault("segmentation", []).append(r)
        print(f"segmentation {size}^2 per view: default {fmt(r['default'])}; with GrabCut (2 iterations) "
              f"{fmt(r['grabcut_2'])}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--backend", choices=("auto", "numba", "torch"), default="auto",
                    help="soft rasterizer backend (auto = numba on the CPU when importable)")
    ap.add_argument("--compile", choices=("off", "on", "both"), default="off",
                    help="torch.compile the torch backend's kernels (ignored by numba)")
    ap.add_argument("--smplx-loop", action="store_true", help="pose the hand through smplx inside the loop "
                    "(RefineConfig.lean_skinning=False)")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--iters", type=int, default=5, help="steps per timed refine() call")
    ap.add_argument("--eval", type=int, default=0, help="rendered stereo scenes for the IoU figures (0 = none)")
    ap.add_argument("--mesh-eval", type=int, default=0, help="scenes for the IoU / MPVE figures with the true "
                    "mesh silhouettes as targets (no GL needed; 0 = none)")
    ap.add_argument("--no-segmentation", action="store_true", help="skip the GL-rendered segmentation timing")
    ap.add_argument("--no-timing", action="store_true", help="skip all timings (only --eval)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    scenes = Scenes()
    out = {"threads": args.threads, "torch": torch.__version__, "load_avg_1min_at_start": os.getloadavg()[0]}
    if not args.no_timing:
        run_timings(scenes, args, out)
    if args.mesh_eval > 0:
        out["mesh_eval"] = evaluate_on_mesh_targets(scenes, args.mesh_eval, 224, compile_=args.compile != "off")
        print(json.dumps(out["mesh_eval"], indent=1), flush=True)
    if args.eval > 0:
        out["eval"] = evaluate(scenes, args.eval, 224, compile_=args.compile != "off")
        print(json.dumps(out["eval"], indent=1), flush=True)
    out["load_avg_1min_at_end"] = os.getloadavg()[0]
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
