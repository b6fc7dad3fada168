"""The fit / fit+refine evaluation methods on synthetic stereo hands whose detection is given (MediaPipe is not run:
the ground-truth keypoints with pixel noise stand in for it), painted images whose hand pixels are skin-coloured."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from app.config import HandModelConfig
from app.detection.crop import crop_affine, crop_intrinsics
from app.detection.mediapipe_hands import RawHand
from app.detection.mirror import compose_affine, flip_affine
from app.pipeline.refinement import rescale_affine
from app.reconstruction.segmentation import mesh_silhouette_mask
from app.reconstruction.synthetic import synthetic_hand, world_landmarks
from app.render import HardRasterConfig, hard_rasterize
from calibration.presets import preset_rig
from models.eval.fit_methods import FitMethod, SeenView, image_silhouette, project
from models.eval.mesh_metrics import mask_iou
from models.eval.methods import MethodOptions
from models.eval.metrics import evaluate_sample
from models.eval.samples import EvalSample
from models.hand_model.layer import build_hand_model

torch.set_num_threads(1)
RIG = preset_rig("zed-mini", "640x360")


def test_rescaled_crop_affine_equals_the_affine_cut_at_the_smaller_size():
    box = np.array([100.3, 50.7, 81.0, 81.0], np.float32)
    np.testing.assert_allclose(rescale_affine(crop_affine(box, 224), 0.5), crop_affine(box, 112), atol=1e-12)
    mirrored = compose_affine(flip_affine(224), crop_affine(box, 224))
    np.testing.assert_allclose(rescale_affine(mirrored, 0.5), compose_affine(flip_affine(112), crop_affine(box, 112)),
                               atol=1e-12)


def test_project_is_the_pinhole_formula():
    P = RIG.right.P
    pts = np.array([[0.01, -0.02, 0.4], [0.05, 0.03, 0.6]])
    expected = [[(P[0] @ [*p, 1]) / (P[2] @ [*p, 1]), (P[1] @ [*p, 1]) / (P[2] @ [*p, 1])] for p in pts]
    np.testing.assert_allclose(project(P, pts), expected, atol=1e-9)


def test_image_silhouette_of_a_square_covers_the_pixel_centres_inside_its_projection():
    # a 4 x 6 cm rectangle at 0.5 m, facing the camera, in a non-square 40 x 70 image
    K = np.array([[500.0, 0, 34.5], [0, 500.0, 19.5], [0, 0, 1]])
    verts = np.array([[-0.02, -0.01, 0.5], [0.04, -0.01, 0.5], [0.04, 0.02, 0.5], [-0.02, 0.02, 0.5]])
    sil = image_silhouette(verts, np.array([[0, 1, 2], [0, 2, 3]]), K, (40, 70))
    assert sil.shape == (40, 70) and sil.dtype == bool
    u, v = np.meshgrid(np.arange(70), np.arange(40))
    inside = (u >= 34.5 - 20 + 1e-9) & (u <= 34.5 + 40) & (v >= 19.5 - 10) & (v <= 19.5 + 20)
    edge = np.isclose(u, 34.5 - 20) | np.isclose(u, 34.5 + 40) | np.isclose(v, 9.5) | np.isclose(v, 39.5)
    assert np.array_equal(sil[~edge], inside[~edge])


def _painted_sample(seed: int, side: str):
    """(EvalSample with vertices and masks, the stereo HandObservation, the left view's RawHand)."""
    rng = np.random.default_rng(seed)
    hand = synthetic_hand(build_hand_model(HandModelConfig(), side), RIG, rng, noise_px=1.0)
    images, masks = [], []
    faces = torch.as_tensor(build_hand_model(HandModelConfig(), side).faces)
    for view in (RIG.left, RIG.right):
        verts = torch.from_numpy(hand.verts_m @ view.T_cam_left[:3, :3].T.astype(np.float32)
                                 + view.T_cam_left[:3, 3].astype(np.float32))
        w, h = view.size_wh
        frags = hard_rasterize(verts[None], faces, torch.from_numpy(view.K).float(), HardRasterConfig((h, w)))
        mask = (frags.face_id[0] >= 0).numpy()
        img = np.where(mask[..., None], [205, 150, 120], [40, 90, 60]) + rng.normal(0, 6, (h, w, 3))
        images.append(np.clip(img, 0, 255).astype(np.uint8))
        masks.append(mask)
    uv = tuple(p.astype(np.float64) for p in hand.pixels)
    sample = EvalSample(sample_id=f"{seed}", images=tuple(images), uv_px=uv,
                        K=RIG.left.K, xyz_cam_m=hand.keypoints_m.astype(np.float64), calibration=RIG,
                        verts_cam_m=hand.verts_m.astype(np.float64), masks=tuple(masks), is_left=side == "left")
    raw = RawHand(hand.pixels[0], 0.9, side, world_landmarks(hand.keypoints_m, rng))
    left = dataclasses.replace(hand.obs.left, world_landmarks_m=raw.world_landmarks_m)
    obs = dataclasses.replace(hand.obs, left=left)
    return sample, obs, raw


@pytest.fixture(scope="module")
def methods():
    fit, refine = FitMethod(MethodOptions(), refine=False), FitMethod(MethodOptions(iterations=3), refine=True)
    yield fit, refine
    fit.close()
    refine.close()


@pytest.mark.parametrize("seed,side", [(0, "right"), (1, "left")])
def test_fit_and_refine_on_given_detections(methods, monkeypatch, seed, side):
    sample, obs, raw = _painted_sample(seed, side)
    results = {}
    for method in methods:
        monkeypatch.setattr(method, "_stereo_detect", lambda s, obs=obs, raw=raw: (obs, raw))
        pred = method(sample)
        results[method.refine is not None] = (pred, evaluate_sample(sample, pred, needs_3d=True))
    (pred_fit, fit), (pred_ref, ref) = results[False], results[True]
    assert fit.detected and fit.mono.detected
    assert fit.mesh.pa_mpve_mm < 4.0 and fit.err_3d_mm < 10.0 and fit.err_2d_px < 3.0
    assert fit.mono.mesh.pa_mpve_mm < 6.0 and fit.mono.err_2d_px < 3.0
    assert fit.mesh.iou_before == fit.mesh.iou_after > 0.85  # no refinement: the same mesh
    assert not pred_ref.refine_diverged and ref.mesh.iou_before == pytest.approx(fit.mesh.iou_before)
    # a near-perfect fit stays near-perfect (3 steps move it little, docs/PERFORMANCE.md "Reconstruction evaluation")
    assert abs(ref.mesh.iou_after - ref.mesh.iou_before) < 0.05 and ref.mesh.pa_mpve_mm < 4.0
    assert ref.mono.mesh.iou_after > 0.8 and ref.mono.mesh.pa_mpve_mm < 6.0
    assert pred_ref.verts_cam_m.shape == sample.verts_cam_m.shape and pred_ref.mono.uv_px[0].shape == (21, 2)
    assert pred_fit.mediapipe_world_m is not None and np.isfinite(fit.mesh.baseline_pa_mm)


@pytest.mark.parametrize("seed,side", [(3, "right"), (4, "left")])
def test_refinement_targets_are_the_true_silhouette_in_each_crop(methods, seed, side):
    """The crop camera, the cut image and the seed agree: on painted hands the target is the true silhouette."""
    sample, obs, _ = _painted_sample(seed, side)
    method = methods[1]
    mesh = method.fitter.fit(obs, RIG)
    for name, image in zip(("left", "right"), sample.images, strict=True):
        cam = getattr(RIG, name)
        view = SeenView(image, getattr(obs, name), cam)
        target = method.refine.target(mesh, view)
        builder = method.refine.targets
        K_crop = crop_intrinsics(cam.K, rescale_affine(view.det.crop_from_image, builder.scale))
        np.testing.assert_allclose(target.K, K_crop)
        truth = mesh_silhouette_mask(sample.verts_cam_m, mesh.faces, K_crop, cam.T_cam_left, builder.size_px)
        assert truth.sum() > 500 and mask_iou(target.mask > 0.5, truth) > 0.95


def test_a_missed_hand_is_not_detected_in_either_result(methods, monkeypatch):
    sample, _, _ = _painted_sample(2, "right")
    fit = methods[0]
    monkeypatch.setattr(fit, "_stereo_detect", lambda s: (None, None))
    r = evaluate_sample(sample, fit(sample), needs_3d=True)
    assert not r.detected and not r.mono.detected and np.isnan(r.mesh.pa_mpve_mm)
