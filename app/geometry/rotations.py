"""Axis-angle rotations and the left/right hand mirror (torch first, batched, numpy accepted).

An axis-angle vector ``aa`` (..., 3) is the rotation axis times the angle in radians (right-handed, as in
``cv2.Rodrigues`` and MANO). Rotation matrices ``R`` are (..., 3, 3) and act on column vectors: p' = R p.
Both conversions are smooth at zero angle (Taylor branches selected with a NaN-free double ``torch.where``),
so autograd gives finite gradients at exactly zero rotation.
"""

from __future__ import annotations

import torch

from app.geometry.camera import numpy_or_torch

_SMALL_SQ = 1e-6  # squared-angle threshold below which the Taylor series are used


def _skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrix [v]_x with [v]_x w = v x w."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(v.shape + (3,))


def _rodrigues_coefficients(theta_sq: torch.Tensor):
    """a = sin(t)/t and b = (1 - cos t)/t^2 for t^2 = theta_sq, finite with finite gradients at t = 0."""
    small = theta_sq < _SMALL_SQ
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    t = safe_sq.sqrt()
    a_big = torch.sin(t) / t
    b_big = 2 * torch.sin(t / 2) ** 2 / safe_sq  # 2 sin^2(t/2) avoids cancellation in 1 - cos t
    a_small = 1 - theta_sq / 6 + theta_sq**2 / 120
    b_small = 0.5 - theta_sq / 24 + theta_sq**2 / 720
    return torch.where(small, a_small, a_big), torch.where(small, b_small, b_big)


@numpy_or_torch
def axis_angle_to_matrix(aa):
    """Rodrigues' formula. aa: (..., 3) radians. Returns (..., 3, 3): R = I + a [aa]_x + b [aa]_x^2,
    a = sin t / t, b = (1 - cos t) / t^2, t = |aa|. Matches ``cv2.Rodrigues`` (vector -> matrix)."""
    a, b = _rodrigues_coefficients((aa * aa).sum(-1))
    S = _skew(aa)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device)
    return eye + a[..., None, None] * S + b[..., None, None] * (S @ S)


def _quaternion_candidates(R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shepperd's method: four (w, x, y, z) estimates (..., 4, 4) and the (..., 4) values 4 q_i^2.

    Row i is accurate when component i is the largest (then |q_i| >= 1/2); the others may be garbage.
    Denominators are clamped so unused rows never produce inf/NaN (nor NaN gradients).
    """
    m = R.reshape(R.shape[:-2] + (9,)).unbind(-1)
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m
    sq = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    q_abs = sq.clamp(min=1e-12).sqrt() / 2  # |q_i| when row i is the chosen one
    s21, s02, s10 = m21 - m12, m02 - m20, m10 - m01  # = 4 w (x, y, z)
    a01, a02, a12 = m01 + m10, m02 + m20, m12 + m21  # = 4 (xy, xz, yz)
    rows = [
        torch.stack([sq[..., 0], s21, s02, s10], -1),
        torch.stack([s21, sq[..., 1], a01, a02], -1),
        torch.stack([s02, a01, sq[..., 2], a12], -1),
        torch.stack([s10, a02, a12, sq[..., 3]], -1),
    ]
    return torch.stack(rows, -2) / (4 * q_abs.clamp(min=0.1))[..., None], sq


def _matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation -> (..., 4) unit quaternion (w, x, y, z) with w >= 0."""
    cand, sq = _quaternion_candidates(R)
    best = sq.argmax(-1)[..., None, None].expand(sq.shape[:-1] + (1, 4))
    q = cand.gather(-2, best)[..., 0, :]
    return torch.where(q[..., :1] < 0, -q, q)


@numpy_or_torch
def matrix_to_axis_angle(R):
    """Inverse Rodrigues. R: (..., 3, 3) rotation. Returns (..., 3) radians with angle in [0, pi].

    Goes through a quaternion (Shepperd's method), which stays accurate near 0 and near pi where the
    trace/skew-part formula loses precision; aa = 2 atan2(|v|, w) v / |v|. At exactly pi the sign of the axis
    is arbitrary (aa and -aa are the same rotation). Matches ``cv2.Rodrigues`` (matrix -> vector).
    """
    q = _matrix_to_quaternion(R)
    w, v = q[..., 0], q[..., 1:]
    n_sq = (v * v).sum(-1)
    small = n_sq < _SMALL_SQ
    safe_n = torch.where(small, torch.ones_like(n_sq), n_sq).sqrt()
    big = 2 * torch.atan2(safe_n, w) / safe_n
    r = n_sq / (w * w)  # small branch: w > 0.99, so atan(n/w)/n = (1 - r/3 + r^2/5) / w
    factor = torch.where(small, 2 * (1 - r / 3 + r * r / 5) / w, big)
    return v * factor[..., None]


def _mirror_signs(last_dim: int, like: torch.Tensor) -> torch.Tensor:
    if last_dim % 3:
        raise ValueError(f"mirror_axis_angle: last dim must be 3 or 3 J (e.g. 48), got {last_dim}")
    return torch.tensor([1.0, -1.0, -1.0], dtype=like.dtype, device=like.device).repeat(last_dim // 3)


@numpy_or_torch
def mirror_axis_angle(aa):
    """Mirror rotations across the x = 0 plane (left hand <-> right hand, MANO's convention).

    aa: (..., 3) or (..., 3 J) (e.g. a full (48,) MANO pose) radians. Returns the same shape with every
    (x, y, z) -> (x, -y, -z), which is R' = M R M with M = diag(-1, 1, 1).
    """
    return aa * _mirror_signs(aa.shape[-1], aa)


@numpy_or_torch
def mirror_points_x(points):
    """Mirror points across the x = 0 plane: (..., 3) (x, y, z) -> (-x, y, z). Same units and frame."""
    return points * torch.tensor([-1.0, 1.0, 1.0], dtype=points.dtype, device=points.device)
