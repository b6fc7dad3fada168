"""The model fit's objective: parameter layout, data and prior terms, cost and Gauss-Newton normal equations.

Parameters x (n = 16 + k, float64): [0:3] global rotation (axis-angle, rad), [3:6] translation (m, left-camera
frame), [6:6+k] whitened PCA pose coefficients z (``priors.whitened_basis``), [6+k:16+k] shape (10).
Cost = sum over data terms of weight x 0.5 sum rho(s) (``fit_losses``) + 0.5 |r|^2 of the priors. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.reconstruction import fit_losses as fl
from app.reconstruction.fit_config import FitConfig
from app.reconstruction.kinematics import KeypointKinematics, KinematicState, forward, jacobian
from app.reconstruction.priors import PosePrior, joint_limit_residual, pca_box

N_SHAPE = 10


@dataclass(frozen=True)
class FitModel:
    """What the fit needs of one hand model: keypoint kinematics and the pose space (one side)."""

    kinematics: KeypointKinematics
    prior: PosePrior

    @property
    def is_left(self) -> bool:
        return self.kinematics.is_left


@dataclass(frozen=True)
class FitData:
    """Observations of one hand (float64).

    keypoints_cam_m: (21, 3) metres, left-camera frame, NaN rows missing, or None (mono);
    sigma_3d_m: (21,) metres, the expected error of each 3D keypoint (the objective uses this one);
    views: per view (P (3, 4) left-camera metres -> undistorted pixels, px (21, 2) pixels, NaN rows missing);
    world_m: (21, 3) metres, hand-centred, camera axes (MediaPipe world landmarks), or None;
    sigma_3d_tight_m: (21,) metres, a tighter 3D sigma for the first stage of a cold start (None = sigma_3d_m).
    """

    keypoints_cam_m: np.ndarray | None
    sigma_3d_m: np.ndarray
    views: tuple[tuple[np.ndarray, np.ndarray], ...]
    world_m: np.ndarray | None
    sigma_3d_tight_m: np.ndarray | None = None


@dataclass(frozen=True)
class Anchor:
    """The temporal prior's target (the previous frame): theta_hand (45,), rotvec (3,) rad; transl_m (3,) m;
    shape (10,)."""

    theta_hand: np.ndarray
    rotvec: np.ndarray
    transl_m: np.ndarray
    shape: np.ndarray


@dataclass(frozen=True)
class Layout:
    """Slices of the parameter vector for k PCA coefficients."""

    k: int

    @property
    def n(self) -> int:
        return 16 + self.k

    rot = slice(0, 3)
    transl = slice(3, 6)

    @property
    def z(self) -> slice:
        return slice(6, 6 + self.k)

    @property
    def shape(self) -> slice:
        return slice(6 + self.k, 16 + self.k)


@dataclass(frozen=True)
class Evaluation:
    """The objective at x: cost and the kinematic state it came from (reused for the normal equations)."""

    x: np.ndarray
    cost: float
    pose: np.ndarray
    state: KinematicState


def unpack(x: np.ndarray, mean_rad: np.ndarray, basis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x -> (pose (48,) axis-angle rad, shape (10,), transl_m (3,)); theta_hand = mean + z @ basis."""
    lay = Layout(basis.shape[0])
    return np.concatenate([x[lay.rot], mean_rad + x[lay.z] @ basis]), x[lay.shape], x[lay.transl]


class Objective:
    """cost(x) and its IRLS normal equations for one hand, one frame and one robust scale."""

    def __init__(self, model: FitModel, data: FitData, cfg: FitConfig, basis: np.ndarray,
                 anchor: Anchor | None, robust_scale: float):
        self.model, self.data, self.cfg, self.basis, self.anchor = model, data, cfg, basis, anchor
        self.scale = robust_scale
        self.layout = Layout(basis.shape[0])

    def evaluate(self, x: np.ndarray) -> Evaluation:
        pose, shape, transl = unpack(x, self.model.prior.mean_rad, self.basis)
        st = forward(self.model.kinematics, pose, shape, transl)
        cost = sum(w * fl.block_cost(b, self.scale, self.cfg.robust_loss) for w, b in self._data(st, None))
        cost += sum(0.5 * float(r @ r) for r, _, _ in self._priors(x, pose, False))
        return Evaluation(x=x, cost=cost, pose=pose, state=st)

    def normal_equations(self, ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
        """(H (n, n), g (n,)): Gauss-Newton J^T W J and J^T W r at ``ev`` (IRLS weights at ev). All dense
        rows go through one matrix product; diagonal priors are added to H's diagonal."""
        n = self.layout.n
        rows, residuals = [], []
        for w, block in self._data(ev.state, self._keypoint_jacobian(ev)):
            J, r = fl.weighted_rows(block, self.scale, self.cfg.robust_loss, w)
            rows.append(J)
            residuals.append(r)
        diag, g_diag = np.zeros(n), np.zeros(n)
        for r, cols, J in self._priors(ev.x, ev.pose, True):
            if J.ndim == 1:
                diag[cols] += J * J
                g_diag[cols] += J * r
            else:
                dense = np.zeros((len(r), n))
                dense[:, cols] = J
                rows.append(dense)
                residuals.append(r)
        # [J | r]^T [J | r] holds J^T J and J^T r: one matrix product (a separate J^T r is a BLAS gemv that
        # OpenBLAS runs on two threads, which costs milliseconds on a busy machine)
        A = np.concatenate([np.concatenate(rows), np.concatenate(residuals)[:, None]], axis=1)
        M = A.T @ A
        H = M[:n, :n]
        H[np.diag_indices(n)] += diag
        return H, M[:n, n] + g_diag

    def _keypoint_jacobian(self, ev: Evaluation) -> np.ndarray:
        """(21, 3, n): keypoints by [rotation, translation, z, shape]."""
        d_pose, d_shape = jacobian(self.model.kinematics, ev.pose, ev.state)
        eye = np.broadcast_to(np.eye(3), (21, 3, 3))
        return np.concatenate([d_pose[..., :3], eye, d_pose[..., 3:] @ self.basis.T, d_shape], axis=-1)

    def _data(self, st: KinematicState, d_kp: np.ndarray | None) -> list[tuple[float, fl.Rows]]:
        """(weight, rows) of every data term present."""
        cfg, data, kp = self.cfg, self.data, st.keypoints_m
        blocks = []
        if data.keypoints_cam_m is not None and cfg.weight_3d > 0:
            blocks.append((cfg.weight_3d, fl.point_rows(kp, d_kp, data.keypoints_cam_m, data.sigma_3d_m)))
        if cfg.weight_2d > 0:
            blocks += [(cfg.weight_2d, fl.projection_rows(kp, d_kp, P, px, cfg.sigma_2d_px)) for P, px in data.views]
        if data.world_m is not None and cfg.weight_world > 0:
            blocks.append((cfg.weight_world, fl.centred_rows(kp, d_kp, data.world_m, cfg.sigma_world_m)))
        return blocks

    def _priors(self, x: np.ndarray, pose: np.ndarray, jac: bool) -> list[tuple]:
        """(r, columns, J) of every prior (pose, PCA box, joint limits, shape, temporal): J is the derivative
        by x[columns], (m,) for a diagonal block or (m, len) dense; None when ``jac`` is False."""
        cfg, lay = self.cfg, self.layout
        z, w_pose = x[lay.z], np.sqrt(cfg.weight_pose_prior)
        r_box, d_box = pca_box(z, cfg.pca_box_sigmas)
        r_box, d_box = r_box / cfg.pca_box_softness, d_box / cfg.pca_box_softness
        out = [(w_pose * z, lay.z, np.full(lay.k, w_pose) if jac else None), (r_box, lay.z, d_box if jac else None)]
        if self.model.prior.has_limits:
            r, J = joint_limit_residual(pose[3:], self.model.prior, cfg.limit_sigma_rad, jac)
            out.append((r, lay.z, J @ self.basis.T if jac else None))
        inv = 1.0 / cfg.shape_sigma
        out.append((x[lay.shape] * inv, lay.shape, np.full(10, inv) if jac else None))
        if self.anchor is not None and cfg.weight_temporal > 0:
            out += self._temporal(x, pose, jac)
        return out

    def _temporal(self, x: np.ndarray, pose: np.ndarray, jac: bool) -> list[tuple]:
        """Pull towards the previous frame (one sigma per quantity, see FitConfig.temporal_*)."""
        cfg, lay, a = self.cfg, self.layout, self.anchor
        w = np.sqrt(cfg.weight_temporal)
        s_pose, s_rot = w / cfg.temporal_pose_rad, w / cfg.temporal_rot_rad
        s_t, s_shape = w / cfg.temporal_transl_m, w / cfg.temporal_shape
        return [
            (s_pose * (pose[3:] - a.theta_hand), lay.z, s_pose * self.basis.T if jac else None),
            (s_rot * (x[lay.rot] - a.rotvec), lay.rot, np.full(3, s_rot) if jac else None),
            (s_t * (x[lay.transl] - a.transl_m), lay.transl, np.full(3, s_t) if jac else None),
            (s_shape * (x[lay.shape] - a.shape), lay.shape, np.full(10, s_shape) if jac else None),
        ]
