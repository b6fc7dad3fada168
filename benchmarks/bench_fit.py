"""Model-fit initialiser: accuracy against synthetic ground truth and time per hand (CPU, one torch thread).

Synthetic ground truth from the hand model itself (``app.reconstruction.synthetic``): random plausible poses
(the open model's synergy sampler), random shapes N(0, 1), uniform global rotations, the hand 0.3-0.6 m in
front of a rectified ZED Mini at 640x360, keypoints projected to both views with Gaussian pixel noise,
triangulated as the detection stage does. Right and left hands alternate.

Per sample: 1. a cold fit of the stereo observation; 2. a short sequence of ``--frames`` frames in which the
hand moves a little each frame (pose +-0.05 rad, rotation +-0.03 rad, translation +-4 mm), each fitted
warm from the previous fit; 3. the same for the left view alone plus MediaPipe-like world landmarks (mono);
4. the cold stereo fit with one gross outlier keypoint (3D point moved 6 cm, its pixels 40 px).
Reports PA-MPVE / MPVE / PA-MPJPE (mm, against the true vertices / keypoints) and milliseconds per hand
(median and p95) of ``HandFitter.fit`` (the whole stage: validation, fit and the 778-vertex mesh).

    .venv/bin/python benchmarks/bench_fit.py --samples 40 --frames 5 --json out/bench_fit.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import HandModelConfig, merge_config  # noqa: E402
from app.geometry.procrustes import mpjpe, pa_mpjpe  # noqa: E402
from app.reconstruction import synthetic as syn  # noqa: E402
from app.reconstruction.fit import FitConfig, build_fitter  # noqa: E402
from app.types import HandState  # noqa: E402
from calibration.presets import preset_rig  # noqa: E402


def errors_mm(mesh, verts_m, keypoints_m) -> dict:
    return {"pa_mpve": 1000 * float(pa_mpjpe(mesh.verts_m, verts_m)),
            "mpve": 1000 * float(mpjpe(mesh.verts_m, verts_m)),
            "pa_mpjpe": 1000 * float(pa_mpjpe(mesh.joints_m, keypoints_m))}


def moved(state: HandState, rng: np.random.Generator) -> HandState:
    """The hand a frame later: small random changes of pose, rotation and translation."""
    pose = state.pose + np.r_[rng.normal(0, 0.03, 3), rng.normal(0, 0.05, 45)].astype(np.float32)
    transl = state.transl_m + rng.normal(0, 0.004, 3).astype(np.float32)
    return HandState(pose=pose, shape=state.shape, transl_m=transl, is_left=state.is_left)


def timed(fitter, obs, calib, prev):
    """(mesh, {"ms": wall-clock ms, "cpu_ms": this thread's CPU ms}) of one HandFitter.fit call."""
    t0, c0 = time.perf_counter(), time.thread_time()
    mesh = fitter.fit(obs, calib, prev=prev)
    return mesh, {"ms": 1000 * (time.perf_counter() - t0), "cpu_ms": 1000 * (time.thread_time() - c0)}


def sequence(fitter, model, calib, sample, rng, frames: int, noise_px: float, mono: bool) -> list[dict]:
    """Warm-started fits over ``frames`` moving frames after a cold first fit; one record per fit."""
    world = syn.world_landmarks(sample.keypoints_m, rng) if mono else None
    obs = syn.mono_observation(sample, "left", world) if mono else sample.obs
    mesh, ms = timed(fitter, obs, calib, None)
    records = [{"kind": "mono cold" if mono else "stereo cold", **ms, "iterations": fitter.last_info.iterations,
                **errors_mm(mesh, sample.verts_m, sample.keypoints_m)}]
    state = sample.state
    for _ in range(frames):
        state = moved(state, rng)
        frame = syn.synthetic_hand(model, calib, rng, noise_px, state=state)
        world = syn.world_landmarks(frame.keypoints_m, rng) if mono else None
        obs = syn.mono_observation(frame, "left", world) if mono else frame.obs
        mesh, ms = timed(fitter, obs, calib, mesh.state)
        records.append({"kind": "mono warm" if mono else "stereo warm", **ms,
                        "iterations": fitter.last_info.iterations, "restarted": fitter.last_info.restarted,
                        **errors_mm(mesh, frame.verts_m, frame.keypoints_m)})
    return records


def with_outlier(sample, calib, rng):
    """The stereo observation with keypoint 8 (index tip) a gross outlier in 3D and in the left view."""
    obs = sample.obs
    pts = obs.keypoints_cam_m.copy()
    pts[8] += np.array([0.06, 0.0, 0.0], np.float32)
    kps = obs.left.keypoints_px.copy()
    kps[8] += np.array([40.0, 0.0], np.float32)
    left = replace(obs.left, keypoints_px=kps)
    return replace(obs, keypoints_cam_m=pts, left=left)


REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "hand-graph-cnn_real_world_testset"


def real_mono(fitter, n: int) -> list[dict]:
    """Mono fits of MediaPipe's keypoints + world landmarks on real photos with 3D joint ground truth
    (consecutive frames of one recording: each is fitted cold, and warm from the previous frame's fit)."""
    if n <= 0:
        return []
    if not (REAL / "annotations.json").is_file():
        print(f"--real: {REAL} is absent; skipped")
        return []
    import cv2

    from app.detection.config import DetectionConfig
    from app.detection.mediapipe_hands import MediaPipeHands
    from app.detection.stereo import make_detection
    from app.types import HandObservation
    from calibration.rig import make_stereo

    cfg = DetectionConfig(static_image_mode=True, max_num_hands=1)
    records, prev = [], None
    with MediaPipeHands(cfg) as hands:
        for item in json.loads((REAL / "annotations.json").read_text())["images"][:n]:
            raw = hands.process(cv2.cvtColor(cv2.imread(str(REAL / item["image"])), cv2.COLOR_BGR2RGB))
            if not raw:
                prev = None
                continue
            K = np.asarray(item["K_crop"], dtype=np.float64)
            rig = make_stereo(K, np.zeros(5), K, np.zeros(5), np.eye(3), [-0.063, 0, 0], (256, 256), rectified=True)
            det = make_detection(raw[0].keypoints_px, raw[0].score, raw[0].handedness, cfg, raw[0].world_landmarks_m)
            obs = HandObservation(frame_id=0, t_capture_ns=0, left=det, right=None, keypoints_cam_m=None,
                                  residual_px=None, is_left=raw[0].handedness == "left")
            truth = np.asarray(item["xyz_cam_cm"]) / 100.0
            for kind, start in (("real mono cold", None), ("real mono warm", prev)):
                if kind.endswith("warm") and start is None:
                    continue
                mesh, ms = timed(fitter, obs, rig, start)
                records.append({"kind": kind, **ms, "iterations": fitter.last_info.iterations,
                                "restarted": fitter.last_info.restarted,
                                "pa_mpjpe": 1000 * float(pa_mpjpe(mesh.joints_m, truth)),
                                "mpjpe": 1000 * float(mpjpe(mesh.joints_m, truth))})
            prev = mesh.state
    return records


def summary(records: list[dict]) -> dict:
    out = {}
    for kind in dict.fromkeys(r["kind"] for r in records):
        rs = [r for r in records if r["kind"] == kind]
        ms, cpu = np.array([r["ms"] for r in rs]), np.array([r["cpu_ms"] for r in rs])
        row = {"n": len(rs), "ms_median": float(np.median(ms)), "ms_p95": float(np.percentile(ms, 95)),
               "cpu_ms_median": float(np.median(cpu)), "cpu_ms_p95": float(np.percentile(cpu, 95)),
               "iterations_mean": float(np.mean([r["iterations"] for r in rs]))}
        for key in ("pa_mpve", "mpve", "pa_mpjpe", "mpjpe"):
            if not all(key in r for r in rs):
                continue
            v = np.array([r[key] for r in rs])
            row[f"{key}_mean"], row[f"{key}_median"], row[f"{key}_max"] = float(v.mean()), float(np.median(v)), float(
                v.max())
        row["restarts"] = int(sum(r.get("restarted", False) for r in rs))
        out[kind] = row
    return out


def trio(row: dict, key: str) -> str:
    """'mean/median/max' of one error in a summary row, '-' when the case has none."""
    if key + "_mean" not in row:
        return f"{'-':>16s}"
    return f"{row[key + '_mean']:5.1f}/{row[key + '_median']:4.1f}/{row[key + '_max']:5.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--frames", type=int, default=5, help="warm-started frames per sample")
    ap.add_argument("--noise-px", type=float, default=1.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--real", type=int, default=0, metavar="N",
                    help="also fit MediaPipe's output on the first N photos of ../shared/realdata/"
                         "hand-graph-cnn_real_world_testset (mono, cold and warm from the previous photo)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="FitConfig override, e.g. --set iterations_warm=3 (repeatable)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    calib = preset_rig("zed-mini", "640x360")
    overrides = dict(item.split("=", 1) for item in args.set)
    fitter = build_fitter(merge_config(FitConfig(), overrides=overrides), HandModelConfig())
    rng = np.random.default_rng(args.seed)
    records = []
    for i in range(args.samples):
        model = fitter.hand_models["left" if i % 2 else "right"]
        sample = syn.synthetic_hand(model, calib, rng, args.noise_px)
        if i == 0:  # warm-up: first calls allocate
            fitter.fit(sample.obs, calib)
        records += sequence(fitter, model, calib, sample, rng, args.frames, args.noise_px, mono=False)
        records += sequence(fitter, model, calib, sample, rng, args.frames, args.noise_px, mono=True)
        mesh, ms = timed(fitter, with_outlier(sample, calib, rng), calib, None)
        records.append({"kind": "stereo cold, 1 outlier", **ms, "iterations": fitter.last_info.iterations,
                        **errors_mm(mesh, sample.verts_m, sample.keypoints_m)})
    records += real_mono(fitter, args.real)
    table = summary(records)
    print(f"{'case':24s} {'n':>4s} {'ms med':>7s} {'ms p95':>7s} {'cpu med':>7s} {'cpu p95':>7s} {'iters':>6s} "
          f"{'PA-MPVE':>16s} {'MPVE':>16s} {'PA-MPJPE':>9s}  (mm: mean / median / max)")
    for kind, r in table.items():
        print(f"{kind:24s} {r['n']:4d} {r['ms_median']:7.2f} {r['ms_p95']:7.2f} {r['cpu_ms_median']:7.2f} "
              f"{r['cpu_ms_p95']:7.2f} {r['iterations_mean']:6.1f} {trio(r, 'pa_mpve')} {trio(r, 'mpve')} "
              f"{r['pa_mpjpe_mean']:9.1f}" + (f"  MPJPE {trio(r, 'mpjpe')}" if "mpjpe_mean" in r else ""))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "summary": table,
                                         "records": records}, indent=1))


if __name__ == "__main__":
    main()
