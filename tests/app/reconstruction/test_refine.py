"""Test-time refinement on synthetic stereo hands: a posed open hand model is the truth, its hard silhouettes in
two crop cameras the targets, a perturbed copy of its parameters the initial mesh."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from app.detection.crop import crop_affine, crop_intrinsics, keypoint_box
from app.geometry.camera import project
from app.reconstruction.refine import (
    RefineConfig,
    ViewTarget,
    build_refiner,
    refine_preset,
    resample_mask,
    rescale_intrinsics,
    silhouette_iou,
)
from app.reconstruction.segmentation import mesh_silhouette_mask
from app.types import HandMesh, HandState
from models.hand_model.layer import HandModel
from models.hand_model.mano_io import load_mano_dict, open_model_path

torch.set_num_threads(1)

K_FULL = np.array([[700.0, 0.0, 639.5], [0.0, 700.0, 359.5], [0.0, 0.0, 1.0]])  # HD720-like left/right view
T_RIGHT = np.eye(4)
T_RIGHT[0, 3] = -0.12  # ZED baseline: the right camera sits 12 cm along +x of the left one


@lru_cache(maxsize=2)
def model(side: str = "right") -> HandModel:
    """The embedded open model, also when REALHANDS_MANO_DIR points at real MANO (the figures are its own)."""
    return HandModel(load_mano_dict(open_model_path(side)), is_left=side == "left", name="open")


def hand_mesh(state: HandState, side: str = "right") -> HandMesh:
    with torch.no_grad():
        out = model(side)(*(torch.from_numpy(a)[None] for a in (state.pose, state.shape, state.transl_m)))
    return HandMesh(0, 0, out.verts_m[0].numpy(), model(side).faces.numpy(), out.keypoints_m[0].numpy(), state)


def true_state(rng: np.random.Generator, is_left: bool = False) -> HandState:
    """A moderately bent hand, rotated at random, centred 0.3-0.5 m in front of the rig."""
    glob = Rotation.from_euler("xyz", rng.uniform(-0.6, 0.6, 3) + [np.pi / 2, 0.0, np.pi / 2]).as_rotvec()
    fingers = np.abs(rng.normal(0.0, 0.3, 45)) * np.tile([0.1, 0.1, 1.0], 15)
    pose = np.concatenate([glob, fingers]).astype(np.float32)
    shape = rng.normal(0.0, 1.0, 10).astype(np.float32)
    side = "left" if is_left else "right"
    centre = hand_mesh(HandState(pose, shape, np.zeros(3, np.float32), is_left), side).verts_m.mean(0)
    transl = np.array([0.06, 0.0, rng.uniform(0.3, 0.5)]) + np.r_[rng.normal(0, 0.01, 2), 0.0] - centre
    return HandState(pose, shape, transl.astype(np.float32), is_left)


def perturbed(state: HandState, rng: np.random.Generator) -> HandState:
    """What an imperfect initialiser gives: ~0.1 rad per joint, 0.05 rad global, shape +-0.5, 5 mm."""
    pose = state.pose + np.r_[rng.normal(0, 0.05, 3), rng.normal(0, 0.1, 45)].astype(np.float32)
    return HandState(pose, (state.shape + rng.normal(0, 0.5, 10)).astype(np.float32),
                     (state.transl_m + rng.normal(0, 0.005, 3)).astype(np.float32), state.is_left)


def crop_camera(mesh: HandMesh, T: np.ndarray, size: int) -> np.ndarray:
    """(3, 3) K of the detection-style crop (keypoint box x 2) around the hand in the view T."""
    kp = mesh.joints_m.astype(np.float64) @ T[:3, :3].T + T[:3, 3]
    return crop_intrinsics(K_FULL, crop_affine(keypoint_box(project(kp, K_FULL), 2.0), size))


def problem(seed: int, size: int = 112, is_left: bool = False):
    """(true mesh, initial mesh, [left, right] ViewTargets with the true silhouettes)."""
    rng = np.random.default_rng(seed)
    truth = true_state(rng, is_left)
    side = "left" if is_left else "right"
    gt, init = hand_mesh(truth, side), hand_mesh(perturbed(truth, rng), side)
    targets = []
    for T in (np.eye(4), T_RIGHT):
        K = crop_camera(gt, T, size)
        targets.append(ViewTarget(mesh_silhouette_mask(gt.verts_m, gt.faces, K, T, size).astype(np.float32), K, T))
    return gt, init, targets


def refiner(preset: str = "scaled", **kw):
    return build_refiner(refine_preset(preset, compile=False, **kw), model("right"))


def mpve_mm(a: HandMesh, b: HandMesh) -> float:
    return float(np.linalg.norm(a.verts_m - b.verts_m, axis=1).mean() * 1000)


def test_three_stereo_iterations_raise_iou_and_lower_vertex_error():
    ref = refiner("scaled")
    gains = []
    for seed in range(4):
        gt, init, targets = problem(seed)
        res = ref.refine(init, targets)
        assert not res.diverged and res.iterations == 3 and len(res.losses) == 3
        assert res.iou_after > res.iou_before, seed
        assert mpve_mm(res.mesh, gt) < mpve_mm(init, gt), seed
        gains.append(res.iou_after - res.iou_before)
    assert np.mean(gains) > 0.03


def test_more_iterations_improve_further_and_losses_fall():
    gt, init, targets = problem(7)
    three = refiner("scaled").refine(init, targets)
    ten = refiner("scaled", iterations=10).refine(init, targets)
    assert ten.iou_after > three.iou_after > three.iou_before
    assert ten.losses[-1] < ten.losses[0]


def test_mono_view_refinement_raises_iou():
    _, init, targets = problem(3)
    res = refiner("scaled").refine(init, targets[:1])
    assert res.iou_after > res.iou_before


def test_224_targets_refined_at_112_match_112_silhouettes():
    gt, init, targets = problem(5, size=224)
    t = targets[1]
    small = resample_mask(torch.from_numpy(t.mask), 112)
    K_small = rescale_intrinsics(t.K, 0.5)
    direct = mesh_silhouette_mask(gt.verts_m, gt.faces, K_small, t.T_cam_left, 112)
    assert silhouette_iou(small[None], torch.from_numpy(direct.astype(np.float32))[None]) > 0.95
    res = refiner("scaled").refine(init, targets)  # masks of 224 px, rendered at the default 112
    assert res.iou_after > res.iou_before


def test_returned_state_reproduces_the_refined_mesh():
    _, init, targets = problem(2)
    res = refiner("scaled").refine(init, targets)
    again = hand_mesh(res.mesh.state)
    # Only dv (kept small by lr_verts) separates M(state) from the refined vertices.
    assert np.abs(again.verts_m - res.mesh.verts_m).max() < 1e-3
    assert np.abs(again.joints_m[[0, 5, 9]] - res.mesh.joints_m[[0, 5, 9]]).max() < 1e-6
    assert res.mesh.frame_id == init.frame_id and res.mesh.faces is init.faces


def test_zero_iterations_return_the_input_geometry():
    _, init, targets = problem(1)
    res = refiner("paper", iterations=0).refine(init, targets)
    assert res.iterations == 0 and not res.diverged and res.iou_before == res.iou_after
    np.testing.assert_allclose(res.mesh.verts_m, init.verts_m, atol=1e-6)


def test_paper_preset_is_the_literal_setting():
    cfg = refine_preset("paper")
    assert (cfg.lr, cfg.momentum, cfg.iterations) == (0.002, 0.9, 3)
    assert (cfg.w_sil, cfg.w_offset, cfg.w_normal, cfg.w_laplacian, cfg.w_edge) == (1, 1, 1, 1, 0.1)
    assert (cfg.lr_pose, cfg.lr_shape, cfg.lr_verts, cfg.lr_transl) == (1, 1, 1, 1)
    assert RefineConfig() == cfg


def test_paper_preset_in_metres_trips_the_guard_and_keeps_the_input():
    # The literal lr moves near-degenerate posed faces by centimetres through L_n (see docs/PERFORMANCE.md).
    _, init, targets = problem(0)
    res = refiner("paper").refine(init, targets)
    assert res.diverged and "moved" in res.message
    assert res.mesh is init and res.iou_after == res.iou_before


def test_huge_learning_rate_falls_back_to_the_input():
    _, init, targets = problem(4)
    res = refiner("scaled", lr=50.0).refine(init, targets)
    assert res.diverged and res.mesh is init
    assert res.message.startswith("diverged, input mesh kept")
    assert res.iterations < 3


class NanAfterFirstCall:
    """Fault injection around the real renderer: NaN silhouettes from the second call on."""

    def __init__(self, render):
        self.render, self.calls = render, 0

    def __call__(self, verts, faces, K):
        self.calls += 1
        sil = self.render(verts, faces, K)
        return sil * float("nan") if self.calls > 1 else sil


def test_nan_loss_falls_back_to_the_input():
    _, init, targets = problem(6)
    ref = refiner("scaled")
    ref.renderer = NanAfterFirstCall(ref.renderer)
    res = ref.refine(init, targets)
    assert res.diverged and res.mesh is init and "nan" in res.message.lower()
    assert res.iterations == 1 and np.isfinite(res.iou_before)


def test_left_hand_refines_with_the_left_model():
    gt, init, targets = problem(8, is_left=True)
    res = build_refiner(refine_preset("scaled", compile=False), model("left")).refine(init, targets)
    assert not res.diverged and res.iou_after > res.iou_before and res.mesh.state.is_left


def test_bad_inputs_are_named():
    _, init, targets = problem(0)
    ref = refiner("scaled")
    with pytest.raises(ValueError, match="other side"):
        ref.refine(dataclasses.replace(init, state=dataclasses.replace(init.state, is_left=True)), targets)
    with pytest.raises(ValueError, match="topology"):
        ref.refine(dataclasses.replace(init, verts_m=init.verts_m[:-1].copy()), targets)
    with pytest.raises(ValueError, match="mm from the hand model"):
        ref.refine(dataclasses.replace(init, verts_m=init.verts_m + np.float32(0.01)), targets)
    with pytest.raises(ValueError, match="one or two ViewTarget"):
        ref.refine(init, targets * 2)
    with pytest.raises(ValueError, match="HandMesh"):
        ref.refine(init.verts_m, targets)
    t = targets[0]
    with pytest.raises(ValueError, match="square"):
        ViewTarget(t.mask[:, :-1].copy(), t.K, t.T_cam_left)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ViewTarget(t.mask * 2, t.K, t.T_cam_left)
    with pytest.raises(ValueError, match="dtype"):
        ViewTarget(t.mask.astype(bool), t.K, t.T_cam_left)
    with pytest.raises(ValueError, match="rigid"):
        ViewTarget(t.mask, t.K, t.T_cam_left * 2)
    with pytest.raises(ValueError, match="unknown preset"):
        refine_preset("fast")
    with pytest.raises(ValueError, match="momentum"):
        RefineConfig(momentum=1.0)


def test_refiner_with_and_without_lean_skinning_agree():
    pytest.importorskip("numba")
    _, init, targets = problem(2)
    lean_refiner = refiner("scaled")
    assert lean_refiner.skin is not None
    lean = lean_refiner.refine(init, targets)
    plain = refiner("scaled", lean_skinning=False).refine(init, targets)
    assert not lean.diverged and not plain.diverged
    np.testing.assert_allclose(lean.losses, plain.losses, rtol=1e-4)
    assert np.abs(lean.mesh.verts_m - plain.mesh.verts_m).max() < 1e-5
    assert lean.iou_after == pytest.approx(plain.iou_after, abs=0.01)


def test_backends_give_the_same_refinement():
    _, init, targets = problem(3)
    numba_res = refiner("scaled", backend="auto").refine(init, targets)
    torch_res = refiner("scaled", backend="torch").refine(init, targets)
    np.testing.assert_allclose(numba_res.losses, torch_res.losses, rtol=1e-4)
    assert np.abs(numba_res.mesh.verts_m - torch_res.mesh.verts_m).max() < 1e-5


def test_warm_up_then_refine():
    ref = refiner("scaled")
    assert ref.warm_up() >= 0.0
    _, init, targets = problem(2)
    res = ref.refine(init, targets)
    assert not res.diverged and res.iou_after > res.iou_before
