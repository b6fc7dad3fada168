"""Tests for app/reconstruction/fit.py on synthetic ground truth made from the hand model itself
(app/reconstruction/synthetic.py: ZED Mini at 640x360, hand 0.3-0.6 m away, keypoints projected to both
views, triangulated as the detection stage does)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from app.config import HandModelConfig
from app.geometry.procrustes import mpjpe, pa_mpjpe
from app.reconstruction import FitConfig, build_fit_model, build_fitter, fit_keypoints
from app.reconstruction import synthetic as syn
from app.reconstruction.fit import load_model_dict, observation_arrays
from app.types import HandDetection, HandState
from calibration.presets import preset_rig
from calibration.rig import make_stereo

torch.set_num_threads(1)
MM = 1000.0


@pytest.fixture(scope="module")
def calib():
    return preset_rig("zed-mini", "640x360")


@pytest.fixture(scope="module")
def fitter():
    return build_fitter(FitConfig(), HandModelConfig())


def sample(fitter, calib, seed: int, side: str = "right", noise_px: float = 1.5):
    return syn.synthetic_hand(fitter.hand_models[side], calib, np.random.default_rng(seed), noise_px)


def pa_mpve_mm(mesh, s) -> float:
    return MM * float(pa_mpjpe(mesh.verts_m, s.verts_m))


def palm_length_m(kp: np.ndarray) -> float:
    return float(np.linalg.norm(kp[9] - kp[0]))


def arrays(s, calib):
    """fit_keypoints' inputs of a synthetic stereo sample."""
    return dict(keypoints_cam_m=s.obs.keypoints_cam_m, keypoints_px_per_view=list(s.pixels),
                P_per_view=[calib.left.P, calib.right.P], residual_px=s.obs.residual_px)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_keypoints_recover_pose_and_shape(calib, seed):
    # exact keypoints, and a fit told so (small sigmas): the priors then barely pull
    exact = build_fitter(FitConfig(sigma_2d_px=0.2, sigma_3d_m=0.002), HandModelConfig())
    s = sample(exact, calib, seed, noise_px=0.0)
    mesh = exact.fit(s.obs, calib)
    assert MM * pa_mpjpe(mesh.joints_m, s.keypoints_m) < 0.6
    # the vertices keep the error of what keypoints cannot show (finger girth, thickness: shape directions
    # that move no joint stay at the prior's mean)
    assert pa_mpve_mm(mesh, s) < 1.5
    assert MM * mpjpe(mesh.verts_m, s.verts_m) < 2.0
    assert exact.last_info.mean_px < 0.2 and exact.last_info.cold
    # the mean hand in the mean pose, placed on the palm, is far off: the fit did the work
    mean_state = HandState(pose=np.r_[mesh.state.pose[:3], exact.fit_models["right"].prior.mean_rad].astype(
        np.float32), shape=np.zeros(10, np.float32), transl_m=mesh.state.transl_m, is_left=False)
    assert pa_mpve_mm(exact.mesh(mean_state, 0, 0), s) > 5 * pa_mpve_mm(mesh, s)


def test_noisy_stereo_fit_accuracy(fitter, calib):
    errors = [pa_mpve_mm(fitter.fit(s.obs, calib), s)
              for s in (sample(fitter, calib, seed, noise_px=1.5) for seed in range(10, 16))]
    assert np.mean(errors) < 4.0 and max(errors) < 7.0


def corrupt(s, keypoint: int = 8):
    """Keypoint ``keypoint`` becomes a gross outlier: 6 cm off in 3D and 40 px off in the left view."""
    obs = s.obs
    pts = obs.keypoints_cam_m.copy()
    pts[keypoint] += np.array([0.06, 0.0, 0.0], np.float32)
    kps = obs.left.keypoints_px.copy()
    kps[keypoint] += np.array([40.0, 0.0], np.float32)
    return dataclasses.replace(obs, keypoints_cam_m=pts, left=dataclasses.replace(obs.left, keypoints_px=kps))


def test_one_gross_outlier_is_rejected(fitter, calib):
    s = sample(fitter, calib, 20)
    clean = pa_mpve_mm(fitter.fit(s.obs, calib), s)
    mesh = fitter.fit(corrupt(s), calib)
    assert pa_mpve_mm(mesh, s) < clean + 1.0
    assert fitter.last_info.outliers >= 2  # the 3D point and the left-view pixel
    # the fitted index tip stays on the true one, not on the outlier
    assert MM * np.linalg.norm(mesh.joints_m[8] - s.keypoints_m[8]) < 8.0
    plain = build_fitter(FitConfig(robust_loss="none"), HandModelConfig())
    assert pa_mpve_mm(plain.fit(corrupt(s), calib), s) > pa_mpve_mm(mesh, s) + 1.0  # robustness matters


def moved(state: HandState, rng) -> HandState:
    pose = state.pose + np.r_[rng.normal(0, 0.03, 3), rng.normal(0, 0.05, 45)].astype(np.float32)
    return dataclasses.replace(state, pose=pose, transl_m=state.transl_m + np.float32([0.004, -0.003, 0.005]))


@pytest.mark.parametrize("side", ["right", "left"])
def test_warm_start_converges_in_fewer_iterations(fitter, calib, side):
    s0 = sample(fitter, calib, 30, side)
    prev = fitter.fit(s0.obs, calib)
    cold_iterations = fitter.last_info.iterations
    rng = np.random.default_rng(31)
    s1 = syn.synthetic_hand(fitter.hand_models[side], calib, rng, 1.5, state=moved(s0.state, rng))
    warm = fitter.fit(s1.obs, calib, prev=prev.state)
    info = fitter.last_info
    assert not info.cold and not info.restarted and warm.state.is_left == (side == "left")
    assert info.iterations <= FitConfig().iterations_warm < cold_iterations
    assert pa_mpve_mm(warm, s1) < 4.5
    # without the temporal prior's pull towards the previous fit, the warm start reaches the cold optimum
    free = build_fitter(FitConfig(weight_temporal=0.0, iterations_warm=10), HandModelConfig())
    assert pa_mpve_mm(free.fit(s1.obs, calib, prev=prev.state), s1) == pytest.approx(
        pa_mpve_mm(fitter.fit(s1.obs, calib), s1), abs=0.5)


def test_warm_start_from_a_lost_track_restarts_cold(fitter, calib):
    s = sample(fitter, calib, 40)
    far = dataclasses.replace(s.state, transl_m=s.state.transl_m + np.float32([0.25, 0.0, 0.1]))
    mesh = fitter.fit(s.obs, calib, prev=far)
    assert fitter.last_info.restarted
    assert pa_mpve_mm(mesh, s) < 5.0


@pytest.mark.parametrize("view", ["left", "right"])
def test_mono_fallback_gives_a_sane_metric_hand(fitter, calib, view):
    errors = []
    for seed in range(50, 54):
        s = sample(fitter, calib, seed)
        world = syn.world_landmarks(s.keypoints_m, np.random.default_rng(seed))
        obs = syn.mono_observation(s, view, world)
        assert obs.is_mono and obs.keypoints_cam_m is None
        mesh = fitter.fit(obs, calib)
        errors.append(pa_mpve_mm(mesh, s))
        assert palm_length_m(mesh.joints_m) == pytest.approx(palm_length_m(s.keypoints_m), rel=0.15)
        # depth from the metric size: within 15 % (stereo gets ~2 %)
        assert mesh.joints_m[:, 2].mean() == pytest.approx(s.keypoints_m[:, 2].mean(), rel=0.15)
        assert fitter.last_info.mean_px < 4.0 and np.isnan(fitter.last_info.mean_3d_m)
    assert np.mean(errors) < 6.0


def test_mono_without_world_landmarks_still_fits_the_pixels(fitter, calib):
    s = sample(fitter, calib, 60)
    mesh = fitter.fit(syn.mono_observation(s, "left", None), calib)
    assert fitter.last_info.mean_px < 3.0
    assert 0.06 < palm_length_m(mesh.joints_m) < 0.12  # the shape prior keeps an adult hand size
    assert 0.15 < mesh.joints_m[:, 2].mean() < 1.2


def test_right_view_world_landmarks_are_turned_into_left_camera_axes(calib):
    yaw = np.deg2rad(10.0)
    R = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    rig = make_stereo(calib.left.K, np.zeros(5), calib.left.K, np.zeros(5), R, [-0.063, 0, 0], (640, 360))
    world_left = np.random.default_rng(0).normal(0, 0.03, (21, 3))
    det = HandDetection(keypoints_px=np.full((21, 2), 100, np.float32), score=0.9, handedness="right",
                        crop_box_xywh=np.zeros(4, np.float32), crop_from_image=np.eye(2, 3),
                        world_landmarks_m=(world_left @ R.T).astype(np.float32))
    obs = syn.HandObservation(frame_id=0, t_capture_ns=0, left=None, right=det, keypoints_cam_m=None,
                              residual_px=None, is_left=False)
    out = observation_arrays(obs, rig)
    np.testing.assert_allclose(out["world_landmarks_m"], world_left, atol=1e-6)
    np.testing.assert_allclose(out["P_per_view"][0], rig.right.P)


def test_left_hand_uses_the_left_model(fitter, calib):
    s = sample(fitter, calib, 70, "left")
    mesh = fitter.fit(s.obs, calib)
    assert mesh.state.is_left and pa_mpve_mm(mesh, s) < 4.0
    # the right model cannot explain a left hand as well
    right_state, info = fit_keypoints(fitter.fit_models["right"], **arrays(s, calib))
    assert info.mean_px > fitter.last_info.mean_px + 0.5


def test_mesh_matches_the_torch_hand_model(fitter, calib):
    s = sample(fitter, calib, 80, "left")
    mesh = fitter.fit(s.obs, calib)
    out = fitter.hand_models["left"](torch.from_numpy(mesh.state.pose[None]), torch.from_numpy(
        mesh.state.shape[None]), torch.from_numpy(mesh.state.transl_m[None]))
    np.testing.assert_allclose(mesh.verts_m, out.verts_m[0].detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(mesh.joints_m, out.keypoints_m[0].detach().numpy(), atol=1e-5)
    assert mesh.faces.dtype == np.int64 and mesh.frame_id == s.obs.frame_id
    # fit_residual is the mean 2D reprojection error (px) over both views
    err = [np.linalg.norm(syn.project(P, mesh.joints_m.astype(np.float64)) - px, axis=1)
           for P, px in zip((calib.left.P, calib.right.P), s.pixels, strict=True)]
    assert mesh.fit_residual == pytest.approx(float(np.mean(err)), rel=1e-3)


def test_pca_only_prior_works_without_joint_limits(fitter, calib):
    """Real MANO ships no joint limits nor component spreads: the PCA box and decayed spreads stand in."""
    d = load_model_dict(HandModelConfig(), "right")
    mano_like = {k: v for k, v in d.items() if k not in ("hands_components_std", "joint_frames", "joint_limits")}
    model = build_fit_model(fitter.hand_models["right"], mano_like)
    assert not model.prior.has_limits and model.prior.std_source == "decay"
    s = sample(fitter, calib, 90)
    state, info = fit_keypoints(model, **arrays(s, calib))
    mesh = fitter.mesh(state, 0, 0)
    assert pa_mpve_mm(mesh, s) < 6.0 and info.mean_px < 2.5


def test_temporal_prior_holds_a_hand_whose_keypoints_vanish(fitter, calib):
    s = sample(fitter, calib, 95)
    prev = fitter.fit(s.obs, calib).state
    pts = s.obs.keypoints_cam_m.copy()
    pts[[6, 7, 8]] = np.nan  # index finger lost in 3D and in both views
    px = [p.copy() for p in s.pixels]
    for p in px:
        p[[6, 7, 8]] = np.nan
    args = dict(keypoints_cam_m=pts, keypoints_px_per_view=px, P_per_view=[calib.left.P, calib.right.P])
    drift = {}
    for weight in (1.0, 0.0):
        state, _ = fit_keypoints(fitter.fit_models["right"], init=prev, prev=prev,
                                 cfg=FitConfig(weight_temporal=weight), **args)
        drift[weight] = np.abs(state.pose[6:15] - prev.pose[6:15]).max()  # the index finger's joints
    assert drift[1.0] < 0.15 and drift[0.0] > 3 * drift[1.0]  # without it the pose prior takes the finger


def test_bad_inputs_give_clear_errors(fitter, calib):
    s = sample(fitter, calib, 100)
    model = fitter.fit_models["right"]
    good = arrays(s, calib)
    with pytest.raises(ValueError, match=r"keypoints_cam_m: expected shape \(21, 3\)"):
        fit_keypoints(model, **{**good, "keypoints_cam_m": np.zeros((20, 3))})
    with pytest.raises(ValueError, match="must pair up"):
        fit_keypoints(model, **{**good, "P_per_view": [calib.left.P]})
    with pytest.raises(ValueError, match=r"P_per_view\[1\]: expected a finite \(3, 4\)"):
        fit_keypoints(model, **{**good, "P_per_view": [calib.left.P, np.eye(3)]})
    with pytest.raises(ValueError, match="too few keypoints"):
        fit_keypoints(model, np.full((21, 3), np.nan), [np.full((21, 2), np.nan)], [calib.left.P])
    left_state = dataclasses.replace(s.state, is_left=True)
    with pytest.raises(ValueError, match="init is a left hand but the model is the right one"):
        fit_keypoints(model, init=left_state, **good)
    with pytest.raises(ValueError, match="obs must be a HandObservation"):
        fitter.fit(s.obs.left, calib)
    with pytest.raises(ValueError, match="calib must be a StereoCalibration"):
        fitter.fit(s.obs, calib.left)
    with pytest.raises(ValueError, match="world_landmarks_m: expected shape"):
        dataclasses.replace(s.obs.left, world_landmarks_m=np.zeros((21, 2), np.float32))
    # a prev of the other side (a handedness flip) is not an error for the stage: it starts cold
    fitter.fit(s.obs, calib, prev=left_state)
    assert fitter.last_info.cold


@pytest.mark.parametrize("field, value, message", [
    ("sigma_2d_px", 0.0, "sigma_2d_px must be > 0"),
    ("weight_3d", -1.0, "weight_3d must be >= 0"),
    ("robust_loss", "cauchy", "robust_loss 'cauchy' is unknown"),
    ("n_pose_components", 50, "n_pose_components must be in 1..45"),
    ("iterations_warm", 0, "iterations_cold / iterations_warm must be >= 1"),
    ("gnc_steps", 1, "gnc_steps must be >= 2"),
])
def test_fit_config_rejects_bad_values(field, value, message):
    with pytest.raises(ValueError, match=message):
        FitConfig(**{field: value})


REAL = Path(__file__).resolve().parents[3].parent / "shared" / "realdata" / "hand-graph-cnn_real_world_testset"


def test_mono_fit_of_real_mediapipe_output(fitter):
    """Real photos (Ge et al. 2019, 3D joints in the camera frame): MediaPipe's keypoints and world landmarks
    of one view -> a metric hand whose joints match the ground truth up to MediaPipe's own error (~7 px)."""
    if not (REAL / "annotations.json").is_file():
        pytest.skip(f"needs the shared real data at {REAL} (absent: a fresh clone has no ../shared)")
    import cv2

    from app.detection.config import DetectionConfig
    from app.detection.mediapipe_hands import MediaPipeHands
    from app.detection.stereo import make_detection

    cfg = DetectionConfig(static_image_mode=True, max_num_hands=1)
    errors = []
    with MediaPipeHands(cfg) as hands:
        for item in json.loads((REAL / "annotations.json").read_text())["images"][:40:10]:
            (raw,) = hands.process(cv2.cvtColor(cv2.imread(str(REAL / item["image"])), cv2.COLOR_BGR2RGB))
            assert raw.world_landmarks_m.shape == (21, 3) and raw.world_landmarks_m.dtype == np.float32
            K = np.asarray(item["K_crop"], dtype=np.float64)
            rig = make_stereo(K, np.zeros(5), K, np.zeros(5), np.eye(3), [-0.063, 0, 0], (256, 256), rectified=True)
            det = make_detection(raw.keypoints_px, raw.score, raw.handedness, cfg, raw.world_landmarks_m)
            obs = syn.HandObservation(frame_id=0, t_capture_ns=0, left=det, right=None, keypoints_cam_m=None,
                                      residual_px=None, is_left=raw.handedness == "left")
            mesh = fitter.fit(obs, rig)
            truth = np.asarray(item["xyz_cam_cm"]) / 100.0
            errors.append(MM * float(pa_mpjpe(mesh.joints_m, truth)))
            assert mesh.joints_m[:, 2].mean() == pytest.approx(truth[:, 2].mean(), rel=0.2)
    assert np.median(errors) < 12.0
