"""models/synth/generate.py and the CLI: labels agree with the rendered geometry and the rig, the set is
reproducible from its seed for any worker count, and bad input gets a clear error."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from app.render.hard_raster import HardRasterConfig, hard_rasterize
from calibration.presets import preset_rig
from calibration.rig import make_stereo
from models.synth.__main__ import main as synth_main
from models.synth.generate import (
    GenerateConfig,
    GenerateError,
    SampleMaker,
    SampleRecord,
    generate,
    mediapipe_figures,
    random_crop_resize,
    resolve_rig,
    split_stereo_background,
)
from models.synth.scene import FOREARM_FACES, FOREARM_LABEL
from models.synth.views import VIEW_KINDS

torch.set_num_threads(1)
SMALL = dict(rig="zed-mini", mode="320x180", texture_size=128, mediapipe=False, progress=False)


@pytest.fixture(scope="module")
def maker():
    calib = preset_rig("zed-mini", "320x180")
    m = SampleMaker(calib, GenerateConfig(n=1, **SMALL))
    yield m
    m.close()


def _views(maker):
    return (maker.calib.left, maker.calib.right)


def _cam(points_m, view):
    return points_m @ view.T_cam_left[:3, :3].T + view.T_cam_left[:3, 3]


def _near_boundary(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    """Pixels within ``radius`` of the mask's boundary (on either side)."""
    k = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    m = mask.astype(np.uint8)
    return (cv2.dilate(m, k) - cv2.erode(m, k)) > 0


def test_masks_are_the_parts_pass_without_the_forearm(maker):
    for i in range(4):
        sample = maker.make(i)
        for v, r in enumerate(maker.render(maker.scene(i))):
            np.testing.assert_array_equal(sample.mask[v], (r.parts >= 0) & (r.parts != FOREARM_LABEL))
            assert sample.mask[v].sum() > 50
            # The shaded pass (multisampled) covers the same pixels as hand + forearm up to edge pixels.
            covered = sample.mask[v] | (r.parts == FOREARM_LABEL)
            diff = covered ^ (r.depth_m > 0)
            assert not (diff & ~_near_boundary(covered)).any()
            assert diff.sum() <= 0.2 * _near_boundary(covered).sum()


def test_masks_agree_with_the_hard_rasterizer_up_to_edge_pixels(maker):
    for i in range(4):
        s = maker.scene(i)
        sample = maker.make(i)
        faces = np.concatenate([s.scene.faces, FOREARM_FACES + len(s.hand.verts_m)])
        is_hand = np.arange(len(faces)) < len(s.scene.faces)
        for v, view in enumerate(_views(maker)):
            verts = _cam(np.concatenate([s.hand.verts_m, s.hand.forearm_m]).astype(np.float64), view)
            w, h = view.size_wh
            frag = hard_rasterize(torch.tensor(verts[None]), torch.tensor(faces), torch.tensor(view.K),
                                  HardRasterConfig(image_size=(h, w)))
            fid = frag.face_id[0].numpy()
            hard = (fid >= 0) & is_hand[np.maximum(fid, 0)]
            diff = hard ^ sample.mask[v]
            assert not (diff & ~_near_boundary(hard)).any(), f"sample {i} view {v}: mask differs off the edges"
            assert diff.sum() <= 0.25 * _near_boundary(hard).sum()


def test_keypoints_are_the_projections_of_the_3d_keypoints(maker):
    for i in range(6):
        s = maker.make(i)
        for v, view in enumerate(_views(maker)):
            rvec = cv2.Rodrigues(view.T_cam_left[:3, :3])[0]
            ref = cv2.projectPoints(s.hand.keypoints_m.astype(np.float64), rvec, view.T_cam_left[:3, 3], view.K,
                                    None)[0][:, 0]
            assert np.abs(s.keypoints_px[v] - ref).max() < 0.5e-2


def test_views_follow_the_rectified_rig(maker):
    f, b = maker.calib.left.K[0, 0], maker.calib.baseline_m
    for i in range(6):
        s = maker.make(i)
        kl, kr = s.keypoints_px
        np.testing.assert_allclose(kl[:, 1], kr[:, 1], atol=1e-3)  # rows equal
        np.testing.assert_allclose(kl[:, 0] - kr[:, 0], f * b / s.hand.keypoints_m[:, 2], rtol=1e-4)

        # The renders too: a left hand pixel at depth z shows the same surface point in the right view at the
        # same row, disparity f B / z (same depth there, same part label), unless occluded or outside.
        left, right = maker.render(maker.scene(i))
        ys, xs = np.nonzero(s.mask[0])
        z = left.depth_m[ys, xs]
        ys, xs, z = ys[z > 0], xs[z > 0], z[z > 0]
        xr = np.round(xs - f * b / z).astype(int)
        ok = (xr >= 0) & (xr < right.depth_m.shape[1])
        same_point = np.abs(right.depth_m[ys[ok], xr[ok]] - z[ok]) < 0.003
        assert same_point.mean() > 0.85, f"sample {i}: right view does not see the left view's surface"
        same_part = right.parts[ys[ok], xr[ok]][same_point] == left.parts[ys[ok], xs[ok]][same_point]
        assert same_part.mean() > 0.95  # part borders move by the rounding of x_right


def test_views_follow_a_general_rig_epipolar_geometry():
    R = cv2.Rodrigues(np.array([0.02, -0.05, 0.01]))[0]
    T = np.array([-0.1, 0.004, 0.002])
    K = np.array([[300.0, 0, 159.5], [0, 300.0, 89.5], [0, 0, 1]])
    calib = make_stereo(K, np.zeros(5), K, np.zeros(5), R, T, (320, 180), rectified=False)
    m = SampleMaker(calib, GenerateConfig(n=1, **SMALL))
    try:
        s = m.make(0)
        rendered = m.render(m.scene(0))
    finally:
        m.close()
    tx = np.array([[0, -T[2], T[1]], [T[2], 0, -T[0]], [-T[1], T[0], 0]])
    F = np.linalg.inv(K).T @ tx @ R @ np.linalg.inv(K)
    hl, hr = (np.concatenate([k, np.ones((21, 1))], 1) for k in s.keypoints_px)
    lines = hl @ F.T  # epipolar lines in the right view
    dist = np.abs(np.sum(hr * lines, 1)) / np.linalg.norm(lines[:, :2], axis=1)
    assert dist.max() < 1e-2
    # The right render is the scene seen through the right camera: visible keypoints' depth matches there.
    z_right = _cam(s.hand.keypoints_m.astype(np.float64), calib.right)[:, 2]
    _check_visible_depth(s.keypoints_px[1], s.visible[1], rendered[1], z_right)


def _check_visible_depth(kps_px, visible, rendered, z_m):
    """Visible keypoints lie just under the surface seen at their pixel (the rule admits palm keypoints seen
    through the palm and joints behind their own finger, so only most are close)."""
    px = np.round(kps_px[visible]).astype(int)
    depth = rendered.depth_m[px[:, 1], px[:, 0]]
    assert np.mean(depth > 0) >= 0.8  # tips on the silhouette can miss the shaded pass by an edge pixel
    gap = np.abs(depth - z_m[visible])[depth > 0]
    assert np.median(gap) < 0.025 and gap.max() < 0.08  # under a finger's thickness / within a finger's length


def _rule(kps_px, labels):
    """Reference of the visibility rule, one keypoint at a time: inside, and the label at the pixel is the
    keypoint's finger, or the palm for the wrist, CMC and MCP keypoints."""
    h, w = labels.shape
    out = np.zeros(21, bool)
    for k, (x, y) in enumerate(np.round(kps_px).astype(int)):
        if 0 <= x < w and 0 <= y < h:
            finger = 0 if k == 0 else (k - 1) // 4 + 1
            palm_ok = k in (0, 1, 2, 5, 9, 13, 17)
            out[k] = labels[y, x] == finger or (palm_ok and labels[y, x] == 0)
    return out


def test_visibility_follows_the_part_rule_and_the_depth(maker):
    n_hidden = 0
    for i in range(6):
        s = maker.scene(i)
        sample = maker.make(i)
        rendered = maker.render(s)
        for v, view in enumerate(_views(maker)):
            np.testing.assert_array_equal(sample.visible[v], _rule(sample.keypoints_px[v], rendered[v].parts))
            _check_visible_depth(sample.keypoints_px[v], sample.visible[v], rendered[v],
                                 _cam(s.hand.keypoints_m.astype(np.float64), view)[:, 2])
            n_hidden += int((~sample.visible[v]).sum())
    assert n_hidden > 0


def test_sampler_keeps_hard_cases_and_every_view_kind(maker):
    samples = [maker.make(i) for i in range(24)]
    vis = np.array([s.visible[0].mean() for s in samples])
    assert np.mean(vis >= 0.7) <= 0.9
    assert {s.draw.kind for s in samples} == set(VIEW_KINDS)
    assert {s.draw.side for s in samples} == {"left", "right"}
    assert all(s.mask[0].mean() > 0.002 for s in samples)  # every hand is in the left view


def test_renders_repeat_exactly(maker):
    s = maker.scene(2)
    first = maker.render(s)
    for _ in range(3):
        for a, b in zip(first, maker.render(s), strict=True):
            np.testing.assert_array_equal(a.rgb, b.rgb)
            np.testing.assert_array_equal(a.parts, b.parts)


def test_stereo_background_has_the_plane_disparity():
    canvas = np.random.default_rng(0).integers(0, 255, (20, 50, 3), dtype=np.uint8)
    left, right = split_stereo_background(canvas, 40, 10)
    np.testing.assert_array_equal(right[:, :30], left[:, 10:40])
    with pytest.raises(ValueError, match="disparity"):
        split_stereo_background(canvas, 40, 3)


def test_photo_backgrounds_are_cropped_to_size():
    img = np.zeros((300, 200, 3), np.uint8)
    img[:, 100:] = 255
    out = random_crop_resize(img, np.random.default_rng(0), (64, 36))
    assert out.shape == (36, 64, 3) and out.dtype == np.uint8


def test_mediapipe_figures_use_the_visible_stratum():
    def rec(i, vis, det, kind):
        return SampleRecord(i, "0" * 64, kind, "right", "pca", (vis, vis), det, 0.1 if det else float("nan"), 0.1)

    records = [rec(0, 0.9, True, "back"), rec(1, 0.8, False, "palm"), rec(2, 0.2, True, "ego"),
               rec(3, 0.1, False, "back")]
    fig = mediapipe_figures(records)
    assert fig["mediapipe_detection_rate"] == pytest.approx(0.5)
    assert fig["mediapipe_detection_rate_all"] == pytest.approx(0.5)
    assert fig["per_kind"] == {"back": 1.0, "palm": 0.0, "ego": None}
    off = mediapipe_figures([rec(0, 0.9, None, "back")])
    assert off["mediapipe_detection_rate"] is None


def _generate(tmp_path, name, **kw):
    summary, _ = generate(tmp_path / name, GenerateConfig(**{**SMALL, "n": 3, **kw}))
    assert json.loads((tmp_path / name / "summary.json").read_text()) == summary
    return summary


def test_generate_is_reproducible_for_any_worker_count(tmp_path):
    a = _generate(tmp_path, "a", seed=7)
    b = _generate(tmp_path, "b", seed=7)
    c = _generate(tmp_path, "c", seed=7, workers=2)
    d = _generate(tmp_path, "d", seed=8)
    assert a["checksum"] == b["checksum"] == c["checksum"] != d["checksum"]
    assert a["samples"] == 3 and a["mediapipe_detection_rate"] is None
    index = json.loads((tmp_path / "c" / "dataset.json").read_text())
    assert [e["id"] for e in index["entries"]] == ["000000", "000001", "000002"]
    assert index["checksum"] == c["checksum"]
    assert (tmp_path / "a" / "images" / "right" / "000002.png").is_file()


def test_generate_reports_mediapipe_figures_and_writes_a_sheet(tmp_path):
    out, summary, sheet = tmp_path / "set", tmp_path / "s.json", tmp_path / "sheet.png"
    rc = synth_main(["generate", "--out", str(out), "--n", "3", "--mode", "320x180", "--quiet", "--summary",
                     str(summary), "--sheet", str(sheet), "--image-format", "jpg"])
    assert rc == 0
    s = json.loads(summary.read_text())
    assert 0.0 <= s["mediapipe_detection_rate_all"] <= 1.0 and s["samples"] == 3
    assert set(s["per_kind"]) == set(VIEW_KINDS) and s["seconds_per_sample"] > 0
    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[1] == 2 * 960
    assert (out / "images" / "left" / "000000.jpg").is_file()


def test_bad_input_gets_a_clear_error(tmp_path, capsys):
    assert synth_main(["generate", "--out", str(tmp_path / "x"), "--n", "1", "--rig", "nope"]) == 2
    assert "unknown rig 'nope'" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert synth_main(["generate", "--out", str(tmp_path / "x"), "--n", "1", "--backgrounds", str(empty)]) == 2
    assert "no .jpg" in capsys.readouterr().err
    assert synth_main(["generate", "--out", str(tmp_path / "x"), "--n", "0"]) == 2
    assert "--n: expected at least 1" in capsys.readouterr().err
    _generate(tmp_path, "done", n=1)
    assert synth_main(["generate", "--out", str(tmp_path / "done"), "--n", "1", "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_distorted_rigs_are_refused(tmp_path):
    from calibration.fileio import save_calibration

    K = np.array([[300.0, 0, 159.5], [0, 300.0, 89.5], [0, 0, 1]])
    calib = make_stereo(K, np.array([0.1, 0, 0, 0, 0]), K, np.zeros(5), np.eye(3), [-0.1, 0, 0], (320, 180))
    path = save_calibration(tmp_path / "rig.json", calib)
    with pytest.raises(GenerateError, match="distortion"):
        resolve_rig(str(path), "HD720")


def test_photo_folder_backgrounds_are_used(tmp_path):
    folder = tmp_path / "bg"
    folder.mkdir()
    photo = np.zeros((200, 300, 3), np.uint8)
    photo[..., 2] = 255  # pure red (BGR)
    cv2.imwrite(str(folder / "red.png"), photo)
    calib = preset_rig("zed-mini", "320x180")
    m = SampleMaker(calib, GenerateConfig(n=1, backgrounds=str(folder), photo_fraction=1.0, **SMALL))
    try:
        s = m.make(0)
    finally:
        m.close()
    for v in range(2):
        bg = s.rgb[v][~s.mask[v]]  # background and forearm: mostly the red photo
        assert np.median(bg[:, 0]) == 255 and np.median(bg[:, 1]) == 0
