"""Per-sample errors, the summary of the evaluation JSON, and PCK curves. Pure numpy / app.geometry.

2D error of a sample: the mean over its 21 keypoints (and over its views) of the pixel distance to the
ground truth; ``median_2d_error_px`` / ``mean_2d_error_px`` are the median / mean of that over detected
samples.
3D: ``mpjpe_mm`` is the mean joint distance with no alignment (metric position in the camera frame);
``pa_mpjpe_mm`` after Procrustes alignment (FreiHAND protocol); both averaged over samples with a 3D result,
each sample over its finite joints. A sample is detected when the method found the hand in every view (and,
for 3D methods, returned 3D keypoints).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.geometry.procrustes import mpjpe, pa_mpjpe
from models.eval.samples import EvalSample, Prediction

PCK_2D_THRESHOLDS_PX = np.linspace(0.0, 30.0, 61)
PCK_3D_THRESHOLDS_MM = np.linspace(0.0, 50.0, 51)


@dataclass(frozen=True)
class SampleResult:
    """Per-sample outcome. joint_err_px: (n_views * 21,) float64 or None; joint_err_mm: (21,) or None."""

    sample_id: str
    detected: bool
    err_2d_px: float
    err_3d_mm: float
    pa_err_3d_mm: float
    joint_err_px: np.ndarray | None
    joint_err_mm: np.ndarray | None


def _errors_3d(pred_m: np.ndarray | None, gt_m: np.ndarray | None):
    """(per-joint mm (21,) with NaN, MPJPE mm, PA-MPJPE mm) over the finite predicted joints."""
    if pred_m is None or gt_m is None:
        return None, float("nan"), float("nan")
    ok = np.isfinite(pred_m).all(axis=1)
    joint = np.where(ok, np.linalg.norm(np.nan_to_num(pred_m) - gt_m, axis=1) * 1000.0, np.nan)
    if ok.sum() < 3:
        return joint, float("nan"), float("nan")
    return joint, float(mpjpe(pred_m[ok], gt_m[ok])) * 1000.0, float(pa_mpjpe(pred_m[ok], gt_m[ok])) * 1000.0


def evaluate_sample(sample: EvalSample, pred: Prediction, needs_3d: bool) -> SampleResult:
    """Compare one prediction with its sample's ground truth."""
    found_2d = all(uv is not None for uv in pred.uv_px) and len(pred.uv_px) == len(sample.uv_px)
    joint_px = None
    if found_2d:
        joint_px = np.concatenate([np.linalg.norm(np.asarray(p, np.float64) - g, axis=1)
                                   for p, g in zip(pred.uv_px, sample.uv_px, strict=True)])
    joint_mm, e3, pa3 = _errors_3d(pred.xyz_cam_m, sample.xyz_cam_m)
    detected = found_2d and (not needs_3d or pred.xyz_cam_m is not None)
    err_2d = float(np.nanmean(joint_px)) if joint_px is not None else float("nan")
    return SampleResult(sample.sample_id, detected, err_2d, e3, pa3, joint_px, joint_mm)


def pck_curve(joint_errors: list[np.ndarray | None], n_joints: int, thresholds: np.ndarray) -> np.ndarray:
    """Fraction of all joints within each threshold; a missing sample (None) or NaN joint counts as a miss.

    joint_errors: per sample (n,) errors or None; n_joints: joints a missing sample stands for.
    Returns (len(thresholds),) float64.
    """
    parts = [np.full(n_joints, np.inf) if e is None else np.nan_to_num(e, nan=np.inf) for e in joint_errors]
    errs = np.concatenate(parts) if parts else np.zeros(0)
    if errs.size == 0:
        return np.zeros(len(thresholds))
    return (errs[None, :] <= thresholds[:, None]).mean(axis=1)


def auc(thresholds: np.ndarray, curve: np.ndarray) -> float:
    """Area under a PCK curve normalised by the threshold range (1.0 = every joint at zero error)."""
    area = float(np.sum((curve[1:] + curve[:-1]) * np.diff(thresholds)) / 2.0)
    return area / float(thresholds[-1] - thresholds[0])


def summarise(results: list[SampleResult], needs_3d: bool, n_views: int) -> dict:
    """The evaluation JSON's figures (see the module docstring)."""
    det = [r for r in results if r.detected]
    e2 = np.array([r.err_2d_px for r in det], dtype=np.float64)
    out = {"n": len(results), "detection_rate": len(det) / len(results) if results else float("nan"),
           "median_2d_error_px": float(np.median(e2)) if e2.size else float("nan"),
           "mean_2d_error_px": float(np.mean(e2)) if e2.size else float("nan")}
    pck2 = pck_curve([r.joint_err_px if r.detected else None for r in results], 21 * n_views,
                     PCK_2D_THRESHOLDS_PX)
    out["pck_2d_auc_0_30px"] = auc(PCK_2D_THRESHOLDS_PX, pck2)
    if needs_3d:
        e3 = np.array([r.err_3d_mm for r in det if np.isfinite(r.err_3d_mm)])
        pa3 = np.array([r.pa_err_3d_mm for r in det if np.isfinite(r.pa_err_3d_mm)])
        out["mpjpe_mm"] = float(e3.mean()) if e3.size else float("nan")
        out["pa_mpjpe_mm"] = float(pa3.mean()) if pa3.size else float("nan")
        out["median_mpjpe_mm"] = float(np.median(e3)) if e3.size else float("nan")
        pck3 = pck_curve([r.joint_err_mm if r.detected else None for r in results], 21, PCK_3D_THRESHOLDS_MM)
        out["pck_3d_auc_0_50mm"] = auc(PCK_3D_THRESHOLDS_MM, pck3)
    return out
