"""Files beside the evaluation JSON: ``<stem>_samples.csv`` (one row per sample) and ``<stem>_pck.png``."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from models.eval.metrics import PCK_2D_THRESHOLDS_PX, PCK_3D_THRESHOLDS_MM, SampleResult, pck_curve


def side_paths(json_path: Path) -> tuple[Path, Path]:
    """(CSV path, PNG path) beside ``json_path``."""
    stem = json_path.stem
    return json_path.with_name(stem + "_samples.csv"), json_path.with_name(stem + "_pck.png")


CSV_COLUMNS = ("sample_id", "detected", "err_2d_px", "mpjpe_mm", "pa_mpjpe_mm", "pa_mpve_mm", "f5", "f15",
               "iou_before", "iou_after", "refine_diverged", "baseline_mediapipe_pa_mpjpe_mm", "mono_detected",
               "mono_mpjpe_mm", "mono_pa_mpjpe_mm", "mono_pa_mpve_mm", "mono_iou_before", "mono_iou_after")


def _clean(value):
    """JSON has no NaN: write null for a figure that could not be computed (nested dicts too)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, summary: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(summary), indent=2) + "\n")


def _cell(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value:.4g}"


def _figures(r: SampleResult) -> list[str]:
    """detected, 2D, 3D and mesh cells of one result."""
    m = r.mesh
    values = (r.err_2d_px, r.err_3d_mm, r.pa_err_3d_mm, m.pa_mpve_mm, *m.f_scores, m.iou_before, m.iou_after)
    return [str(int(r.detected)), *(_cell(v) for v in values), str(int(m.refine_diverged)), _cell(m.baseline_pa_mm)]


def csv_row(r: SampleResult) -> list[str]:
    """One CSV row (CSV_COLUMNS): the sample's figures, then its mono counterpart's (empty without one)."""
    mono = ["", "", "", "", "", ""]
    if r.mono is not None:
        o = r.mono
        mono = [str(int(o.detected)), *(_cell(v) for v in (o.err_3d_mm, o.pa_err_3d_mm, o.mesh.pa_mpve_mm,
                                                           o.mesh.iou_before, o.mesh.iou_after))]
    return [r.sample_id, *_figures(r), *mono]


def write_csv(path: Path, results: list[SampleResult]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in results:
            w.writerow(csv_row(r))


def write_pck_plot(path: Path, results: list[SampleResult], n_views: int, with_3d: bool, title: str) -> None:
    """PCK curves (2D in px; 3D in mm, unaligned) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if with_3d else 1, figsize=(10 if with_3d else 5, 4), squeeze=False)
    curve = pck_curve([r.joint_err_px if r.detected else None for r in results], 21 * n_views,
                      PCK_2D_THRESHOLDS_PX)
    _panel(axes[0, 0], PCK_2D_THRESHOLDS_PX, curve, "2D error threshold (px)")
    if with_3d:
        curve3 = pck_curve([r.joint_err_mm if r.detected else None for r in results], 21,
                           PCK_3D_THRESHOLDS_MM)
        _panel(axes[0, 1], PCK_3D_THRESHOLDS_MM, curve3, "3D error threshold (mm), unaligned")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _panel(ax, thresholds: np.ndarray, curve: np.ndarray, xlabel: str) -> None:
    ax.plot(thresholds, curve)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("PCK (fraction of keypoints)")
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
