"""Tests for models/handnet (config, resnet, heads, fusion, decoder, regressor, net, summary, __main__):
Table A.1 shapes, the published ResNet50 parameter count, the fusion formulas of thesis 4.3 and xi."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from app.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from app.geometry.weak_perspective import translation_to_weak_perspective
from models.handnet import Flow, HandNetConfig, HandNetConfigError, build_handnet, handnet_preset
from models.handnet.__main__ import main as handnet_main
from models.handnet.fusion import fuse_pose, left_camera_in_right_view
from models.handnet.heads import EncoderHead, Tail
from models.handnet.net import HandNetOutput, StereoGeometry
from models.handnet.summary import describe_handnet

torch.set_num_threads(1)

TINY = HandNetConfig(width=0.125, blocks=(1, 1, 1, 1), crop_size=64, regressor_hidden=(64, 32))
# ResNet50 without its classifier: torchvision's resnet50 has 25,557,032 parameters, 2,049,000 in the fc layer.
RESNET50_BACKBONE_PARAMS = 25_557_032 - 2_049_000
TABLE_A1 = {  # block: (output C, H, W) for a 224 input (thesis Table A.1), plus regressor and stereo widths
    "ImgHead.Down1": [64, 112, 112], "ImgHead.Down2": [256, 56, 56], "ImgHead.Down3": [512, 28, 28],
    "KpHead.Down1": [64, 112, 112], "KpHead.Down2": [256, 56, 56], "KpHead.Down3": [512, 28, 28],
    "Fusion.Conv1": [128, 28, 28], "Fusion.Conv2": [1024, 28, 28], "Fusion.Conv3": [512, 28, 28],
    "Tail.Down4": [1024, 14, 14], "Tail.Down5": [2048, 7, 7],
    "Segment.Up1": [1024, 14, 14], "Segment.Up2": [512, 28, 28], "Segment.Up3": [256, 56, 56],
    "Segment.Up4": [128, 112, 112], "Segment.Up5": [64, 224, 224], "Segment.Conv": [1, 224, 224],
    "Regress.FC": [512], "Regress.Pose": [48], "Regress.Shape": [10], "Regress.Cam": [3], "Stereo.FC": [48],
}
TABLE_A1_IN = {"ImgHead.Down1": 3, "KpHead.Down1": 21, "Fusion.Conv1": 1024, "Fusion.Conv3": 1024,
               "Tail.Down4": 512, "Segment.Up1": 2048, "Segment.Conv": 64, "Regress.FC": 2048, "Stereo.FC": 1024}


@pytest.fixture(scope="module")
def full_info():
    return describe_handnet(handnet_preset("full"))


def test_full_config_matches_table_a1(full_info):
    rows = {r["name"]: r for r in full_info["blocks"]}
    assert {k: rows[k]["output_shape"] for k in TABLE_A1} == TABLE_A1
    assert {k: rows[k]["in_channels"] for k in TABLE_A1_IN} == TABLE_A1_IN


def test_image_head_plus_tail_is_resnet50(full_info):
    # Reference: the published ResNet50 backbone size (stem conv + BN, layer1..layer4 incl. BN parameters).
    g = full_info["groups"]
    assert g["image_head"] + g["tail"] == RESNET50_BACKBONE_PARAMS
    # The keypoint head differs only in its 21-channel stem conv: (21 - 3) * 64 * 7 * 7 more weights.
    assert g["keypoint_head"] - g["image_head"] == 18 * 64 * 49
    assert full_info["total_params"] == sum(g.values())


def test_reduced_config_keeps_every_resolution():
    info = describe_handnet(handnet_preset("reduced"))
    rows = {r["name"]: r["output_shape"] for r in info["blocks"]}
    assert [rows[f"Segment.Up{i}"][1] for i in range(1, 6)] == [14, 28, 56, 112, 224]
    assert rows["Tail.Down5"][1:] == [7, 7] and rows["Regress.Pose"] == [48] and rows["Stereo.FC"] == [48]
    assert info["total_params"] < describe_handnet(TINY)["total_params"] * 100


def test_info_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "info.json"
    assert handnet_main(["info", "--json", str(out), "--config", "reduced"]) == 0
    data = json.loads(out.read_text())
    assert data["preset"] == "reduced" and data["input"] == [224, 224]
    assert "Segment.Up5" in capsys.readouterr().out
    assert handnet_main(["info", "--config", "huge"]) == 2
    assert "unknown HandNet preset" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [dict(width=0), dict(blocks=(3, 4, 6)), dict(crop_size=100),
                                 dict(regressor_hidden=()), dict(ssma_kernel=2), dict(cam_scale_init=-1.0)])
def test_config_validation_names_the_field(bad):
    with pytest.raises(HandNetConfigError, match=next(iter(bad))):
        HandNetConfig(**bad)


def test_config_dict_roundtrip_and_unknown_keys():
    assert HandNetConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(HandNetConfigError, match="unknown keys"):
        HandNetConfig.from_dict({**TINY.to_dict(), "depth": 3})


def test_heads_and_tail_resolutions():
    x = torch.zeros(2, 21, 64, 64)
    f = EncoderHead(21, TINY)(x)
    assert [t.shape[-1] for t in (f.down1, f.down2, f.down3)] == [32, 16, 8]
    t = Tail(TINY)(f.down3)
    assert t.down4.shape[1:] == (TINY.layer_channels(2), 4, 4) and t.down5.shape[1:] == (TINY.layer_channels(3), 2, 2)


def test_flows_and_segmentation():
    net = build_handnet(TINY).eval()
    img, heat = torch.randn(3, 3, 64, 64), torch.randn(3, 21, 64, 64)
    with torch.no_grad():
        outs = {f: net(img, heat, f) for f in Flow}
        seg = net(img, heat, Flow.FUSED, segment=True)
    for out in outs.values():
        assert out.pose.shape == (3, 48) and out.shape.shape == (3, 10) and out.cam.shape == (3, 3)
        assert (out.cam[:, 2] > 0).all()  # positive scale by construction
    assert not torch.allclose(outs[Flow.IMAGE].features, outs[Flow.KEYPOINT].features)
    assert seg.seg_logits.shape == (3, 1, 64, 64) and ((seg.seg >= 0) & (seg.seg <= 1)).all()
    with pytest.raises(ValueError, match="image head"):
        net(img, heat, Flow.KEYPOINT, segment=True)


def test_image_flow_ignores_the_heatmap_and_keypoint_flow_the_image():
    net = build_handnet(TINY).eval()
    img, heat = torch.randn(2, 3, 64, 64), torch.randn(2, 21, 64, 64)
    with torch.no_grad():
        assert torch.equal(net(img, heat, "image").pose, net(img, heat * 0, "image").pose)
        assert torch.equal(net(img, heat, "keypoint").pose, net(img * 0, heat, "keypoint").pose)
        assert torch.equal(net(img, None, "fused").pose, net(img, torch.zeros_like(heat), "fused").pose)


def _random_pose(b, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 48, generator=g) * 0.3


def test_fuse_pose_formula_and_frame_change():
    w = torch.rand(4, 48)
    pr, pl = _random_pose(4, 1), _random_pose(4, 2)
    assert torch.allclose(fuse_pose(w, pr, pl), w * pr + (1 - w) * pl)
    R = axis_angle_to_matrix(torch.tensor([[0.1, -0.2, 0.3]])).expand(4, 3, 3)
    fused = fuse_pose(torch.zeros(4, 48), pr, pl, R)  # w = 0: the left pose, moved into the right frame
    expect = matrix_to_axis_angle(R @ axis_angle_to_matrix(pl[:, :3]))
    assert torch.allclose(fused[:, :3], expect, atol=1e-6) and torch.equal(fused[:, 3:], pl[:, 3:])


def test_stereo_forward_fuses_both_views():
    net = build_handnet(TINY).eval()
    with torch.no_grad():
        net.stereo.fc.weight.normal_(0, 0.1)
        images, heat = torch.randn(2, 2, 3, 64, 64), torch.randn(2, 2, 21, 64, 64)
        out = net.forward_stereo(images, heat)
        left = net(images[:, 0], heat[:, 0])
        right = net(images[:, 1], heat[:, 1])
    assert torch.allclose(out.left.pose, left.pose, atol=1e-5) and torch.allclose(out.right.pose, right.pose, atol=1e-5)
    w = torch.sigmoid(net.stereo.fc(torch.cat([right.features, left.features], 1)))
    assert torch.allclose(out.weights, w, atol=1e-5)
    assert torch.allclose(out.pose, w * right.pose + (1 - w) * left.pose, atol=1e-5)
    assert torch.allclose(out.shape, (left.shape + right.shape) / 2, atol=1e-6)
    assert torch.equal(out.cam, out.right.cam)  # no geometry: the right view's own camera


def test_untrained_stereo_head_averages():
    net = build_handnet(TINY)
    w = net.stereo(torch.randn(5, TINY.feature_dim), torch.randn(5, TINY.feature_dim))
    assert torch.allclose(w, torch.full((5, 48), 0.5))


def _rig(baseline=0.12):
    K = torch.tensor([[700.0, 0, 639.5], [0, 700.0, 359.5], [0, 0, 1]], dtype=torch.float64)
    T = torch.eye(4, dtype=torch.float64)
    T[0, 3] = -baseline
    return K, T


def test_xi_is_exact_for_the_root():
    """A root seen by both crops: xi(cam_left) equals the right crop's own weak-perspective camera."""
    K, T = _rig()
    root_left = torch.tensor([[0.08, -0.03, 0.45], [-0.02, 0.05, 0.3]], dtype=torch.float64)
    box_l = torch.tensor([[600.0, 300.0, 180.0], [580.0, 380.0, 260.0]], dtype=torch.float64)
    box_r = box_l - torch.tensor([[190.0, 0, 0], [280.0, 0, -10]], dtype=torch.float64)
    cam_l = translation_to_weak_perspective(root_left, box_l, K, 224)
    root_right = root_left + T[:3, 3]
    cam_r = translation_to_weak_perspective(root_right, box_r, K, 224)
    Ks, Ts = K.expand(2, 3, 3), T.expand(2, 4, 4)
    assert torch.allclose(left_camera_in_right_view(cam_l, box_l, box_r, Ks, Ks, Ts, 224), cam_r, atol=1e-9)


def test_camera_merge_with_geometry_averages_xi():
    net = build_handnet(TINY)
    K, T = _rig()
    box_l = torch.tensor([[600.0, 300.0, 180.0]], dtype=torch.float64)
    box_r = torch.tensor([[420.0, 300.0, 180.0]], dtype=torch.float64)

    def mk(cam):
        return HandNetOutput(torch.zeros(1, 48), torch.zeros(1, 10), cam, torch.zeros(1, TINY.feature_dim))

    cam_l = torch.tensor([[0.1, -0.2, 6.0]])
    cam_r = torch.tensor([[0.3, -0.1, 5.0]])
    geo = StereoGeometry(box_l, box_r, K[None], K[None], T[None])
    out = net.fuse_views(mk(cam_l), mk(cam_r), None, geo)
    xi = left_camera_in_right_view(cam_l.double(), box_l, box_r, K[None], K[None], T[None], TINY.crop_size)
    assert torch.allclose(out.cam, (cam_r + xi.float()) / 2, atol=1e-6)


def test_gradients_reach_every_trainable_block():
    net = build_handnet(TINY).train()
    out = net(torch.randn(2, 3, 64, 64), torch.randn(2, 21, 64, 64), "fused", segment=True)
    w = net.stereo(out.features, out.features.flip(0))
    (out.pose.sum() + out.shape.sum() + out.cam.sum() + out.seg_logits.mean() + w.sum()).backward()
    for group in ("image_head", "keypoint_head", "fusion", "tail", "regressor", "decoder", "stereo"):
        grads = [p.grad for p in getattr(net, group).parameters()]
        assert all(g is not None for g in grads), group
        assert any(float(g.abs().sum()) > 0 for g in grads), group


def test_build_is_deterministic_under_a_seed():
    torch.manual_seed(3)
    a = build_handnet(TINY).state_dict()
    torch.manual_seed(3)
    b = build_handnet(TINY).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.isclose(float(a["regressor.pose.weight"].std()), 1e-3, rtol=0.3)
