"""Per-sample errors, the summary of the evaluation JSON, and PCK curves. Pure numpy / app.geometry.

2D error of a sample: the mean over its 21 keypoints (and over its views) of the pixel distance to the
ground truth; ``median_2d_error_px`` / ``mean_2d_error_px`` are the median / mean of that over detected
samples.
3D: ``mpjpe_mm`` is the mean joint distance with no alignment (metric position in the camera frame);
``pa_mpjpe_mm`` after Procrustes alignment (FreiHAND protocol); both averaged over samples with a 3D result,
each sample over its finite joints. A sample is detected when the method found the hand in every view (and,
for 3D methods, returned 3D keypoints).

Mesh methods (``summarise(..., with_mesh=True)``; FreiHAND protocol, models/eval/mesh_metrics.py), each the
mean over detected samples that have the needed ground truth (null in the JSON where none has it, e.g. the
real-world set has no vertices or masks):
``pa_mpve_mm`` vertex error after Procrustes alignment of the vertices; ``f5`` / ``f15`` F-scores at 5 / 15 mm
of the aligned vertices; ``auc`` area under the 3D PCK curve of the Procrustes-aligned joints, 0-50 mm;
``iou_before`` / ``iou_after`` projection IoU in the first view of the initialiser's / the final mesh's hard
silhouette against the ground-truth mask; ``refine_diverged_rate`` share of detected samples whose refinement
guard fired; ``baseline_mediapipe_pa_mpjpe_mm`` PA-MPJPE of MediaPipe's own world landmarks of the same
detections; ``mono`` the same figures for the method on the first view alone (stereo samples), else null.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.geometry.procrustes import mpjpe, pa_mpjpe
from models.eval.mesh_metrics import aligned_errors, aligned_f_scores, mask_iou
from models.eval.samples import EvalSample, Prediction

PCK_2D_THRESHOLDS_PX = np.linspace(0.0, 30.0, 61)
PCK_3D_THRESHOLDS_MM = np.linspace(0.0, 50.0, 51)
F_THRESHOLDS_MM = (5.0, 15.0)
NAN = float("nan")


@dataclass(frozen=True)
class MeshResult:
    """Mesh figures of one sample (NaN where the prediction or the ground truth lacks what they need).
    pa_joint_err_mm: (21,) float64 per-joint error after Procrustes alignment of the joints (NaN rows = dropped
    joints) or None; pa_mpve_mm; f_scores: one per F_THRESHOLDS_MM; iou_before / iou_after; refine_diverged;
    baseline_pa_mm: PA-MPJPE of MediaPipe's world landmarks."""

    pa_joint_err_mm: np.ndarray | None = None
    pa_mpve_mm: float = NAN
    f_scores: tuple[float, ...] = (NAN, NAN)
    iou_before: float = NAN
    iou_after: float = NAN
    refine_diverged: bool = False
    baseline_pa_mm: float = NAN


@dataclass(frozen=True)
class SampleResult:
    """Per-sample outcome. joint_err_px: (n_views * 21,) float64 or None; joint_err_mm: (21,) or None;
    mesh: the mesh figures; mono: the outcome of the prediction's first-view-only counterpart, or None."""

    sample_id: str
    detected: bool
    err_2d_px: float
    err_3d_mm: float
    pa_err_3d_mm: float
    joint_err_px: np.ndarray | None
    joint_err_mm: np.ndarray | None
    mesh: MeshResult = MeshResult()
    mono: SampleResult | None = None


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
    mono = None if pred.mono is None else evaluate_sample(sample.first_view(), pred.mono, needs_3d)
    return SampleResult(sample.sample_id, detected, err_2d, e3, pa3, joint_px, joint_mm,
                        mesh_result(sample, pred), mono)


def aligned_joint_errors_mm(pred_m: np.ndarray | None, gt_m: np.ndarray | None) -> np.ndarray | None:
    """(21,) float64 mm per-joint error after Procrustes alignment of the finite predicted joints (NaN for the
    others); None without a prediction or with fewer than 3 finite joints."""
    if pred_m is None or gt_m is None:
        return None
    ok = np.isfinite(pred_m).all(axis=1)
    if ok.sum() < 3:
        return None
    out = np.full(len(gt_m), np.nan)
    out[ok] = aligned_errors(pred_m[ok], gt_m[ok]) * 1000.0
    return out


def _silhouette_iou(silhouette: np.ndarray | None, sample: EvalSample) -> float:
    return NAN if silhouette is None or not sample.masks else mask_iou(silhouette, sample.masks[0])


def mesh_result(sample: EvalSample, pred: Prediction) -> MeshResult:
    """The mesh figures of one prediction (see the module docstring)."""
    pa_mpve, f = NAN, (NAN,) * len(F_THRESHOLDS_MM)
    if pred.verts_cam_m is not None and sample.verts_cam_m is not None:
        pa_mpve = float(aligned_errors(pred.verts_cam_m, sample.verts_cam_m).mean()) * 1000.0
        f = tuple(float(v) for v in aligned_f_scores(pred.verts_cam_m, sample.verts_cam_m,
                                                     np.asarray(F_THRESHOLDS_MM) / 1000.0))
    baseline = NAN
    if pred.mediapipe_world_m is not None and sample.xyz_cam_m is not None:
        baseline = float(pa_mpjpe(pred.mediapipe_world_m, sample.xyz_cam_m)) * 1000.0
    return MeshResult(aligned_joint_errors_mm(pred.xyz_cam_m, sample.xyz_cam_m), pa_mpve, f,
                      _silhouette_iou(pred.silhouette_init, sample), _silhouette_iou(pred.silhouette, sample),
                      pred.refine_diverged, baseline)


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


def _mean(values) -> float:
    """Mean of the finite values, NaN when there are none."""
    arr = np.asarray(list(values), dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else NAN


def summarise_mesh(results: list[SampleResult]) -> dict:
    """The mesh figures of the JSON (module docstring) over the detected samples of ``results``."""
    det = [r.mesh for r in results if r.detected]
    pa_joints = [m.pa_joint_err_mm for m in det if m.pa_joint_err_mm is not None]
    out = {"auc": auc(PCK_3D_THRESHOLDS_MM, pck_curve(pa_joints, 21, PCK_3D_THRESHOLDS_MM)) if pa_joints else NAN,
           "pa_mpve_mm": _mean(m.pa_mpve_mm for m in det)}
    for k, t in enumerate(F_THRESHOLDS_MM):
        out[f"f{t:g}"] = _mean(m.f_scores[k] for m in det)
    out.update(iou_before=_mean(m.iou_before for m in det), iou_after=_mean(m.iou_after for m in det),
               refine_diverged_rate=float(np.mean([m.refine_diverged for m in det])) if det else NAN,
               baseline_mediapipe_pa_mpjpe_mm=_mean(m.baseline_pa_mm for m in det))
    monos = [r.mono for r in results if r.mono is not None]
    out["mono"] = None
    if monos:  # the mono counterpart's own figures, without a nested "mono" of its own
        out["mono"] = {k: v for k, v in summarise(monos, True, 1, with_mesh=True).items() if k != "mono"}
    return out


def summarise(results: list[SampleResult], needs_3d: bool, n_views: int, with_mesh: bool = False) -> dict:
    """The evaluation JSON's figures (see the module docstring); ``with_mesh`` adds the mesh figures."""
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
    if with_mesh:
        out.update(summarise_mesh(results))
    return out
