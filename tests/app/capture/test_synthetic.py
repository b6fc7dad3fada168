"""The animated synthetic source (app/capture/synthetic.py): registry and URI errors, determinism, ground truth
against the rendered images (projection, masks, rectified rows, parallax), both hands, smooth keypoints, pacing
with a fake clock, record and replay, the CLI, and use from other threads."""

import json
import threading

import cv2
import numpy as np
import pytest
import torch

from app.capture import CaptureError, known_schemes, open_source
from app.capture.info import main as capture_cli
from app.capture.recording import record_source
from app.capture.synthetic import (
    FramePacer,
    SyntheticConfig,
    SyntheticSource,
    SyntheticTruth,
    composite_over,
    composite_premultiplied,
    config_from_uri,
    hand_vertex_data,
    light_pose,
    open_hand_model,
    project_views,
    vertex_normals,
    view_box,
)
from app.capture.synthetic_motion import sample_motion
from app.capture.uri import parse_uri
from app.offscreen.kept_scene import Patch
from calibration.presets import preset_rig

torch.set_num_threads(1)
FPS = 60
URI = f"synthetic?pace=fast&fps={FPS}&seed=1"
SMALL = "mode=160x90&pace=fast"  # cheap sources for the tests that do not look at pixels


@pytest.fixture(scope="module")
def src():
    s = open_source(URI)
    yield s
    s.close()


@pytest.fixture(scope="module")
def frames(src):
    """Frames 0..3 of ``src``, read first."""
    return [src.read() for _ in range(4)]


@pytest.fixture(scope="module")
def two():
    s = open_source("synthetic?pace=fast&hands=2&seed=5")
    yield s
    s.close()


class FakeClock:
    """A monotonic ns clock that moves only when slept on or when the test says work took time."""

    def __init__(self, start_ns: int = 10**12):
        self.now, self.sleeps = start_ns, []

    def clock(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += int(round(seconds * 1e9))

    def work(self, seconds: float) -> None:
        self.now += int(round(seconds * 1e9))


# ---------------------------------------------------------------------------------------------------------
# Registry, URI, configuration
# ---------------------------------------------------------------------------------------------------------


def test_registered_and_described(src, frames):
    assert "synthetic" in known_schemes()
    assert isinstance(src, SyntheticSource)
    cal = src.calibration
    assert cal.rectified and cal.left.size_wh == (640, 360) and cal.baseline_m == pytest.approx(0.063)
    assert src.nominal_fps == FPS and src.frames_total is None and src.is_live  # endless: treated as live
    f = frames[0]
    assert f.left.shape == (360, 640, 3) and f.left.dtype == np.uint8 and f.calibration is cal
    assert [fr.frame_id for fr in frames] == [0, 1, 2, 3]
    assert [fr.t_capture_ns for fr in frames] == [round(i * 1e9 / FPS) for i in range(4)]
    assert src.antialias_samples == 0  # aa=0 (default): single-sample rendering


@pytest.mark.parametrize("query, message", [
    ("?rig=kinect", "rig='kinect' is unknown; use one of zed, zed-mini, zed2"),
    ("?frames=-1", "frames=-1: give a positive frame count, or 0"),
    ("?fps=0", "fps=0: give a frame rate above 0"),
    ("?fps=abc", "'fps=abc' is not a number"),
    ("?hands=3", "hands=3: give hands=1"),
    ("?pace=slow", "pace='slow' is unknown; use pace=realtime"),
    ("?mode=huge", "mode='huge': unknown rig mode"),
    ("?mode=9000x10", "out of range"),
    ("?seed=-2", "seed=-2: give an integer >= 0"),
    ("?aa=maybe", "'aa=maybe' must be 1 or 0"),
    ("?colour=red", "unknown parameter(s) ['colour']"),
    (":left", "'synthetic' takes no target"),
])
def test_bad_uris_say_what_to_fix(query, message):
    with pytest.raises(CaptureError) as err:
        open_source("synthetic" + query)
    assert message in str(err.value) and f"synthetic{query}" in str(err.value)


def test_defaults():
    assert config_from_uri(parse_uri("synthetic")) == SyntheticConfig()
    cfg = SyntheticConfig()
    assert (cfg.seed, cfg.frames, cfg.fps, cfg.rig, cfg.mode, cfg.hands, cfg.pace, cfg.antialias) == (
        0, 0, 30.0, "zed-mini", "640x360", 1, "realtime", False)


def test_config_checks_itself():
    with pytest.raises(CaptureError, match="synthetic source: fps=0"):
        SyntheticConfig(fps=0)
    with pytest.raises(CaptureError, match="background_depth_m"):
        SyntheticConfig(background_depth_m=0.1)


def test_light_pose_points_the_light_along_its_direction():
    d = np.array([0.2, 0.5, 1.0])
    pose = light_pose(d)
    # pyrender lights shine along -z of their node; the scene's world frame is the left camera's OpenCV frame.
    np.testing.assert_allclose(-pose[:3, 2], d / np.linalg.norm(d))
    np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-12)
    assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)
    np.testing.assert_allclose(-light_pose(np.array([0.0, 1.0, 0.0]))[:3, 2], [0, 1, 0])  # straight down too


def test_composite_adds_the_background_behind_partial_coverage():
    bg = np.full((4, 5, 3), 200, np.uint8)
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[1, 1] = [100, 50, 0, 255]  # covered
    rgba[1, 2] = [50, 25, 0, 128]  # half covered: colour already scaled by the coverage
    out = composite_premultiplied(rgba, bg)
    np.testing.assert_array_equal(out[1, 1], [100, 50, 0])
    np.testing.assert_array_equal(out[1, 2], [50 + 100, 25 + 100, 100])
    assert (out[0] == 200).all() and (out[:, 4] == 200).all()
    np.testing.assert_array_equal(composite_premultiplied(np.zeros_like(rgba), bg), bg)


def test_antialiasing_on_request():
    with open_source(f"synthetic?aa=1&{SMALL}") as s:
        assert s.antialias_samples == 4 and s.read().left.shape == (90, 160, 3)


def test_composite_over_rounds_like_the_integer_formula_for_every_value_and_alpha():
    values, alphas = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    image = np.repeat(values[..., None], 3, axis=2).astype(np.uint8)
    rgba = np.zeros((256, 256, 4), np.uint8)
    rgba[..., 3] = alphas
    rgba[..., 0] = alphas // 2  # premultiplied colour, <= alpha
    want = image.astype(np.int64) * (255 - alphas[..., None]) + 127
    want = np.minimum(want // 255 + rgba[..., :3], 255)
    composite_over(image, Patch(rgba, 0, 0))
    np.testing.assert_array_equal(image, want)
    framed = np.full((6, 7, 3), 9, np.uint8)
    composite_over(framed, Patch(np.full((2, 3, 4), 255, np.uint8), 4, 1))  # a patch placed inside an image
    assert (framed[1:3, 4:7] == 255).all() and framed.sum() == 9 * (42 - 6) * 3 + 255 * 6 * 3


def test_view_box_holds_the_projection():
    cal = preset_rig("zed-mini", "640x360")
    pts = np.array([[0.0, 0.0, 0.5], [0.05, -0.03, 0.4], [-0.02, 0.04, 0.6]])
    for view in (cal.left, cal.right):
        x0, y0, x1, y1 = view_box(pts, view, margin_px=0)
        px = project_views(pts, cal)[0 if view is cal.left else 1]
        assert (np.floor(px.min(0)) == [x0, y0]).all() and (np.ceil(px.max(0)) + 1 == [x1, y1]).all()
    assert view_box(np.array([[0.0, 0.0, -0.3], [0.0, 0.0, 0.5]]), cal.left) == (0, 0, 640, 360)  # behind
    assert view_box(np.array([[5.0, 0.0, 0.5]]), cal.left) is None  # far off to the side
    assert view_box(np.array([[0.0, 0.0, 0.5], [0.6, 0.0, 0.5]]), cal.left)[2] == 640  # clipped to the image


def _pyrender_reference(scene) -> tuple[list, list]:
    """(left, right) colour and (left, right) segmentation codes of a StereoSceneRenderer's scene as it stands,
    rendered through pyrender's own path on the same context: its mesh.frag (loops over every light type), full
    colour and depth read-back, numpy inverse of the camera pose; colour composited over the whole frame."""
    from pyrender.shader_program import ShaderProgramCache

    inner = scene._renderer._renderer
    lean_cache = inner._program_cache
    patched = {k: inner.__dict__.pop(k) for k in ("_read_main_framebuffer", "_get_camera_matrices")}
    inner._program_cache = ShaderProgramCache()
    pr = scene._pr
    seg = {node: np.array([i + 1, 0, 0]) for i, node in enumerate(scene._hands)}
    seg.update({node: np.zeros(3) for node in scene._arms})
    try:
        views, codes = [], []
        for cam, bg in zip(scene._cams, scene.backgrounds, strict=True):
            scene._scene.main_camera_node = cam
            rgba, _ = scene._renderer.render(scene._scene, flags=pr.RenderFlags.RGBA)
            views.append(composite_premultiplied(rgba, bg))
            rgb, _ = scene._renderer.render(scene._scene, flags=pr.RenderFlags.SEG, seg_node_map=seg)
            codes.append(rgb[..., 0])
        inner._program_cache.clear()
    finally:
        inner._program_cache = lean_cache
        inner.__dict__.update(patched)
    return views, codes


def test_lean_render_equals_pyrenders_own_path():
    """The directional-light shader, the box read-back and the compositing change nothing visible: both views
    and the masks match pyrender's mesh.frag with full-frame read-back (two hands, multisampled edges)."""
    with open_source("synthetic?pace=fast&hands=2&aa=1&seed=4") as s:
        s._pacer._last = 79  # frame 80: both hands and forearms in view
        frame = s.read()
        truths = s.hands_truth(frame.frame_id)  # the scene stays posed at this frame
        ref_views, ref_codes = s._on_gl(_pyrender_reference, s._scene)
    for v, got in enumerate((frame.left, frame.right)):
        drawn = (ref_views[v] != s.backgrounds[v]).any(axis=2)
        assert drawn.sum() > 5000
        diff = np.abs(got.astype(int) - ref_views[v])
        assert diff.max() <= 1 and diff[drawn].mean() < 0.01
        for i, t in enumerate(truths):
            np.testing.assert_array_equal(t.masks[v], ref_codes[v] == i + 1)


def test_closed_form_view_matrix_is_pyrenders_inverse(src):
    def both(scene):
        inner, world, out = scene._renderer._renderer, scene._scene, []
        for cam in scene._cams:
            world.main_camera_node = cam
            out.append((inner._get_camera_matrices(world), type(inner)._get_camera_matrices(inner, world)))
        return out

    for (V, P), (V_ref, P_ref) in src._on_gl(both, src._scene):
        np.testing.assert_allclose(V, V_ref, atol=1e-12)
        np.testing.assert_array_equal(P, P_ref)


def test_hand_vertex_buffer_is_rewritten_in_pyrenders_layout(src):
    """The in-place vertex buffer write (positions, normals, uv interleaved) is what pyrender's shaders read."""
    hand = src._hand_frames(5)[0]
    src._on_gl(src._set_scene, [hand])
    kit, look = src._kits[0], src._scene._looks[0]
    want = hand_vertex_data(look, hand.verts_m, vertex_normals(hand.verts_m, kit.faces, kit.vertex_faces))
    got = src._on_gl(_read_vertex_buffer, src._scene._hands[0].mesh.primitives[0], want.size)
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def _read_vertex_buffer(primitive, n_floats: int) -> np.ndarray:
    """(n_floats,) float32 from the start of an uploaded pyrender primitive's vertex buffer (GL thread)."""
    import ctypes

    from OpenGL import GL as gl

    out = np.empty(n_floats, np.float32)
    gl.glBindBuffer(gl.GL_ARRAY_BUFFER, primitive._buffers[0])
    gl.glGetBufferSubData(gl.GL_ARRAY_BUFFER, 0, out.nbytes, out.ctypes.data_as(ctypes.c_void_p))
    gl.glBindBuffer(gl.GL_ARRAY_BUFFER, 0)
    return out


# ---------------------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------------------


def test_same_seed_same_frames_whatever_was_asked_before(src, frames):
    with open_source(URI) as twin:
        twin.ground_truth(200)  # poses the scene elsewhere first: frames must not depend on that
        again = [twin.read() for _ in range(4)]
        np.testing.assert_array_equal(twin.skin.image, src.skin.image)
    for a, b in zip(frames, again, strict=True):
        assert a.frame_id == b.frame_id and a.t_capture_ns == b.t_capture_ns
        np.testing.assert_array_equal(a.left, b.left)
        np.testing.assert_array_equal(a.right, b.right)
    with open_source("synthetic?pace=fast&fps=60&seed=2") as other:
        f = other.read()
        assert np.abs(f.left.astype(int) - frames[0].left).mean() > 5
        assert not np.allclose(other.skin.tone, src.skin.tone)
        assert other.motion.keys.labels != src.motion.keys.labels


def test_skin_is_the_painted_texture(src):
    s = src.skin
    assert s.image.shape == (512, 512, 3) and s.image.dtype == np.uint8
    assert s.vt.shape[1] == 2 and s.ft.shape == (1552, 3) and s.tone.shape == (3,)
    assert 40 < s.image.mean() < 240


# ---------------------------------------------------------------------------------------------------------
# Ground truth
# ---------------------------------------------------------------------------------------------------------


def test_keypoints_px_are_the_projection_through_each_view(src):
    gt = src.ground_truth(2, masks=False)
    assert isinstance(gt, SyntheticTruth) and not gt.is_left and gt.masks is None
    for v, view in enumerate((src.calibration.left, src.calibration.right)):
        rvec, _ = cv2.Rodrigues(view.T_cam_left[:3, :3])
        ref, _ = cv2.projectPoints(gt.keypoints_m.astype(np.float64), rvec, view.T_cam_left[:3, 3], view.K,
                                   view.dist)
        assert np.abs(gt.keypoints_px[v] - ref.reshape(-1, 2)).max() < 0.5
    # Rectified: equal rows, and the disparity is f B / z for every keypoint.
    np.testing.assert_allclose(gt.keypoints_px[0, :, 1], gt.keypoints_px[1, :, 1], atol=1e-3)
    f = src.calibration.left.K[0, 0]
    disparity = gt.keypoints_px[0, :, 0] - gt.keypoints_px[1, :, 0]
    np.testing.assert_allclose(disparity, f * 0.063 / gt.keypoints_m[:, 2], rtol=1e-4)


def test_truth_parameters_reproduce_the_mesh_and_the_wrist_follows_the_path(src):
    gt = src.ground_truth(37, masks=False)
    with torch.no_grad():
        out = open_hand_model("right")(torch.tensor(gt.pose[None]), torch.tensor(gt.shape[None]),
                                       torch.tensor(gt.transl_m[None]))
    assert not gt.verts_m.flags.writeable  # cached truth is read-only
    np.testing.assert_allclose(out.verts_m[0].numpy(), gt.verts_m, atol=1e-6)
    np.testing.assert_allclose(out.keypoints_m[0].numpy(), gt.keypoints_m, atol=1e-6)
    wrist = sample_motion(src.motion, np.array([37 / FPS])).wrist_m[0]
    np.testing.assert_allclose(gt.keypoints_m[0], wrist, atol=1e-5)
    assert 0.3 <= wrist[2] <= 0.6
    state = gt.state
    assert state.is_left is False and state.pose is gt.pose


def _coverage(verts_px: np.ndarray, faces: np.ndarray, size_wh) -> np.ndarray:
    """(H, W) bool: pixel centres inside any projected triangle (GL's sampling rule; occlusion ignored)."""
    w, h = size_wh
    img = np.zeros((h, w), bool)
    for a, b, c in verts_px[faces]:
        lo = np.maximum(np.floor(np.minimum(np.minimum(a, b), c)).astype(int), 0)
        hi = np.minimum(np.ceil(np.maximum(np.maximum(a, b), c)).astype(int), [w - 1, h - 1])
        if np.any(hi < lo):
            continue
        yy, xx = np.mgrid[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1]
        e = [(q[0] - p[0]) * (yy - p[1]) - (q[1] - p[1]) * (xx - p[0]) for p, q in ((a, b), (b, c), (c, a))]
        inside = ((e[0] >= 0) & (e[1] >= 0) & (e[2] >= 0)) | ((e[0] <= 0) & (e[1] <= 0) & (e[2] <= 0))
        img[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1] |= inside
    return img


def test_masks_agree_with_the_rendered_images_to_the_pixel(src, frames):
    gt = src.ground_truth(3)
    frame = frames[3]
    faces = open_hand_model("right").faces.numpy()
    verts_px = project_views(gt.verts_m.astype(np.float64), src.calibration)
    for v, img in enumerate((frame.left, frame.right)):
        mask = gt.masks[v]
        assert mask.shape == (360, 640) and mask.sum() > 2000
        differs = np.abs(img.astype(int) - src.backgrounds[v]).max(axis=2) > 0
        assert differs[mask].mean() > 0.99  # the rendered hand covers every masked pixel
        cover = _coverage(verts_px[v], faces, (640, 360))
        assert (mask & ~cover).sum() <= 5  # never outside the mesh that GT projects (the forearm hides some)
        # Above the finger bases (fingers up in this frame, no forearm): the render and the GT projection agree
        # pixel for pixel, and half a pixel of offset would show.
        cut = int(gt.keypoints_px[v, [5, 9, 13, 17], 1].min()) - 5
        assert mask[:cut].sum() > 1000
        assert (mask[:cut] ^ cover[:cut]).sum() <= 5
        off = _coverage(verts_px[v] + [0.5, 0.0], faces, (640, 360))
        assert (mask[:cut] ^ off[:cut]).sum() > 40


def test_rendered_rows_match_between_views(src, frames):
    gt = src.ground_truth(1)
    rows = [np.flatnonzero(m.any(axis=1)) for m in gt.masks]
    assert abs(rows[0][0] - rows[1][0]) <= 1 and abs(rows[0][-1] - rows[1][-1]) <= 1
    # Each row's mask extent shifts by about the disparity of the hand (f B / z of its keypoints).
    f = src.calibration.left.K[0, 0]
    d = np.median(f * 0.063 / gt.keypoints_m[:, 2])
    shift = [np.flatnonzero(gt.masks[0][r]).mean() - np.flatnonzero(gt.masks[1][r]).mean()
             for r in rows[0][5:-5:5] if gt.masks[1][r].any()]
    assert abs(np.median(shift) - d) < 2.5


def test_background_plane_has_its_parallax(src):
    left, right = (b.astype(np.float32) for b in src.backgrounds)
    K = src.calibration.left.K
    d = K[0, 0] * 0.063 / src.config.background_depth_m  # a fronto-parallel plane: one disparity everywhere
    shifted = cv2.warpAffine(left, np.array([[1.0, 0.0, -d], [0.0, 1.0, 0.0]]), (640, 360))
    m = 40
    same = np.abs(cv2.blur(shifted, (5, 5)) - cv2.blur(right, (5, 5)))[m:-m, m:-m].mean()
    unshifted = np.abs(cv2.blur(left, (5, 5)) - cv2.blur(right, (5, 5)))[m:-m, m:-m].mean()
    assert same < 1.5 and unshifted > 3 * same


def test_keypoints_move_smoothly_through_keys_and_the_loop_wrap(src):
    n_loop = int(np.ceil(src.motion.period_s * FPS))
    ids = np.arange(n_loop - 60, 2 * n_loop + 60)  # two wraps of the endless loop
    kp = src.keypoints_m(ids)[:, 0]
    for i in (0, 700, len(ids) - 1):  # the batched path gives what ground_truth gives
        np.testing.assert_allclose(kp[i], src.ground_truth(int(ids[i]), masks=False).keypoints_m, atol=2e-6)
    speed = np.linalg.norm(np.diff(kp, axis=0), axis=2) * FPS  # m/s per keypoint
    accel = np.linalg.norm(np.diff(kp, n=2, axis=0), axis=2) * FPS**2
    assert speed.max() < 1.5  # fingertips of a quick wave or turn reach about 0.9 m/s
    assert accel.max() < 20.0  # the motion's own peaks are about 9 m/s^2; a 5 mm jump adds 18 at 60 fps
    assert speed.mean() > 0.05  # and it does move


def test_ground_truth_refuses_bad_ids(src, two):
    with pytest.raises(CaptureError, match="frame_id -1 must be an int >= 0"):
        src.ground_truth(-1)
    with pytest.raises(CaptureError, match="frame_id '3' must be an int"):
        src.ground_truth("3")
    with pytest.raises(CaptureError, match=r"hand=1; this source has 1 hand\(s\): 0 \(right\)"):
        src.ground_truth(0, hand=1)
    with pytest.raises(CaptureError, match="has 2 hand"):
        two.ground_truth(0, hand=2)
    with pytest.raises(CaptureError, match="frame_ids must be a 1-D array of ints >= 0"):
        src.keypoints_m(np.array([0.5]))


# ---------------------------------------------------------------------------------------------------------
# Two hands
# ---------------------------------------------------------------------------------------------------------


def test_two_hands_mirror_each_other(two):
    right, left = two.hands_truth(40)
    assert (right.is_left, left.is_left) == (False, True)
    assert two.ground_truth(40, hand=1).is_left
    c = two.calibration.baseline_m / 2  # the mirror plane: halfway between the cameras
    mirrored = right.keypoints_m * np.array([-1.0, 1.0, 1.0]) + np.array([2 * c, 0.0, 0.0])
    np.testing.assert_allclose(left.keypoints_m, mirrored, atol=1e-5)
    np.testing.assert_array_equal(right.shape, left.shape)
    for v in range(2):
        assert right.masks[v].sum() > 1000 and left.masks[v].sum() > 1000
        assert not (right.masks[v] & left.masks[v]).any()
        cols_r, cols_l = np.nonzero(right.masks[v])[1], np.nonzero(left.masks[v])[1]
        assert cols_r.mean() < cols_l.mean()  # the person's right hand is on the image's left
    np.testing.assert_allclose(two.keypoints_m([40])[0], np.stack([right.keypoints_m, left.keypoints_m]), atol=2e-6)
    frame = two.read()
    assert frame.frame_id == 0 and frame.left.shape == (360, 640, 3)


# ---------------------------------------------------------------------------------------------------------
# Pacing
# ---------------------------------------------------------------------------------------------------------


def test_pacer_realtime_waits_for_each_frame():
    fake = FakeClock()
    pacer = FramePacer(50.0, True, fake.clock, fake.sleep)
    t0 = fake.now
    out = []
    for _ in range(6):
        out.append(pacer.next())
        assert fake.now == out[-1][1]  # emitted when due, not before
    assert [i for i, _ in out] == list(range(6)) and pacer.dropped == 0
    assert [t - t0 for _, t in out] == [i * 20_000_000 for i in range(6)]
    assert fake.sleeps == pytest.approx([0.02] * 5)


def test_pacer_realtime_drops_frames_for_a_slow_consumer():
    fake = FakeClock()
    pacer = FramePacer(50.0, True, fake.clock, fake.sleep)
    t0 = pacer.next()[1]
    fake.work(0.05)  # 2.5 frame periods
    assert pacer.next() == (2, t0 + 40_000_000) and pacer.dropped == 1
    fake.work(0.05)
    assert pacer.next() == (5, t0 + 100_000_000) and pacer.dropped == 3
    assert fake.sleeps == []  # already late: no waiting


def test_pacer_fast_never_waits():
    fake = FakeClock()
    pacer = FramePacer(30.0, False, fake.clock, fake.sleep)
    assert [pacer.next() for _ in range(3)] == [(0, 0), (1, 33_333_333), (2, 66_666_667)]
    assert fake.sleeps == [] and pacer.dropped == 0


def test_realtime_source_keeps_its_fps_and_ends(tmp_path):
    fake = FakeClock()
    cfg = SyntheticConfig(frames=5, fps=50.0, mode="160x90", pace="realtime")
    with SyntheticSource(cfg, clock=fake.clock, sleep=fake.sleep) as s:
        assert s.is_live and s.frames_total == 5
        a, b = s.read(), s.read()
        assert (a.frame_id, b.frame_id) == (0, 1) and b.t_capture_ns - a.t_capture_ns == 20_000_000
        fake.work(0.065)  # the consumer was busy for 3.25 periods
        c = s.read()
        assert c.frame_id == 4 and s.dropped_frames == 2 and c.t_capture_ns - a.t_capture_ns == 80_000_000
        assert s.read() is None and s.read() is None


# ---------------------------------------------------------------------------------------------------------
# Recording, CLI, threads
# ---------------------------------------------------------------------------------------------------------


def test_record_then_replay_gives_the_same_frames(tmp_path, frames):
    summary = record_source(URI + "&frames=4", tmp_path / "rec")
    assert summary["frames_written"] == 4 and summary["frames_dropped"] == 0
    with open_source(f"recording:{tmp_path / 'rec'}") as rec:
        assert rec.nominal_fps == FPS and rec.calibration.baseline_m == pytest.approx(0.063)
        for want in frames:
            got = rec.read()
            assert got.frame_id == want.frame_id and got.t_capture_ns == want.t_capture_ns
            np.testing.assert_array_equal(got.left, want.left)
            np.testing.assert_array_equal(got.right, want.right)
        assert rec.read() is None


def test_cli_info_and_record(tmp_path, capsys):
    assert capture_cli(["info", f"synthetic?frames=3&{SMALL}"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == 3 and (report["width"], report["height"]) == (160, 90)
    assert report["baseline_m"] == pytest.approx(0.063) and report["rectified"] is True
    assert capture_cli(["record", f"synthetic?frames=3&{SMALL}", str(tmp_path / "r")]) == 0
    assert json.loads(capsys.readouterr().out)["frames_written"] == 3
    assert capture_cli(["info", "synthetic?fps=0"]) == 2
    assert "fps=0" in capsys.readouterr().err


def test_ground_truth_from_another_thread_does_not_disturb_reading(frames):
    with open_source(URI) as s:
        got = []
        reader = threading.Thread(target=lambda: got.extend(s.read() for _ in range(4)))
        reader.start()
        truths = [s.ground_truth(300 + i) for i in range(6)]  # masks: scene re-posed on the GL thread meanwhile
        reader.join()
        assert all(t.masks[0].any() for t in truths)
    for a, b in zip(frames, got, strict=True):
        np.testing.assert_array_equal(a.left, b.left)
        np.testing.assert_array_equal(a.right, b.right)


def test_open_read_and_close_on_different_threads():
    box = {}
    s = open_source(f"synthetic?{SMALL}")
    reader = threading.Thread(target=lambda: box.update(frame=s.read()))
    reader.start()
    reader.join()
    assert box["frame"].frame_id == 0
    closer = threading.Thread(target=s.close)
    closer.start()
    closer.join()
    s.close()  # twice is fine
    with pytest.raises(CaptureError, match="read\\(\\) after close\\(\\)"):
        s.read()
