"""Pose and shape priors of the model fit (pure numpy): PCA pose space, joint limits, shape and temporal terms.

The finger pose (45 axis-angle values) is parameterised by whitened PCA coefficients z:
``theta_hand = mean + z @ basis`` with ``basis = std[:k, None] * components[:k]`` (k <= 45), so the Gaussian
pose prior is simply |z|^2 and a "PCA box" |z_i| <= z_max bounds each principal direction. Both only need
MANO's ``hands_components`` / ``hands_mean``; the open model also ships each component's standard deviation
(``hands_components_std``) and anatomical joint limits (``joint_frames`` / ``joint_limits``). Real MANO has
neither: the standard deviations then fall back to a geometric decay over the (variance-ordered) rows, and
the PCA box stands in for the joint limits.

Each term returns residual rows r (already divided by their sigma, so weights are dimensionless) and their
Jacobian rows J with respect to the quantity named in the function; the caller places them in the full
parameter vector. Angles are radians.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve

N_HAND_POSE = 45


@dataclass(frozen=True)
class PosePrior:
    """A hand model's pose space. mean_rad: (45,) float64; components: (45, 45) float64, rows = principal
    directions by decreasing variance; std_rad: (45,) float64 standard deviation along each row;
    frames: (15, 3, 3) float64 rows = (flexion, abduction, twist) axes per joint, model frame, or None;
    limits_rad: (15, 3, 2) float64 (min, max) of those angles, or None. std_source: 'model' (shipped) or
    'decay' (the fallback of ``pose_prior_from_dict``). limit_map: (45, 45) ``limit_matrix(frames)`` or None."""

    mean_rad: np.ndarray
    components: np.ndarray
    std_rad: np.ndarray
    frames: np.ndarray | None
    limits_rad: np.ndarray | None
    std_source: str
    limit_map: np.ndarray | None = None

    def __post_init__(self):
        if self.frames is not None and self.limit_map is None:  # frozen: set the derived field once
            object.__setattr__(self, "limit_map", limit_matrix(self.frames))

    @property
    def has_limits(self) -> bool:
        return self.frames is not None and self.limits_rad is not None


def _array(d: dict, key: str, shape: tuple) -> np.ndarray | None:
    value = d.get(key)
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape or not np.all(np.isfinite(arr)):
        raise ValueError(f"hand model key '{key}': expected finite values of shape {shape}, got {arr.shape}; "
                         "rebuild the open model with `python -m models.hand_model generate`")
    return arr


def pose_prior_from_dict(d: dict, fallback_top_std_rad: float = 0.8, fallback_decay: float = 0.9) -> PosePrior:
    """PosePrior from a MANO-layout dict (``models.hand_model.load_mano_dict``).

    Without ``hands_components_std`` (real MANO), std_i = fallback_top_std_rad * fallback_decay^i: the rows
    are ordered by variance, which is all the file says about their spread.
    """
    comps = _array(d, "hands_components", (N_HAND_POSE, N_HAND_POSE))
    mean = _array(d, "hands_mean", (N_HAND_POSE,))
    if comps is None or mean is None:
        raise ValueError("hand model has no 'hands_components' / 'hands_mean'; a MANO-layout model needs both")
    std = _array(d, "hands_components_std", (N_HAND_POSE,))
    source = "model"
    if std is None:
        std, source = fallback_top_std_rad * fallback_decay ** np.arange(N_HAND_POSE), "decay"
    frames = _array(d, "joint_frames", (15, 3, 3))
    limits = _array(d, "joint_limits", (15, 3, 2))
    if (frames is None) != (limits is None):
        frames = limits = None  # one without the other cannot be used
    return PosePrior(mean_rad=mean, components=comps, std_rad=std, frames=frames, limits_rad=limits,
                     std_source=source)


def whitened_basis(prior: PosePrior, n_components: int, min_std_rad: float) -> np.ndarray:
    """(k, 45) float64 rows std_i * component_i, std floored at ``min_std_rad`` so that directions the
    training poses barely used stay reachable for real hands."""
    if not 1 <= n_components <= N_HAND_POSE:
        raise ValueError(f"n_pose_components must be in 1..{N_HAND_POSE}, got {n_components}")
    std = np.maximum(prior.std_rad[:n_components], min_std_rad)
    return std[:, None] * prior.components[:n_components]


def hand_pose_to_z(theta_hand: np.ndarray, basis: np.ndarray, prior: PosePrior) -> np.ndarray:
    """(45,) finger axis-angle -> (k,) whitened coefficients: least squares (B B^T) z = B (theta - mean),
    exact when k = 45. Cholesky, not LAPACK's threaded LU/SVD (milliseconds on a busy machine)."""
    return cho_solve(cho_factor(basis @ basis.T, check_finite=False), basis @ (theta_hand - prior.mean_rad),
                     check_finite=False)


def pca_box(z: np.ndarray, z_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Hinge on |z_i| > z_max (a soft bound on each principal direction, usable without joint limits).
    Returns (r (k,), diagonal of dr/dz (k,)); zero where inside."""
    excess = np.abs(z) - z_max
    active = excess > 0
    return np.where(active, np.sign(z) * excess, 0.0), active.astype(np.float64)


def joint_angles(theta_hand: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """(45,) axis-angle -> (15, 3) approximate (flexion, abduction, twist): the axis-angle projected on each
    joint's anatomical axes. Exact for a rotation about one axis; for the small abduction and twist of a
    finger the error is second order, which is enough for a soft limit."""
    return np.einsum("jab,jb->ja", frames, theta_hand.reshape(15, 3))


def limit_matrix(frames: np.ndarray) -> np.ndarray:
    """(45, 45) block-diagonal map from the 45 axis-angle values to the 45 angles of ``joint_angles``."""
    F = np.zeros((N_HAND_POSE, N_HAND_POSE))
    for j in range(15):  # angle rows (j, 0..2) depend on theta_j only
        F[3 * j:3 * j + 3, 3 * j:3 * j + 3] = frames[j]
    return F


def joint_limit_residual(theta_hand: np.ndarray, prior: PosePrior, sigma_rad: float, jac: bool = True
                         ) -> tuple[np.ndarray, np.ndarray | None]:
    """Soft joint limits: r = (a - clip(a, min, max)) / sigma per angle a of ``joint_angles``.

    Returns (r (45,), J (45, 45) = dr / d theta_hand or None without ``jac``); rows inside the limits are zero.
    """
    a = prior.limit_map @ theta_hand
    lo, hi = prior.limits_rad[..., 0].reshape(-1), prior.limits_rad[..., 1].reshape(-1)
    r = (a - np.clip(a, lo, hi)) / sigma_rad
    if not jac:
        return r, None
    return r, prior.limit_map * ((r != 0) / sigma_rad)[:, None]
