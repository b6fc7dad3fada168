import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from models.eval.mesh_metrics import aligned_errors, aligned_f_scores, f_scores, mask_iou, nearest_distances


def _slow_nearest(src, dst):
    return np.array([min(np.sqrt(sum((a - b) ** 2)) for b in dst) for a in src])


def _slow_f_score(pred, gt, t):
    """FreiHAND's definition with plain loops."""
    precision = sum(1 for p in pred if min(np.linalg.norm(p - g) for g in gt) <= t) / len(pred)
    recall = sum(1 for g in gt if min(np.linalg.norm(g - p) for p in pred) <= t) / len(gt)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _slow_similarity_align(pred, gt):
    """Umeyama (1991) written out: rotation without reflection, scale, translation minimising |s R x + t - y|."""
    mx, my = pred.mean(0), gt.mean(0)
    X, Y = pred - mx, gt - my
    U, S, Vt = np.linalg.svd(Y.T @ X / len(pred))
    D = np.eye(3)
    D[2, 2] = np.sign(np.linalg.det(U @ Vt)) or 1.0
    R = U @ D @ Vt
    s = np.trace(np.diag(S) @ D) / (X**2).sum(1).mean()
    return np.array([s * R @ x + my - s * R @ mx for x in pred])


def test_nearest_distances_match_loops():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(9, 3)), rng.normal(size=(13, 3))
    np.testing.assert_allclose(nearest_distances(a, b), _slow_nearest(a, b), atol=1e-12)


def test_f_scores_match_the_slow_reference_on_tiny_sets():
    rng = np.random.default_rng(1)
    for trial in range(5):
        gt = rng.uniform(-0.02, 0.02, size=(11, 3))
        pred = gt[rng.permutation(11)[:8]] + rng.normal(0, 0.006, size=(8, 3))  # partial, noisy, unordered
        thresholds = [0.0, 0.002, 0.005, 0.01, 0.015]
        expected = [_slow_f_score(pred, gt, t) for t in thresholds]
        np.testing.assert_allclose(f_scores(pred, gt, thresholds), expected, atol=1e-12, err_msg=f"trial {trial}")


def test_f_scores_of_a_shifted_copy_switch_at_the_shift():
    gt = np.random.default_rng(2).uniform(-0.5, 0.5, size=(20, 3))  # points far apart: nearest = own copy
    pred = gt + [0.01, 0.0, 0.0]
    np.testing.assert_allclose(f_scores(pred, gt, [0.005, 0.015]), [0.0, 1.0])


def test_aligned_errors_match_a_slow_similarity_alignment():
    rng = np.random.default_rng(3)
    gt = rng.normal(0, 0.03, size=(15, 3))
    pred = 1.3 * gt @ Rotation.random(random_state=4).as_matrix().T + [0.1, -0.2, 0.5] + rng.normal(0, 0.004, (15, 3))
    expected = np.linalg.norm(_slow_similarity_align(pred, gt) - gt, axis=1)
    np.testing.assert_allclose(aligned_errors(pred, gt), expected, atol=1e-9)


def test_a_similar_copy_aligns_to_zero_error_and_perfect_f_score():
    gt = np.random.default_rng(5).normal(0, 0.03, size=(30, 3))
    pred = 0.8 * gt @ Rotation.random(random_state=6).as_matrix().T + [0.0, 0.1, 0.4]
    assert aligned_errors(pred, gt).max() < 1e-9
    np.testing.assert_allclose(aligned_f_scores(pred, gt, [0.005, 0.015]), [1.0, 1.0])


def test_aligned_errors_refuse_vertex_sets_of_different_topology():
    with pytest.raises(ValueError, match="same hand model topology"):
        aligned_errors(np.zeros((778, 3)) + np.arange(3), np.ones((779, 3)))


def test_non_finite_points_are_refused():
    pts = np.ones((4, 3))
    pts[1, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        nearest_distances(pts, np.ones((4, 3)))


def test_mask_iou_matches_counting_and_is_nan_when_both_masks_are_empty():
    rng = np.random.default_rng(7)
    a, b = rng.random((6, 9)) > 0.5, rng.random((6, 9)) > 0.6
    inter = sum(1 for i in range(6) for j in range(9) if a[i, j] and b[i, j])
    union = sum(1 for i in range(6) for j in range(9) if a[i, j] or b[i, j])
    assert mask_iou(a, b) == pytest.approx(inter / union)
    assert mask_iou(a, a) == 1.0
    assert np.isnan(mask_iou(np.zeros((3, 3), bool), np.zeros((3, 3), bool)))


def test_mask_iou_refuses_masks_of_different_shape_or_dtype():
    with pytest.raises(ValueError, match="bool masks of one shape"):
        mask_iou(np.zeros((3, 3), bool), np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match="bool masks of one shape"):
        mask_iou(np.zeros((3, 3), np.uint8), np.zeros((3, 3), bool))
