"""Tune the detection stage's One-Euro keypoint filter against the animated synthetic source's ground truth.

    .venv/bin/python benchmarks/tune_one_euro.py --seeds 0,1,2,3 --holdout 4,5,6 --frames 240 \
        --json out/tune_one_euro.json [--cache out/one_euro_tracks.npz] [--max-added-lag-ms 15]

1. Record: per seed, ``synthetic?seed=S&frames=N&fps=F&mode=M&pace=fast`` (app/capture/synthetic.py: a textured hand
   playing seeded gestures in front of a ZED Mini); the detection stage in video mode as live, but unfiltered
   (``filter_enabled=False``), on every frame; per view the 21 keypoints of the hand nearest the ground truth (NaN
   when the view missed it) and the true keypoints (``ground_truth(i).keypoints_px``). One track = one seed's view.
   ``--cache`` keeps the tracks (the recording is the slow part) and reuses them when the file exists.
2. Tune on the --seeds tracks: grid over (min_cutoff_hz, beta), d_cutoff 1 Hz; the least high-frequency jitter
   among the points whose lag exceeds the unfiltered keypoints' own by at most --max-added-lag-ms. Figures are means
   over tracks: hf jitter = ``hf_jitter`` (second differences of filtered - truth, px); jitter = RMS frame-to-frame
   change of (filtered - truth), px, and error = RMS of (filtered - truth), px (app/detection/filtering.py
   ``jitter_and_lag``; the error is mostly MediaPipe's own, which no filter removes; the first-difference jitter
   also counts a filter's lag on an accelerating hand, so a strong low-pass reads worse than raw on it);
   lag = the least-squares delay behind the truth, ms (``lag_s``).
3. Report raw, the parameters before tuning (--before, the DetectionConfig defaults until this tuning), the tuned
   ones and the current DetectionConfig defaults on the tuning tracks and on the --holdout seeds' tracks.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.detection.config import DetectionConfig  # noqa: E402
from app.detection.filtering import OneEuroParams, filter_sequence, jitter_and_lag  # noqa: E402

MIN_CUTOFFS_HZ = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
BETAS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5)
VIEWS = ("left", "right")


@dataclass(frozen=True)
class Track:
    """One view of one recorded sequence. t_s: (T,) float64 seconds; raw: (T, 21, 2) float64 unfiltered detected
    pixels (NaN rows = frames the view missed the hand); truth: (T, 21, 2) float64 true pixels."""

    name: str
    t_s: np.ndarray
    raw: np.ndarray
    truth: np.ndarray


@dataclass(frozen=True)
class Scores:
    """Means over tracks, px / ms: jitter_px (``jitter_and_lag``: RMS first difference of the error), hf_jitter_px
    (``hf_jitter``), error_px (RMS error), lag_ms (``lag_s``)."""

    jitter_px: float
    hf_jitter_px: float
    error_px: float
    lag_ms: float


# ---------------------------------------------------------------------------------------------------------
# Pure parts: lag, scores, grid search
# ---------------------------------------------------------------------------------------------------------


def lag_s(signal: np.ndarray, truth: np.ndarray, t_s: np.ndarray) -> float:
    """Least-squares delay of ``signal`` behind ``truth``, seconds: with e = signal - truth and v the truth's
    velocity, a signal trailing by tau has e ~ -tau v, so tau = -sum(e . v) / sum(v . v) (first order in tau; an
    error uncorrelated with the motion averages out). signal, truth: (T, ...) same unit, NaN ignored; t_s: (T,)."""
    v = np.gradient(np.asarray(truth, np.float64), np.asarray(t_s, np.float64), axis=0)
    e = np.asarray(signal, np.float64) - truth
    ok = np.isfinite(e) & np.isfinite(v)
    den = float(np.sum(v[ok] ** 2))
    return -float(np.sum(e[ok] * v[ok])) / den if den > 0 else float("nan")


def hf_jitter(signal: np.ndarray, truth: np.ndarray) -> float:
    """High-frequency jitter: RMS of the second difference of e = signal - truth, / sqrt(6), so that white noise of
    standard deviation sigma reads sigma. A slowly varying error (MediaPipe's pose-dependent bias) or a filter's lag
    on smoothly moving keypoints (e ~ -tau v) has a small second difference, so unlike the first-difference jitter
    of ``jitter_and_lag`` it does not count lag on an accelerating hand as jitter. (T, ...) arrays, NaN ignored."""
    e = np.asarray(signal, np.float64) - np.asarray(truth, np.float64)
    return float(np.sqrt(np.nanmean(np.diff(e, n=2, axis=0) ** 2) / 6.0))


def score_tracks(params: OneEuroParams | None, tracks: list[Track]) -> Scores:
    """Scores of the filter ``params`` (None = unfiltered), means over the tracks."""
    rows = []
    for tr in tracks:
        out = tr.raw if params is None else filter_sequence(params, tr.t_s, tr.raw)
        jitter, error = jitter_and_lag(out, tr.truth)
        rows.append((jitter, hf_jitter(out, tr.truth), error, lag_s(out, tr.truth, tr.t_s) * 1000.0))
    return Scores(*(float(v) for v in np.mean(rows, axis=0)))


def grid_search(tracks: list[Track], max_added_lag_ms: float, min_cutoffs=MIN_CUTOFFS_HZ, betas=BETAS,
                d_cutoff_hz: float = 1.0) -> tuple[OneEuroParams, list[dict]]:
    """(best params, every grid point's figures): the least high-frequency jitter among the parameters that add at
    most max_added_lag_ms of lag to the unfiltered keypoints' own (MediaPipe's tracking may lag by itself)."""
    raw_lag = score_tracks(None, tracks).lag_ms
    table = []
    for mc, beta in itertools.product(min_cutoffs, betas):
        s = score_tracks(OneEuroParams(min_cutoff_hz=mc, beta=beta, d_cutoff_hz=d_cutoff_hz), tracks)
        table.append({"min_cutoff_hz": mc, "beta": beta, **vars(s), "ok": s.lag_ms - raw_lag <= max_added_lag_ms})
    allowed = [r for r in table if r["ok"]]
    if not allowed:
        raise SystemExit(f"error: no grid point adds <= {max_added_lag_ms} ms of lag; raise --max-added-lag-ms")
    best = min(allowed, key=lambda r: r["hf_jitter_px"])
    return OneEuroParams(best["min_cutoff_hz"], best["beta"], d_cutoff_hz), table


def pareto_front(table: list[dict]) -> list[dict]:
    """The grid rows no other row beats in both high-frequency jitter and lag, by increasing lag."""
    front = [r for r in table
             if not any(o["hf_jitter_px"] < r["hf_jitter_px"] and o["lag_ms"] < r["lag_ms"] for o in table)]
    return sorted(front, key=lambda r: r["lag_ms"])


# ---------------------------------------------------------------------------------------------------------
# Recording (capture + detection at the edge)
# ---------------------------------------------------------------------------------------------------------


def nearest_keypoints(observations, view: str, truth_px: np.ndarray) -> np.ndarray:
    """(21, 2) float64 keypoints of ``view`` of the observation whose centroid is nearest the truth's, or NaN."""
    best, best_d = np.full((21, 2), np.nan), np.inf
    for obs in observations:
        det = getattr(obs, view)
        if det is None:
            continue
        d = float(np.linalg.norm(det.keypoints_px.mean(0) - truth_px.mean(0)))
        if d < best_d:
            best, best_d = det.keypoints_px.astype(np.float64), d
    return best


def record_seed(seed: int, frames: int, fps: float, mode: str) -> list[Track]:
    """The two view tracks of one synthetic sequence, detected unfiltered in video mode."""
    from app.capture import open_source
    from app.detection.stereo import build_detector

    source = open_source(f"synthetic?seed={seed}&frames={frames}&fps={fps:g}&mode={mode}&pace=fast")
    detector = build_detector(DetectionConfig(filter_enabled=False, network_inputs=False))
    t, raw, truth = [], [], []
    try:
        while (frame := source.read()) is not None:
            gt = source.ground_truth(frame.frame_id, masks=False).keypoints_px.astype(np.float64)
            obs = detector.detect(frame)
            t.append(frame.frame_id / fps)
            raw.append([nearest_keypoints(obs, v, gt[i]) for i, v in enumerate(VIEWS)])
            truth.append(gt)
    finally:
        detector.close()
        source.close()
    raw, truth = np.asarray(raw), np.asarray(truth)
    return [Track(f"seed{seed}-{v}", np.asarray(t), raw[:, i], truth[:, i]) for i, v in enumerate(VIEWS)]


def load_or_record(seeds: list[int], args, cache: Path | None) -> list[Track]:
    """Tracks of ``seeds``: from the cache when it holds them, else recorded (and added to the cache)."""
    stored = dict(np.load(cache)) if cache is not None and cache.is_file() else {}
    tracks = []
    for seed in seeds:
        key = f"seed{seed}_f{args.frames}_{args.fps:g}_{args.mode}"
        if key + "_raw" not in stored:
            recorded = record_seed(seed, args.frames, args.fps, args.mode)
            stored[key + "_t"] = recorded[0].t_s
            stored[key + "_raw"] = np.stack([tr.raw for tr in recorded])
            stored[key + "_truth"] = np.stack([tr.truth for tr in recorded])
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cache, **stored)
        tracks += [Track(f"seed{seed}-{v}", stored[key + "_t"], stored[key + "_raw"][i], stored[key + "_truth"][i])
                   for i, v in enumerate(VIEWS)]
    return tracks


# ---------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------


def _seeds(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise SystemExit(f"error: seeds must be comma-separated integers, got {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2,3", help="synthetic source seeds to tune on")
    p.add_argument("--holdout", default="4,5,6", help="seeds only checked, not tuned on ('' = none)")
    p.add_argument("--frames", type=int, default=240)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--mode", default="640x360")
    p.add_argument("--max-added-lag-ms", type=float, default=15.0,
                   help="lag the filter may add to the unfiltered keypoints' own")
    p.add_argument("--before", default="1.0,0.1", help="min_cutoff_hz,beta compared as 'before'")
    p.add_argument("--cache", default=None, help="NPZ of recorded tracks (reused when present)")
    p.add_argument("--json", required=True)
    return p


def _row(label: str, s: Scores) -> str:
    return (f"{label:<42} hf jitter {s.hf_jitter_px:6.3f} px   jitter {s.jitter_px:6.3f} px   "
            f"error {s.error_px:6.3f} px   lag {s.lag_ms:6.1f} ms")


def _params(text: str) -> OneEuroParams:
    try:
        mc, beta = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise SystemExit(f"error: --before expects min_cutoff_hz,beta such as 1.0,0.1, got {text!r}") from exc
    return OneEuroParams(mc, beta, 1.0)


def report(tuned: OneEuroParams, before: OneEuroParams, sets: dict[str, list[Track]]) -> dict:
    """Print and return raw / before / tuned / current-default scores per track set."""
    cfg = DetectionConfig()
    rows_of = {"raw (unfiltered)": None,
               f"before: {before.min_cutoff_hz:g} Hz, beta {before.beta:g}": before,
               f"after: tuned {tuned.min_cutoff_hz:g} Hz, beta {tuned.beta:g}": tuned,
               f"DetectionConfig now: {cfg.filter_min_cutoff_hz:g} Hz, beta {cfg.filter_beta:g}":
                   OneEuroParams(cfg.filter_min_cutoff_hz, cfg.filter_beta, cfg.filter_d_cutoff_hz)}
    out = {}
    for name, tracks in sets.items():
        if not tracks:
            continue
        missed = int(sum(np.isnan(t.raw[:, 0, 0]).sum() for t in tracks))
        print(f"{name} ({len(tracks)} tracks, {sum(len(t.t_s) for t in tracks)} view-frames, {missed} missed):")
        out[name] = {"missed_view_frames": missed}
        for label, params in rows_of.items():
            scores = score_tracks(params, tracks)
            print(_row("  " + label, scores))
            out[name][label.split(":")[0]] = vars(scores)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cache = Path(args.cache) if args.cache else None
    tune_tracks = load_or_record(_seeds(args.seeds), args, cache)
    hold_tracks = load_or_record(_seeds(args.holdout), args, cache)
    tuned, table = grid_search(tune_tracks, args.max_added_lag_ms)
    print("jitter / lag trade-off on the tuning seeds (Pareto front of the grid):")
    for r in pareto_front(table):
        print(f"  min_cutoff {r['min_cutoff_hz']:5.2f} Hz  beta {r['beta']:6.3f}  "
              f"hf jitter {r['hf_jitter_px']:.3f} px  jitter {r['jitter_px']:.3f} px  error {r['error_px']:.3f} px  "
              f"lag {r['lag_ms']:5.1f} ms")
    scores = report(tuned, _params(args.before),
                    {"tuning seeds " + args.seeds: tune_tracks, "held-out seeds " + args.holdout: hold_tracks})
    result = {"tuned": vars(tuned), "max_added_lag_ms": args.max_added_lag_ms, "seeds": args.seeds,
              "holdout": args.holdout, "frames": args.frames, "fps": args.fps, "mode": args.mode,
              "scores": scores, "grid": table}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
