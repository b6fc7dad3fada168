"""Model-fit initialiser: hand model pose, shape and translation from keypoints, without learned weights.

``fit_keypoints`` (pure numpy) fits the hand model's 48 axis-angle pose values, 10 shape values and
translation (metres, left-camera frame) to the triangulated 3D keypoints and the 2D keypoints of every view
(and, for a hand seen by one view only, MediaPipe's metric hand-centred world landmarks), with a robust loss,
pose priors (Gaussian in PCA space, PCA box, joint limits when the model ships them), a shape prior and a
temporal prior towards the previous frame. Solver: Levenberg-Marquardt over [global rotation, translation,
whitened PCA pose coefficients, shape] with the analytic keypoint Jacobian of ``kinematics``.
- Cold start (no previous state): size from bone lengths (3D keypoints, else world landmarks), the mean pose
  turned by Kabsch of the palm keypoints (onto the 3D keypoints, else the world landmarks, else the best of
  8 orientations) and placed by least squares on the pixels, then a robust fit with graduated non-convexity
  (robust scale x ``gnc_start`` and a tight 3D sigma first, then the final scale with depth-aware 3D sigmas).
- Warm start: from the previous HandState, a few iterations; redone cold if its 2D error stays high.
The 3D keypoints' sigma grows with depth as the stereo depth error does (``depth_sigma_m``): the 2D terms hold
the same information, the 3D term mostly widens the basin of convergence.

``HandFitter.fit`` is the stage: it reads a HandObservation and a StereoCalibration, picks the left or right
hand model (``obs.is_left``; keypoints are never mirrored, the left model is), fits, and returns a HandMesh
whose ``fit_residual`` is the mean 2D reprojection error in pixels over every view's observed keypoints.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from app.config import HandModelConfig
from app.detection.keypoints3d import undistort_px, world_landmarks_in_left_axes
from app.geometry.rotations import matrix_to_axis_angle
from app.reconstruction import initialise as ini
from app.reconstruction.fit_config import FitConfig
from app.reconstruction.kinematics import build_kinematics, build_mesh_arrays, forward, mesh_vertices, rodrigues
from app.reconstruction.objective import Anchor, Evaluation, FitData, FitModel, Layout, Objective, unpack
from app.reconstruction.priors import hand_pose_to_z, pose_prior_from_dict, whitened_basis
from app.reconstruction.solver import levenberg_marquardt
from app.types import HandMesh, HandObservation, HandState, StereoCalibration
from models.hand_model.layer import HandModel, build_hand_model
from models.hand_model.mano_io import find_mano_file, load_mano_dict, open_model_path

log = logging.getLogger(__name__)

__all__ = ["FitConfig", "FitInfo", "FitModel", "HandFitter", "build_fit_model", "build_fitter", "fit_keypoints"]

_CANDIDATE_ITERATIONS = 8  # per starting orientation of a mono cold start without world landmarks


@dataclass(frozen=True)
class FitInfo:
    """How a fit went. iterations: LM linear solves over all stages; converged: the last stage met the
    tolerance; cold: started without a previous state; restarted: a warm fit was redone cold;
    cost: final objective value; mean_px: mean 2D reprojection error (px) over all views' observed keypoints
    (NaN without 2D); mean_3d_m: mean distance (m) to the observed 3D keypoints (NaN when mono);
    outliers: observed keypoint measurements (3D points and per-view 2D points) left further than
    robust_scale sigmas from the model (down-weighted by the robust loss)."""

    iterations: int
    converged: bool
    cold: bool
    restarted: bool
    cost: float
    mean_px: float
    mean_3d_m: float
    outliers: int


# ---------------------------------------------------------------------------------------------------------
# Pure fit
# ---------------------------------------------------------------------------------------------------------


def build_fit_model(hand_model: HandModel, model_dict: dict) -> FitModel:
    """FitModel from a HandModel and the MANO-layout dict it was built from (for the pose-space arrays)."""
    return FitModel(kinematics=build_kinematics(hand_model), prior=pose_prior_from_dict(model_dict))


def _optional_array(name: str, value, shape: tuple) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
    return np.where(np.isfinite(arr), arr, np.nan)


def _views(keypoints_px_per_view: Sequence, P_per_view: Sequence) -> tuple:
    if len(keypoints_px_per_view) != len(P_per_view):
        raise ValueError(f"keypoints_px_per_view and P_per_view must pair up, got {len(keypoints_px_per_view)} "
                         f"pixel arrays and {len(P_per_view)} projection matrices")
    views = []
    for i, (px, P) in enumerate(zip(keypoints_px_per_view, P_per_view, strict=True)):
        P = np.asarray(P, dtype=np.float64)
        if P.shape != (3, 4) or not np.all(np.isfinite(P)):
            raise ValueError(f"P_per_view[{i}]: expected a finite (3, 4) projection matrix, got {P.shape}")
        views.append((P, _optional_array(f"keypoints_px_per_view[{i}]", px, (21, 2))))
    return tuple(views)


def _check_state(name: str, state, model: FitModel) -> None:
    if state is None:
        return
    if not isinstance(state, HandState):
        raise ValueError(f"{name}: expected a HandState or None, got {type(state).__name__}")
    if state.is_left != model.is_left:
        side = "left" if model.is_left else "right"
        raise ValueError(f"{name} is a {'left' if state.is_left else 'right'} hand but the model is the {side} "
                         "one; pass the state of the same hand (or None for a cold start)")


def depth_sigma_m(points_m: np.ndarray, views: tuple, cfg: FitConfig) -> np.ndarray:
    """(21,) expected depth error of triangulated keypoints, z^2 sqrt(2) sigma_2d / (f B) (rectified-stereo
    disparity error; f from the first view's sqrt |det P[:, :3]|, B between the first two optical centres).
    Zero with fewer than two views. The 2D terms already hold this information; the 3D term only has to
    guide the solver, so it must not claim more precision than the pixels give."""
    if len(views) < 2:
        return np.zeros(21)
    (P0, _), (P1, _) = views[:2]
    centres = [-np.linalg.solve(P[:, :3], P[:, 3]) for P in (P0, P1)]
    baseline = float(np.linalg.norm(centres[1] - centres[0]))
    focal = float(np.sqrt(abs(np.linalg.det(P0[:, :3]))))
    z = np.nan_to_num(points_m[:, 2], nan=0.0)
    return z * z * np.sqrt(2.0) * cfg.sigma_2d_px / max(focal * baseline, 1e-12)


def make_fit_data(keypoints_cam_m, keypoints_px_per_view: Sequence, P_per_view: Sequence, cfg: FitConfig,
                  world_landmarks_m=None, residual_px=None) -> FitData:
    """Validated float64 FitData; the 3D sigma of a keypoint grows with its triangulation residual."""
    points = _optional_array("keypoints_cam_m", keypoints_cam_m, (21, 3))
    views = _views(keypoints_px_per_view, P_per_view)
    world = _optional_array("world_landmarks_m", world_landmarks_m, (21, 3))
    res = _optional_array("residual_px", residual_px, (21,))
    growth = np.ones(21) if res is None else np.maximum(1.0, np.nan_to_num(res, nan=0.0) / cfg.residual_ref_px)
    sigma = np.full(21, cfg.sigma_3d_m)
    if points is not None:
        sigma = np.maximum(sigma, depth_sigma_m(points, views, cfg))
    n3 = 0 if points is None else int(np.isfinite(points).all(1).sum())
    n2 = max([int(np.isfinite(px).all(1).sum()) for _, px in views], default=0)
    if n3 < 3 and n2 < 4:
        raise ValueError(f"too few keypoints to fit a hand: {n3} valid 3D and at most {n2} valid 2D in one "
                         "view; need >= 3 triangulated or >= 4 in one view (skip this hand for the frame)")
    return FitData(keypoints_cam_m=points, sigma_3d_m=sigma * growth, views=views, world_m=world,
                   sigma_3d_tight_m=cfg.sigma_3d_m * growth)


def _pack(state: HandState, model: FitModel, basis: np.ndarray) -> np.ndarray:
    pose = state.pose.astype(np.float64)
    z = hand_pose_to_z(pose[3:], basis, model.prior)
    return np.concatenate([pose[:3], state.transl_m.astype(np.float64), z, state.shape.astype(np.float64)])


def _anchor(prev: HandState | None) -> Anchor | None:
    if prev is None:
        return None
    pose = prev.pose.astype(np.float64)
    return Anchor(theta_hand=pose[3:], rotvec=pose[:3], transl_m=prev.transl_m.astype(np.float64),
                  shape=prev.shape.astype(np.float64))


def _wrap_rotvec(r: np.ndarray) -> np.ndarray:
    """The same rotation with angle in [0, pi] (LM steps may carry it past pi)."""
    angle = np.linalg.norm(r)
    return r if angle <= np.pi else r * (1.0 - 2.0 * np.pi / angle)


def _start(shape: np.ndarray, rotvec: np.ndarray, t: np.ndarray, k: int) -> np.ndarray:
    """Parameter vector of the mean pose (z = 0) with the given shape, rotation and translation."""
    return np.concatenate([rotvec, t, np.zeros(k), shape])


def cold_starts(model: FitModel, data: FitData, cfg: FitConfig, k: int) -> list[np.ndarray]:
    """Initial parameter vectors: 1. shape from bone lengths (3D keypoints, else world landmarks);
    2. the model at its mean pose; 3. rotation by Kabsch of the palm onto the 3D keypoints (translation too),
    else onto the world landmarks, else several candidate orientations; 4. translation from the pixels when
    no 3D keypoints place the hand."""
    kin = model.kinematics
    has_3d = data.keypoints_cam_m is not None and np.isfinite(data.keypoints_cam_m).all(1).sum() >= 3
    size_src, sigma = (data.keypoints_cam_m, cfg.sigma_3d_m) if has_3d else (data.world_m, cfg.sigma_world_m)
    shape = np.zeros(10) if size_src is None else ini.shape_from_bones(kin, size_src, sigma, cfg.shape_sigma)
    st = forward(kin, np.concatenate([np.zeros(3), model.prior.mean_rad]), shape, np.zeros(3))
    kp, root = st.keypoints_m, st.o_m[0]
    if has_3d:
        R, t = ini.align_to_points(kp, root, data.keypoints_cam_m)
        return [_start(shape, _rotvec(R), t, k)]
    if data.world_m is not None and np.isfinite(data.world_m[ini.PALM]).all(1).sum() >= 3:
        R, _ = ini.align_to_points(kp, root, data.world_m)
        rotations = [_rotvec(R)]
    else:
        rotations = list(ini.rotation_candidates())
    starts = []
    for rv in rotations:
        R = rodrigues(rv[None])[0]
        placed = (kp - root) @ R.T + root
        starts.append(_start(shape, rv, ini.translation_from_pixels(placed, data.views), k))
    return starts


def _rotvec(R: np.ndarray) -> np.ndarray:
    return np.asarray(matrix_to_axis_angle(R), dtype=np.float64)


def _run(model, data, cfg, basis, anchor, x0, stages) -> tuple[Evaluation, int, bool]:
    """LM stages (robust-scale multiplier, iterations, FitData) in sequence -> (final evaluation, iterations,
    converged)."""
    x, total, converged, ev = x0, 0, False, None
    for mult, iterations, stage_data in stages:
        obj = Objective(model, stage_data, cfg, basis, anchor, cfg.robust_scale * mult)
        res = levenberg_marquardt(obj, x, iterations, cfg.tolerance)
        ev, x = res.evaluation, res.evaluation.x.copy()
        x[Layout.rot] = _wrap_rotvec(x[Layout.rot])
        total, converged = total + res.iterations, res.converged
    return ev, total, converged


def _fit_cold(model, data: FitData, cfg, basis, anchor) -> tuple[Evaluation, int, bool]:
    """Graduated fit: 1. robust scale x gnc_start (then smaller, over gnc_steps - 1 stages) with the 3D keypoints
    held at their tight sigma_3d_m (a wide, nearly convex basin); 2. the final robust scale with the
    depth-aware 3D sigmas of ``data``."""
    tight = data if data.sigma_3d_tight_m is None else replace(data, sigma_3d_m=data.sigma_3d_tight_m)
    starts = cold_starts(model, data, cfg, basis.shape[0])
    spent = 0
    if len(starts) > 1:  # keep the orientation whose short robust fit ends lowest
        short = [_run(model, data, cfg, basis, anchor, x0, [(cfg.gnc_start, _CANDIDATE_ITERATIONS, tight)])
                 for x0 in starts]
        spent = sum(s[1] for s in short)
        starts = [min(short, key=lambda s: s[0].cost)[0].x]
    steps = cfg.gnc_steps
    per = max(1, cfg.iterations_cold // steps)
    mults = cfg.gnc_start ** np.linspace(1.0, 0.0, steps)
    stages = [(m, per, tight if i < steps - 1 else data) for i, m in enumerate(mults)]
    ev, n, conv = _run(model, data, cfg, basis, anchor, starts[0], stages)
    return ev, n + spent, conv


def _statistics(ev: Evaluation, data: FitData, cfg: FitConfig) -> tuple[float, float, int]:
    """(mean 2D error px, mean 3D error m, outlier count) of the model keypoints at ``ev``."""
    kp = ev.state.keypoints_m
    errors_px, outliers = [], 0
    for P, px in data.views:
        h = kp @ P[:, :3].T + P[:, 3]
        e = np.linalg.norm(h[:, :2] / h[:, 2:] - px, axis=1)
        e = e[np.isfinite(e)]
        errors_px.append(e)
        outliers += int((e > cfg.robust_scale * cfg.sigma_2d_px).sum())
    mean_3d = float("nan")
    if data.keypoints_cam_m is not None:
        ok = np.isfinite(data.keypoints_cam_m).all(1)
        d = np.linalg.norm(kp[ok] - data.keypoints_cam_m[ok], axis=1)
        mean_3d = float(d.mean()) if d.size else mean_3d
        outliers += int((d > cfg.robust_scale * data.sigma_3d_m[ok]).sum())
    all_px = np.concatenate(errors_px) if errors_px else np.zeros(0)
    return (float(all_px.mean()) if all_px.size else float("nan")), mean_3d, outliers


def _state(x: np.ndarray, model: FitModel, basis: np.ndarray) -> HandState:
    pose, shape, transl = unpack(x, model.prior.mean_rad, basis)
    pose[:3] = _wrap_rotvec(pose[:3])
    return HandState(pose=pose.astype(np.float32), shape=shape.astype(np.float32),
                     transl_m=transl.astype(np.float32), is_left=model.is_left)


def _fit_warm(model, data, cfg, basis, anchor, init: HandState) -> tuple[Evaluation, int, bool, bool]:
    """A few iterations from ``init``; redone cold when the 2D error stays above restart_residual_px (a lost
    track), keeping the lower cost. Returns (evaluation, iterations, converged, restarted)."""
    ev, n, conv = _run(model, data, cfg, basis, anchor, _pack(init, model, basis), [(1.0, cfg.iterations_warm, data)])
    if _statistics(ev, data, cfg)[0] <= cfg.restart_residual_px:
        return ev, n, conv, False
    cold, n_cold, conv_cold = _fit_cold(model, data, cfg, basis, anchor)
    if cold.cost < ev.cost:
        return cold, n + n_cold, conv_cold, True
    return ev, n + n_cold, conv, True


def fit_keypoints(model: FitModel, keypoints_cam_m: np.ndarray | None, keypoints_px_per_view: Sequence[np.ndarray],
                  P_per_view: Sequence[np.ndarray], init: HandState | None = None, *, cfg: FitConfig | None = None,
                  prev: HandState | None = None, world_landmarks_m: np.ndarray | None = None,
                  residual_px: np.ndarray | None = None) -> tuple[HandState, FitInfo]:
    """Fit one hand model to keypoint observations (the pure core of ``HandFitter``).

    model: FitModel of the hand's side (``build_fit_model``). keypoints_cam_m: (21, 3) metres, left-camera
    frame, NaN rows missing, or None. keypoints_px_per_view: per view (21, 2) undistorted pixels, NaN rows
    missing; P_per_view: per view (3, 4) projection from left-camera metres to those pixels (``CameraView.P``).
    init: warm start (None = cold start). prev: target of the temporal prior (None = no temporal prior).
    world_landmarks_m: (21, 3) metres, MediaPipe world landmarks (hand-centred, camera axes) or None.
    residual_px: (21,) triangulation residuals; a keypoint's 3D sigma grows with them.
    Returns (HandState: pose (48,), shape (10,), transl_m (3,), float32; FitInfo).
    """
    cfg = cfg or FitConfig()
    _check_state("init", init, model)
    _check_state("prev", prev, model)
    data = make_fit_data(keypoints_cam_m, keypoints_px_per_view, P_per_view, cfg, world_landmarks_m, residual_px)
    basis = whitened_basis(model.prior, cfg.n_pose_components, cfg.pose_min_std_rad)
    anchor = _anchor(prev)
    if init is None:
        ev, n, conv = _fit_cold(model, data, cfg, basis, anchor)
        restarted = False
    else:
        ev, n, conv, restarted = _fit_warm(model, data, cfg, basis, anchor, init)
    mean_px, mean_3d, outliers = _statistics(ev, data, cfg)
    info = FitInfo(iterations=n, converged=conv, cold=init is None, restarted=restarted, cost=ev.cost,
                   mean_px=mean_px, mean_3d_m=mean_3d, outliers=outliers)
    return _state(ev.x, model, basis), info


# ---------------------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------------------


def load_model_dict(hand_model_cfg: HandModelConfig, side: str) -> dict:
    """The MANO-layout dict behind ``build_hand_model(hand_model_cfg, side)`` (file I/O, at build time)."""
    mano_dir = hand_model_cfg.resolved_mano_dir()
    return load_mano_dict(find_mano_file(mano_dir, side) if mano_dir else open_model_path(side))


def observation_arrays(obs: HandObservation, calib: StereoCalibration) -> dict:
    """fit_keypoints' keyword arrays from an observation: undistorted pixels and P per seeing view, the 3D
    keypoints and residuals, and (mono only) the seeing view's world landmarks."""
    pairs = [(view, det) for view, det in ((calib.left, obs.left), (calib.right, obs.right)) if det is not None]
    world = world_landmarks_in_left_axes(pairs[0][0], pairs[0][1].world_landmarks_m) if obs.is_mono else None
    return dict(keypoints_cam_m=obs.keypoints_cam_m,
                keypoints_px_per_view=[undistort_px(view, det.keypoints_px) for view, det in pairs],
                P_per_view=[view.P for view, _ in pairs], world_landmarks_m=world, residual_px=obs.residual_px)


class HandFitter:
    """``fit(obs, calib, prev) -> HandMesh``; holds both sides' hand models (torch, on cfg.device, for callers
    such as refinement), their FitModels and the numpy mesh arrays the output is evaluated with."""

    def __init__(self, cfg: FitConfig, hand_models: dict[str, HandModel], fit_models: dict[str, FitModel]):
        self.cfg = cfg
        self.hand_models = hand_models
        self.fit_models = fit_models
        self.mesh_arrays = {side: build_mesh_arrays(m) for side, m in hand_models.items()}
        self.faces = {side: m.faces.cpu().numpy().astype(np.int64) for side, m in hand_models.items()}
        self.last_info: FitInfo | None = None

    def fit(self, obs: HandObservation, calib: StereoCalibration, prev: HandState | None = None) -> HandMesh:
        """Fit the hand of ``obs``; ``prev`` (the same hand's previous state) warm-starts it and anchors the
        temporal prior (a ``prev`` of the other side is ignored: cold start). The FitInfo of the call is kept
        in ``last_info``. Raises ValueError when the observation has too few keypoints to fit."""
        if not isinstance(obs, HandObservation):
            raise ValueError(f"HandFitter.fit: obs must be a HandObservation, got {type(obs).__name__}")
        if not isinstance(calib, StereoCalibration):
            raise ValueError(f"HandFitter.fit: calib must be a StereoCalibration, got {type(calib).__name__}")
        side = "left" if obs.is_left else "right"
        if prev is not None and prev.is_left != obs.is_left:
            # a handedness flip between frames is a live-stream event, not a caller error: start afresh
            log.debug("frame %d: previous state is the other hand; cold start", obs.frame_id)
            prev = None
        state, info = fit_keypoints(self.fit_models[side], init=prev, cfg=self.cfg, prev=prev,
                                    **observation_arrays(obs, calib))
        self.last_info = info
        return self.mesh(state, obs.frame_id, obs.t_capture_ns, info.mean_px)

    def mesh(self, state: HandState, frame_id: int, t_capture_ns: int, fit_residual: float = float("nan")
             ) -> HandMesh:
        """The hand model at ``state`` -> HandMesh (vertices and keypoints, left-camera frame), evaluated in
        numpy with the model's own skinning (equal to HandModel's output to float32 round-off)."""
        side = "left" if state.is_left else "right"
        shape = state.shape.astype(np.float64)
        st = forward(self.fit_models[side].kinematics, state.pose.astype(np.float64), shape,
                     state.transl_m.astype(np.float64))
        verts = mesh_vertices(self.mesh_arrays[side], st, shape)
        return HandMesh(frame_id=frame_id, t_capture_ns=t_capture_ns, verts_m=verts.astype(np.float32),
                        faces=self.faces[side], joints_m=st.keypoints_m.astype(np.float32), state=state,
                        fit_residual=float(fit_residual))


def build_fitter(cfg: FitConfig, hand_model_cfg: HandModelConfig) -> HandFitter:
    """The model-fit stage: both hand models (real MANO when configured, else the open model) on cfg.device."""
    hand_models, fit_models = {}, {}
    for side in ("right", "left"):
        model = build_hand_model(hand_model_cfg, side).to(cfg.device)
        hand_models[side] = model
        fit_models[side] = build_fit_model(model, load_model_dict(hand_model_cfg, side))
        log.info("model fit: %s hand, pose std from %s, joint limits %s", side, fit_models[side].prior.std_source,
                 "on" if fit_models[side].prior.has_limits else "off (PCA box only)")
    return HandFitter(cfg, hand_models, fit_models)
