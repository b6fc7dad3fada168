"""Mesh-seeded colour segmentation: its parts against references, and its IoU against ground truth on rendered
hands (open hand model, skin, forearm, lights, clutter; models/synth/scene.py) seeded by a perturbed mesh."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from app.detection.crop import crop_affine, crop_intrinsics, keypoint_box
from app.geometry.camera import project
from app.reconstruction.segmentation import (
    ColourModel,
    ColourSegmentationConfig,
    build_segmentation_target,
    guided_filter,
    mesh_silhouette_mask,
    posterior,
    seed_zones,
)
from models.hand_model.layer import HandModel
from models.hand_model.mano_io import load_mano_dict, open_model_path
from models.hand_model.pose_space import angles_to_axis_angle, sample_angles
from models.synth.appearance import random_background, skin_vertex_colours
from models.synth.forearm import pose_forearm
from models.synth.scene import FOREARM_LABEL, FOREARM_VERTS_M, HandScene, face_parts, render_scene, sample_lighting
from models.synth.views import sample_view

torch.set_num_threads(1)
K_FULL = np.array([[700.0, 0.0, 639.5], [0.0, 700.0, 359.5], [0.0, 0.0, 1.0]])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


# ---------------------------------------------------------------------------------------------------------
# Parts
# ---------------------------------------------------------------------------------------------------------


def test_seed_zones_partition_the_crop_at_the_given_radii():
    mask = np.zeros((64, 64), bool)
    cv2.circle(mask.view(np.uint8), (32, 32), 15, 1, -1)
    z = seed_zones(mask, 3, 6)
    assert not (z.sure_hand & z.sure_background).any() and (z.sure_hand | z.sure_background | z.band).all()
    assert not (z.band & (z.sure_hand | z.sure_background)).any()
    ys, xs = np.nonzero(z.sure_hand)
    assert np.hypot(xs - 32, ys - 32).max() == pytest.approx(12, abs=1)
    ys, xs = np.nonzero(~z.sure_background)
    assert np.hypot(xs - 32, ys - 32).max() == pytest.approx(21, abs=1)
    assert z.signed_dist_px[32, 32] < -14 and z.signed_dist_px[32, 60] > 12


def test_posterior_is_bayes_with_a_logistic_prior():
    rng = np.random.default_rng(0)
    ratio, dist = rng.uniform(0.01, 50, (5, 5)), rng.uniform(-20, 20, (5, 5))
    prior = 1 / (1 + np.exp(dist / 4.0))
    expected = prior * ratio / (prior * ratio + (1 - prior))
    np.testing.assert_allclose(posterior(ratio, dist.astype(np.float32), 4.0), expected, rtol=1e-5)


def test_colour_bins_follow_ycrcb_and_the_model_forgets():
    cfg = ColourSegmentationConfig(luma_bins=4, chroma_bins=32, forget=0.25, prior_count=1e-9)
    model = ColourModel(cfg)
    rgb = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    r, g, b = (rgb[..., k].astype(float) for k in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cr, cb = (r - y) * 0.713 + 128, (b - y) * 0.564 + 128
    ref = ((np.round(y).astype(int) // 64) * 32 + np.round(cr).astype(int) // 8) * 32 + np.round(cb).astype(int) // 8
    bins = model.bin_index(rgb)
    assert (bins == ref).mean() > 0.9  # rounding at bin edges may differ
    half = np.zeros((8, 8), bool)
    half[:4] = True
    model.update(bins, half, ~half)
    first = model.hand.copy()
    model.update(bins, ~half, half)
    newest = np.bincount(bins[~half], minlength=model.n_bins) / half.size * 2
    np.testing.assert_allclose(model.hand, 0.75 * first + 0.25 * newest, atol=1e-9)


def reference_guided_filter(guide, src, r, eps):
    """Window sums by explicit loops over a reflect-padded image (cv2.BORDER_REFLECT = numpy 'symmetric')."""
    def box(x):
        p = np.pad(x.astype(np.float64), r, mode="symmetric")
        out = np.zeros_like(x, dtype=np.float64)
        for i in range(x.shape[0]):
            for j in range(x.shape[1]):
                out[i, j] = p[i:i + 2 * r + 1, j:j + 2 * r + 1].mean()
        return out

    mi, mp = box(guide), box(src)
    a = (box(guide * src) - mi * mp) / (box(guide * guide) - mi * mi + eps)
    return box(a) * guide + box(mp - a * mi)


def test_guided_filter_matches_loop_reference():
    rng = np.random.default_rng(2)
    guide = rng.uniform(0, 1, (12, 10)).astype(np.float32)
    src = (rng.uniform(0, 1, (12, 10)) > 0.5).astype(np.float32)
    np.testing.assert_allclose(guided_filter(guide, src, 2, 1e-2), reference_guided_filter(guide, src, 2, 1e-2),
                               atol=1e-5)


def disc_scene(seed: int, size: int = 112):
    """A skin-coloured hand-sized disc with two 'fingers' on clutter; the seed is the shape shifted by 6 px."""
    rng = np.random.default_rng(seed)
    img = random_background(rng, size, size)
    truth = np.zeros((size, size), np.uint8)
    cv2.circle(truth, (56, 60), 22, 1, -1)
    cv2.rectangle(truth, (40, 10), (48, 50), 1, -1)
    cv2.rectangle(truth, (62, 14), (70, 50), 1, -1)
    skin = np.array([200, 150, 120]) * rng.uniform(0.8, 1.1)
    img[truth.astype(bool)] = np.clip(skin + rng.normal(0, 6, (int(truth.sum()), 3)), 0, 255).astype(np.uint8)
    seed_mask = np.roll(truth, (5, -4), axis=(0, 1)).astype(bool)
    return img, truth.astype(bool), seed_mask


def test_output_contract_and_disc_scene_improves_on_the_seed():
    seg = build_segmentation_target(ColourSegmentationConfig())
    for seed in range(3):
        img, truth, seed_mask = disc_scene(seed)
        out = seg(img, seed_mask)
        assert out.dtype == np.float32 and out.shape == truth.shape and 0 <= out.min() and out.max() <= 1
        assert iou(out > 0.5, truth) > iou(seed_mask, truth) + 0.1


def test_grabcut_variant_runs_and_improves_on_the_seed():
    img, truth, seed_mask = disc_scene(4)
    out = build_segmentation_target(ColourSegmentationConfig(grabcut_iters=2))(img, seed_mask)
    assert iou(out > 0.5, truth) > iou(seed_mask, truth)


def test_empty_seed_gives_an_empty_mask_and_bad_inputs_are_named():
    seg = build_segmentation_target(ColourSegmentationConfig())
    img, _, seed_mask = disc_scene(0)
    assert not seg(img, np.zeros_like(seed_mask)).any()
    with pytest.raises(ValueError, match="uint8 RGB crop"):
        seg(img.astype(np.float32), seed_mask)
    with pytest.raises(ValueError, match="bool"):
        seg(img, seed_mask.astype(np.uint8))
    with pytest.raises(ValueError, match="same square"):
        seg(img[:, :-1].copy(), seed_mask[:, :-1].copy())
    with pytest.raises(ValueError, match="power of two"):
        ColourSegmentationConfig(chroma_bins=30)
    with pytest.raises(ValueError, match="ring_frac"):
        ColourSegmentationConfig(erode_frac=0.1, ring_frac=0.05)


# ---------------------------------------------------------------------------------------------------------
# Rendered hands
# ---------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def hand():
    """The embedded open model and its data (part labels, joint frames), whatever REALHANDS_MANO_DIR says."""
    data = load_mano_dict(open_model_path("right"))
    return HandModel(data, name="open"), data


@pytest.fixture(scope="module")
def offscreen():
    try:
        from app.offscreen.renderer import OffscreenRenderer

        rend = OffscreenRenderer(112, 112)
    except Exception as exc:  # no GL platform on this machine
        pytest.skip(f"offscreen renderer unavailable: {exc}")
    yield rend
    rend.close()


def posed(model, pose, shape):
    """Vertices (V, 3) and keypoints (21, 3), metres, model frame (zero translation)."""
    with torch.no_grad():
        out = model(torch.from_numpy(pose)[None], torch.from_numpy(shape)[None])
    return out.verts_m[0].numpy(), out.keypoints_m[0].numpy()


def rendered_sample(rend, seed: int, size: int = 112):
    """(rgb (S, S, 3) uint8, ground-truth hand mask (forearm excluded), seed mask of a perturbed mesh)."""
    model, data = hand()
    rng = np.random.default_rng(seed)
    view = sample_view(rng, None, distance_m=(0.3, 0.5))
    pose = np.concatenate([Rotation.from_matrix(view.R_cam_model).as_rotvec(),
                           angles_to_axis_angle(sample_angles(rng, 1), data["joint_frames"])[0]]).astype(np.float32)
    shape = rng.normal(0, 1, 10).astype(np.float32)
    verts, kps = posed(model, pose, shape)
    offset = np.array([0.06, 0.0, view.distance_m]) - verts.mean(0)
    noisy_pose = pose + np.r_[rng.normal(0, 0.05, 3), rng.normal(0, 0.1, 45)].astype(np.float32)
    noisy_verts, _ = posed(model, noisy_pose, (shape + rng.normal(0, 0.5, 10)).astype(np.float32))
    K = crop_intrinsics(K_FULL, crop_affine(keypoint_box(project(kps + offset, K_FULL), 2.0), size))
    rest = np.asarray(data["v_template"])
    colours = skin_vertex_colours(rest, np.asarray(data["J_regressor"]) @ rest, model.tip_vertex_ids.numpy(), rng)
    root = model.rest_joints(torch.from_numpy(shape)[None])[0, 0].numpy()
    arm = pose_forearm(FOREARM_VERTS_M, view.R_cam_model, root, offset).astype(np.float32)
    faces = model.faces.numpy()
    scene = HandScene((verts + offset).astype(np.float32), faces, face_parts(np.asarray(data["vertex_part"]), faces),
                      colours, arm, colours[faces[0, 0]], sample_lighting(rng))
    out = render_scene(rend, scene, K, random_background(rng, size, size))
    truth = (out.parts >= 0) & (out.parts != FOREARM_LABEL)
    noisy = noisy_verts + offset + rng.normal(0, 0.005, 3)
    return out.rgb, truth, mesh_silhouette_mask(noisy, faces, K, np.eye(4), size)


def test_target_beats_the_seed_on_rendered_hands(offscreen):
    seg = build_segmentation_target(ColourSegmentationConfig())
    seeds, targets = [], []
    for seed in range(10):
        rgb, truth, seed_mask = rendered_sample(offscreen, seed)
        assert truth.mean() > 0.03, "the hand must be in view"
        seg.reset()
        seeds.append(iou(seed_mask, truth))
        targets.append(iou(seg(rgb, seed_mask) > 0.5, truth))
    assert np.mean(targets) > np.mean(seeds) + 0.05, (np.mean(seeds), np.mean(targets))
    assert min(t - s for s, t in zip(seeds, targets, strict=True)) > -0.05


def test_cut_at_wrist_removes_the_arm_side_only():
    from app.reconstruction.segmentation import cut_at_wrist

    mask = np.ones((100, 100), np.float32)
    kps = np.zeros((21, 2))
    kps[0] = [50, 70]  # wrist
    kps[9] = [50, 30]  # middle MCP: fingers point up, the arm goes down
    out = cut_at_wrist(mask, kps, margin=0.25)  # cut line at y = 70 + 10
    assert out[:80].all() and not out[81:].any()
    seed = np.zeros_like(mask, bool)
    seed[20:90, 40:60] = True  # the mesh reaches y = 89: keep all of it
    out = cut_at_wrist(mask, kps, seed)
    assert out[:90].all() and not out[91:].any()
