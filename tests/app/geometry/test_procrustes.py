"""app/geometry/procrustes.py against scipy references and known similarity transforms."""

import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.transform import Rotation

from app.geometry.procrustes import mpjpe, pa_mpjpe, procrustes_align

torch.set_num_threads(1)


def _hand(seed=0, n=21):
    """A hand-sized random point set (n, 3), metres, half a metre in front of the camera."""
    rng = np.random.default_rng(seed)
    return rng.normal(scale=0.04, size=(n, 3)) + [0.0, 0.0, 0.5]


def _freihand_reference(pred, target):
    """The FreiHAND evaluation alignment written with scipy (reflections allowed, as scipy's solver does)."""
    t_mean, p_mean = target.mean(0), pred.mean(0)
    t_c, p_c = target - t_mean, pred - p_mean
    t_norm, p_norm = np.linalg.norm(t_c), np.linalg.norm(p_c)
    R, scale = orthogonal_procrustes(t_c / t_norm, p_c / p_norm)
    return (p_c / p_norm) @ R.T * scale * t_norm + t_mean


def _proper_reference(pred, target):
    """Best rotation (never a reflection) from scipy's Rotation.align_vectors, then least-squares scale."""
    t_c, p_c = target - target.mean(0), pred - pred.mean(0)
    rot, _ = Rotation.align_vectors(t_c, p_c)
    rotated = rot.apply(p_c)
    return rotated * (np.sum(rotated * t_c) / np.sum(p_c * p_c)) + target.mean(0)


def _similarity(points, seed=1):
    rng = np.random.default_rng(seed)
    R = Rotation.random(random_state=seed).as_matrix()
    return 1.7 * points @ R.T + rng.normal(size=3)


def test_matches_freihand_reference_on_noisy_data():
    for seed in range(5):
        target = _hand(seed)
        pred = _similarity(target, seed) + np.random.default_rng(seed).normal(scale=0.005, size=target.shape)
        out = procrustes_align(pred, target)
        np.testing.assert_allclose(out, _freihand_reference(pred, target), atol=1e-9)
        np.testing.assert_allclose(out, _proper_reference(pred, target), atol=1e-9)


def test_recovers_known_similarity():
    target = _hand()
    pred = _similarity(target)
    np.testing.assert_allclose(procrustes_align(pred, target), target, atol=1e-9)
    assert pa_mpjpe(pred, target) < 1e-9
    assert mpjpe(pred, target) > 0.1


def test_never_reflects():
    target = _hand(2)
    pred = target * [-1.0, 1.0, 1.0]  # a mirror image: the best orthogonal map would be a reflection
    out = procrustes_align(pred, target)
    np.testing.assert_allclose(out, _proper_reference(pred, target), atol=1e-9)
    A = np.linalg.lstsq(pred - pred.mean(0), out - out.mean(0), rcond=None)[0]  # out_c = pred_c A, A = c R^T
    assert np.linalg.det(A) > 0
    np.testing.assert_allclose(A.T @ A / (A.T @ A)[0, 0], np.eye(3), atol=1e-9)


def test_batched_numpy_and_torch():
    targets = np.stack([_hand(s) for s in range(4)]).reshape(2, 2, 21, 3)
    flat_t = targets.reshape(4, 21, 3)
    flat_p = np.stack([_similarity(t, s) + 0.003 * np.cos(t * 50) for s, t in enumerate(flat_t)])
    preds = flat_p.reshape(2, 2, 21, 3)
    out = procrustes_align(preds, targets)
    assert out.shape == preds.shape
    singles = np.stack([procrustes_align(p, t) for p, t in zip(flat_p, flat_t, strict=True)])
    np.testing.assert_allclose(out.reshape(4, 21, 3), singles, atol=1e-12)
    out_t = procrustes_align(torch.from_numpy(preds), torch.from_numpy(targets))
    np.testing.assert_allclose(out_t.numpy(), out, atol=1e-12)
    assert pa_mpjpe(preds, targets).shape == (2, 2)


def test_metrics_values_and_gradients():
    target = np.zeros((4, 3))
    pred = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    assert mpjpe(pred, target) == pytest.approx((5 + 1 + 0 + 2) / 4)
    pred_t = torch.from_numpy(_hand(3)).requires_grad_()
    loss = pa_mpjpe(pred_t, torch.from_numpy(_hand(4)))
    loss.backward()
    assert torch.isfinite(pred_t.grad).all()
    with pytest.raises(ValueError, match="shape"):
        procrustes_align(np.zeros((21, 3)), np.zeros((20, 3)))
