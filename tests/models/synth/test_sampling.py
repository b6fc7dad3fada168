"""models/synth/sampling.py: distributions, left/right mirroring, placement in front of the rig, the forearm."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from calibration.presets import preset_rig
from models.hand_model.layer import HandModel, _load_open
from models.synth.forearm import pose_forearm
from models.synth.sampling import (
    SamplerConfig,
    background_disparity_px,
    draw_hand,
    forearm_rest_m,
    inside_fraction,
    pca_articulation,
    place_hand,
    pose_drawn_hand,
    sample_rng,
    sample_shape,
    sample_side,
)
from models.synth.scene import FOREARM_FACES, FOREARM_VERTS_M
from models.synth.views import VIEW_KINDS

torch.set_num_threads(1)
MIRROR = np.diag([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def hands():
    return {side: (HandModel(_load_open(side), is_left=side == "left"), _load_open(side)) for side in ("right", "left")}


@pytest.fixture(scope="module")
def rig():
    return preset_rig("zed-mini", "640x360")


def test_sample_rng_depends_on_seed_and_index_only():
    a = sample_rng(3, 7).uniform(size=4)
    np.testing.assert_array_equal(a, sample_rng(3, 7).uniform(size=4))
    assert not np.allclose(a, sample_rng(3, 8).uniform(size=4))
    assert not np.allclose(a, sample_rng(4, 7).uniform(size=4))


def test_pca_articulation_stays_in_the_clipped_component_span():
    rng = np.random.default_rng(0)
    comps = np.linalg.qr(rng.normal(size=(45, 45)))[0].T  # orthonormal rows
    std, mean = np.linspace(1.0, 0.1, 45), rng.normal(size=45)
    for _ in range(50):
        pose = pca_articulation(rng, comps, std, mean, 6, 2.0)
        coeff = comps @ (pose - mean)
        assert np.abs(coeff[6:]).max() < 1e-9
        assert np.all(np.abs(coeff[:6]) <= 2.0 * std[:6] + 1e-9)
    np.testing.assert_allclose(pca_articulation(rng, comps, np.zeros(45), mean, 6, 2.0), mean)


def test_shapes_are_uniform_in_range_and_sides_balanced():
    rng = np.random.default_rng(1)
    cfg = SamplerConfig()
    betas = np.stack([sample_shape(rng, cfg) for _ in range(2000)])
    assert betas.min() >= -2.0 and betas.max() <= 2.0
    assert betas.min() < -1.95 and betas.max() > 1.95 and abs(betas.mean()) < 0.05
    assert np.abs(np.histogram(betas, bins=4, range=(-2, 2))[0] / betas.size - 0.25).max() < 0.02
    sides = [sample_side(rng, cfg) for _ in range(2000)]
    assert abs(sides.count("left") / 2000 - 0.5) < 0.05


def test_views_show_the_back_most_often_and_every_kind(hands):
    rng = np.random.default_rng(2)
    cfg = SamplerConfig()
    draws = [draw_hand(rng, hands["right"][1], "right", cfg) for _ in range(600)]
    counts = {k: sum(d.kind == k for d in draws) for k in VIEW_KINDS}
    assert counts["back"] > counts["ego"] > 0 and counts["back"] > counts["palm"] > 0
    assert {d.articulation for d in draws} == {"pca", "synergy"}
    assert all(cfg.distance_m[0] <= d.distance_m <= cfg.distance_m[1] for d in draws)


def test_left_hand_is_the_mirror_image_of_the_right(hands):
    """The same draw for both sides: left model + mirrored view = the right hand mirrored in camera x."""
    cfg = SamplerConfig()
    verts = {}
    for side, (model, data) in hands.items():
        d = draw_hand(np.random.default_rng(5), data, side, cfg)
        pose = np.concatenate([Rotation.from_matrix(d.R_cam_model).as_rotvec(), d.hand_pose])[None]
        verts[side] = model(torch.tensor(pose, dtype=torch.float32), torch.tensor(d.shape[None])).verts_m[0].numpy()
    np.testing.assert_allclose(verts["left"], verts["right"] @ MIRROR, atol=1e-6)


def test_left_forearm_is_the_mirrored_right_one_wound_outward():
    left = forearm_rest_m("left")
    mirrored = FOREARM_VERTS_M @ MIRROR
    key = lambda v: v[np.lexsort(np.round(v, 9).T)]  # noqa: E731
    np.testing.assert_allclose(key(left), key(mirrored), atol=1e-12)
    tri = left[FOREARM_FACES]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    centre = tri.mean(1)
    cap = (FOREARM_FACES == len(left) - 1).any(1)  # the closed elbow end: faces around the last vertex
    radial = centre * [0.0, 1.0, 1.0]  # the tube's axis is the model x axis
    assert np.all(np.sum(normal * radial, axis=1)[~cap] > 0)
    assert np.all(np.sum(normal * (centre - left.mean(0)), axis=1)[cap] > 0)


def test_inside_fraction_counts_points_in_the_image():
    K = np.array([[100.0, 0, 49.5], [0, 100.0, 29.5], [0, 0, 1]])
    pts = np.array([[0.0, 0.0, 1.0], [0.6, 0.0, 1.0], [0.0, 0.0, -1.0], [-0.49, -0.29, 1.0]])
    assert inside_fraction(pts, K, (100, 60)) == pytest.approx(0.5)


def test_placement_keeps_the_hand_in_the_left_view_near_the_axis(rig):
    rng = np.random.default_rng(3)
    cfg = SamplerConfig()
    cloud = rng.normal(0, 1, (400, 3)) * [0.06, 0.02, 0.03] + [0.3, -0.2, 0.0]
    for _ in range(40):
        z = rng.uniform(*cfg.distance_m)
        off = place_hand(cloud, rig.left, z, cfg.distance_m[1], rng, cfg)
        placed = cloud + off
        c = placed.mean(0)
        assert inside_fraction(placed, rig.left.K, rig.left.size_wh) >= cfg.min_inside
        assert np.all(np.abs(c[:2] / c[2]) <= 2 * cfg.axis_jitter + 1e-9)
        assert z - 1e-9 <= c[2] <= cfg.distance_m[1] + 1e-9


def test_placement_moves_a_hand_too_big_for_the_view_back(rig):
    cfg = SamplerConfig(axis_jitter=0.3)
    tall = np.stack([np.zeros(200), np.linspace(-0.12, 0.12, 200), np.zeros(200)], 1)  # 0.24 m along image y
    off = place_hand(tall, rig.left, 0.2, 0.7, np.random.default_rng(0), cfg)  # 420 px tall at 0.2 m: too big
    assert 0.2 < off[2] < 0.7
    assert inside_fraction(tall + off, rig.left.K, rig.left.size_wh) >= cfg.min_inside
    off = place_hand(tall * 10, rig.left, 0.3, 0.7, np.random.default_rng(0), cfg)
    assert off[2] == pytest.approx(0.7)  # never fits: stops at the far end of the range


def test_posed_hand_is_reproducible_from_its_parameters_and_wears_the_forearm(hands, rig):
    cfg = SamplerConfig()
    for i in range(6):
        rng = sample_rng(0, i)
        side = ("right", "left")[i % 2]
        model, data = hands[side]
        d = draw_hand(rng, data, side, cfg)
        h = pose_drawn_hand(model, d, rng, rig, cfg)
        out = model(torch.tensor(h.pose[None]), torch.tensor(h.shape[None]), torch.tensor(h.transl_m[None]))
        np.testing.assert_allclose(out.verts_m[0].numpy(), h.verts_m, atol=2e-6)
        np.testing.assert_allclose(out.keypoints_m[0].numpy(), h.keypoints_m, atol=2e-6)
        root = model.rest_joints(torch.tensor(h.shape[None]))[0, 0].numpy()
        # The arm turns rigidly about the wrist joint (keypoint 0): its wrist ring keeps its rest distance.
        ring, ring_rest = h.forearm_m[:24].mean(0), forearm_rest_m(side)[:24].mean(0)
        assert np.linalg.norm(ring - h.keypoints_m[0]) == pytest.approx(np.linalg.norm(ring_rest - root), abs=1e-5)
        expect = pose_forearm(forearm_rest_m(side), d.R_cam_model, root, h.transl_m)
        np.testing.assert_allclose(h.forearm_m, expect, atol=1e-5)


def test_background_disparity_matches_the_plane_depth(rig):
    rng = np.random.default_rng(0)
    cfg = SamplerConfig()
    f_b = rig.left.K[0, 0] * rig.baseline_m
    d = [background_disparity_px(rng, rig, cfg) for _ in range(200)]
    assert round(f_b / 4.0) <= min(d) and max(d) <= round(f_b / 1.0)


def test_config_rejects_bad_values_with_the_field_name():
    with pytest.raises(ValueError, match="left_fraction"):
        SamplerConfig(left_fraction=1.5)
    with pytest.raises(ValueError, match="distance_m"):
        SamplerConfig(distance_m=(0.7, 0.25))
    with pytest.raises(ValueError, match="kind_probs"):
        SamplerConfig(kind_probs=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="side"):
        draw_hand(np.random.default_rng(0), {}, "both", SamplerConfig())
