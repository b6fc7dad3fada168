import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from models.eval.metrics import (
    PCK_3D_THRESHOLDS_MM,
    aligned_joint_errors_mm,
    auc,
    evaluate_sample,
    summarise,
)
from models.eval.samples import Prediction


def _similar(points: np.ndarray, seed: int) -> np.ndarray:
    """The points moved by a similarity transform (Procrustes aligns it away)."""
    return 1.1 * points @ Rotation.random(random_state=seed).as_matrix().T + [0.01, 0.02, 0.03]


def _box(r0, r1, c0, c1):
    m = np.zeros((48, 64), bool)
    m[r0:r1, c0:c1] = True
    return m


def test_mesh_figures_of_onetoy_sample(toy_sample):
    s = toy_sample(0)
    verts = _similar(s.verts_cam_m, 1)
    verts[0, 0] += 0.011  # one vertex 11 mm off in x (10 mm after undoing the 1.1 scale)
    pred = Prediction(uv_px=s.uv_px, xyz_cam_m=_similar(s.xyz_cam_m, 1), verts_cam_m=verts,
                      silhouette_init=_box(10, 30, 20, 30), silhouette=_box(10, 30, 20, 40),
                      mediapipe_world_m=_similar(s.xyz_cam_m, 2) - 0.4)
    r = evaluate_sample(s, pred, needs_3d=True)
    assert r.detected and r.pa_err_3d_mm == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(r.mesh.pa_joint_err_mm, 0.0, atol=1e-6)
    assert 10.0 / 40 < r.mesh.pa_mpve_mm < 3 * 10.0 / 40  # the one bad vertex, partly shared out by the alignment
    assert r.mesh.f_scores[1] == 1.0 and 0.9 < r.mesh.f_scores[0] < 1.0  # the bad vertex: > 5 mm, < 15 mm
    assert r.mesh.iou_before == pytest.approx(0.5) and r.mesh.iou_after == pytest.approx(1.0)
    assert r.mesh.baseline_pa_mm == pytest.approx(0.0, abs=1e-6)
    assert r.mono is None


def test_mesh_figures_are_nan_without_ground_truth_and_mono_counterpart_is_scored(toy_sample):
    s = toy_sample(1, with_mesh=False)
    mono = Prediction(uv_px=(s.uv_px[0] + 2.0,), xyz_cam_m=s.xyz_cam_m + 0.01, verts_cam_m=np.ones((40, 3)))
    pred = Prediction(uv_px=s.uv_px, xyz_cam_m=s.xyz_cam_m, verts_cam_m=np.ones((40, 3)),
                      silhouette_init=_box(0, 5, 0, 5), silhouette=_box(0, 5, 0, 5), mono=mono)
    r = evaluate_sample(s, pred, needs_3d=True)
    assert np.isnan(r.mesh.pa_mpve_mm) and np.isnan(r.mesh.iou_before) and np.isnan(r.mesh.baseline_pa_mm)
    assert r.mono.detected and r.mono.err_2d_px == pytest.approx(2 * np.sqrt(2))
    assert r.mono.err_3d_mm == pytest.approx(10 * np.sqrt(3)) and r.mono.joint_err_px.shape == (21,)


def test_aligned_joint_errors_skip_dropped_joints(toy_sample):
    s = toy_sample(2)
    pred = _similar(s.xyz_cam_m, 3)
    pred[[4, 8]] = np.nan
    err = aligned_joint_errors_mm(pred, s.xyz_cam_m)
    assert np.isnan(err[[4, 8]]).all() and np.nanmax(err) < 1e-6
    assert aligned_joint_errors_mm(np.full((21, 3), np.nan), s.xyz_cam_m) is None


def test_summary_of_mesh_method_has_every_key_and_nested_mono(toy_sample):
    results = []
    for i in range(4):
        s = toy_sample(i)
        off = s.xyz_cam_m.copy()
        off[0] += [0.0, 0.0, 0.03 * i]  # the wrist moved: aligned error grows with i
        mono = Prediction(uv_px=(s.uv_px[0],), xyz_cam_m=s.xyz_cam_m, verts_cam_m=s.verts_cam_m,
                          silhouette_init=s.masks[0], silhouette=s.masks[0])
        pred = Prediction(uv_px=s.uv_px if i < 3 else (None, None), xyz_cam_m=off, verts_cam_m=s.verts_cam_m,
                          silhouette_init=_box(10, 30, 20, 30), silhouette=s.masks[0], refine_diverged=i == 1,
                          mono=mono)
        results.append(evaluate_sample(s, pred, needs_3d=True))
    out = summarise(results, True, 2, with_mesh=True)
    for key in ("pa_mpjpe_mm", "pa_mpve_mm", "f5", "f15", "auc", "mpjpe_mm", "iou_before", "iou_after", "mono",
                "baseline_mediapipe_pa_mpjpe_mm", "detection_rate", "refine_diverged_rate"):
        assert key in out
    assert out["detection_rate"] == 0.75  # the fourth sample's prediction lost a view
    assert out["pa_mpve_mm"] == pytest.approx(0.0, abs=1e-6) and out["f5"] == 1.0
    assert out["iou_before"] == pytest.approx(0.5) and out["iou_after"] == 1.0
    assert out["refine_diverged_rate"] == pytest.approx(1 / 3) and np.isnan(out["baseline_mediapipe_pa_mpjpe_mm"])
    pa = [r.mesh.pa_joint_err_mm for r in results[:3]]
    assert out["auc"] == pytest.approx(auc(PCK_3D_THRESHOLDS_MM, _slow_pck(pa, PCK_3D_THRESHOLDS_MM)))
    assert out["auc"] < 1.0
    mono = out["mono"]
    assert mono["n"] == 4 and mono["detection_rate"] == 1.0 and "mono" not in mono
    assert mono["pa_mpve_mm"] == pytest.approx(0.0, abs=1e-6) and mono["iou_after"] == 1.0 and mono["auc"] > 0.99


def _slow_pck(errors, thresholds):
    flat = [e for per in errors for e in per]
    return np.array([sum(1 for e in flat if e <= t) / len(flat) for t in thresholds])


def test_keypoint_methods_keep_their_summary_without_mesh_keys(toy_sample):
    s = toy_sample(5)
    out = summarise([evaluate_sample(s, Prediction(uv_px=s.uv_px, xyz_cam_m=s.xyz_cam_m), True)], True, 2)
    assert "pa_mpve_mm" not in out and "mono" not in out and out["mpjpe_mm"] == pytest.approx(0.0)
