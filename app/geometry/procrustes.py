"""Similarity (Procrustes) alignment and the joint/vertex error metrics of the FreiHAND protocol.

Point sets are (N, 3) or batched (..., N, 3), in any consistent unit (metres in the pipeline; the metrics
return the same unit, multiply by 1000 for mm). numpy in -> numpy out, torch in -> torch out (autograd works
except at degenerate inputs where singular values coincide).
"""

from __future__ import annotations

import torch

from app.geometry.camera import numpy_or_torch

_TINY = 1e-12  # guards the scale normalisation of a set whose points all coincide


def _centre_and_normalise(points: torch.Tensor):
    """(..., N, 3) -> (centred / Frobenius norm, mean (..., 1, 3), norm (..., 1, 1))."""
    mean = points.mean(dim=-2, keepdim=True)
    centred = points - mean
    norm = centred.square().sum(dim=(-2, -1), keepdim=True).clamp(min=_TINY).sqrt()
    return centred / norm, mean, norm


def _rotation_and_scale(X: torch.Tensor, Y: torch.Tensor):
    """Orthogonal Procrustes (Umeyama 1991, eqs. 39-42) for unit-norm centred X, Y (..., N, 3).

    Maximises tr(R M) with M = X^T Y = U S V^T: R = V D U^T, D = diag(1, 1, sign det(V U^T)) so that R is
    a proper rotation (no reflection); optimal scale c = tr(D S) / |X|^2 = tr(D S).
    Returns R (..., 3, 3) with Y ~ c X R^T, and c (..., 1, 1).
    """
    U, S, Vh = torch.linalg.svd(X.transpose(-1, -2) @ Y)
    V = Vh.transpose(-1, -2)
    sign = torch.sign(torch.linalg.det(V @ U.transpose(-1, -2)))
    d = torch.stack([torch.ones_like(sign), torch.ones_like(sign), torch.where(sign == 0, 1.0, sign)], dim=-1)
    R = (V * d[..., None, :]) @ U.transpose(-1, -2)
    return R, (S * d).sum(-1)[..., None, None]


@numpy_or_torch
def procrustes_align(pred, target):
    """Align ``pred`` to ``target`` with the best similarity transform (FreiHAND eval protocol).

    pred, target: (N, 3) or (..., N, 3), same shape and unit. Steps: 1. centre both; 2. divide each by its
    Frobenius norm; 3. rotation by orthogonal Procrustes (SVD, reflection excluded) and the optimal scale;
    4. undo the target's normalisation and translation.
    Returns (same shape as pred) the aligned prediction, in the target's unit and frame.
    """
    if pred.shape != target.shape or pred.shape[-1] != 3:
        raise ValueError(f"procrustes_align: pred and target must share one shape (..., N, 3), "
                         f"got {tuple(pred.shape)} and {tuple(target.shape)}")
    X, _, _ = _centre_and_normalise(pred)
    Y, t_mean, t_norm = _centre_and_normalise(target)
    R, c = _rotation_and_scale(X, Y)
    return c * (X @ R.transpose(-1, -2)) * t_norm + t_mean


@numpy_or_torch
def mpjpe(pred, target):
    """Mean per-joint (or per-vertex) position error: mean over N of |pred - target|.

    pred, target: (..., N, 3). Returns (...) (a 0-d value for (N, 3) input) in the input unit.
    """
    return torch.linalg.vector_norm(pred - target, dim=-1).mean(-1)


@numpy_or_torch
def pa_mpjpe(pred, target):
    """Procrustes-aligned MPJPE (FreiHAND PA-MPJPE / PA-MPVE): :func:`mpjpe` after :func:`procrustes_align`.

    pred, target: (..., N, 3). Returns (...) in the input unit.
    """
    return mpjpe(procrustes_align(pred, target), target)
