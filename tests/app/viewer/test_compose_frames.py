"""The composer across frames: its kept scene never shows a previous frame's vertices or texture, and textures are
converted (and uploaded) only when the TextureMap object changes."""

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from app.geometry.camera import project
from app.types import TextureMap, ViewerSnapshot
from app.viewer import Composer, HudStatus, ViewerInput, ViewSettings
from app.viewer.layout import Orbit, fit_placement

GREY = 100
SPLIT = ViewSettings("split", Orbit(yaw_deg=20.0, distance_m=0.6))


def plain_texture(rgb) -> TextureMap:
    return TextureMap(np.tile(np.asarray(rgb, np.float32), (64, 64, 1)), np.ones((64, 64), np.float32))


def view_of(calib, mesh, texture, uv_layout) -> ViewerInput:
    image = np.full((360, 640, 3), GREY, np.uint8)
    snap = ViewerSnapshot(mesh.frame_id, 0, image, (mesh,), texture, {"render": 3.0})
    return ViewerInput(snap, calib.left.K, (), (), (uv_layout,), (texture,), HudStatus())


def moved(mesh, dx_m: float):
    shift = np.array([dx_m, 0.0, 0.0], np.float32)
    return dataclasses.replace(mesh, frame_id=mesh.frame_id + 1, verts_m=mesh.verts_m + shift,
                               joints_m=mesh.joints_m + shift)


def palm_px(calib, mesh) -> tuple[int, int]:
    """Canvas pixel (x, y) of the palm centre in the camera panel."""
    place = fit_placement((640, 360), (640, 368))
    palm = mesh.joints_m[[0, 9]].mean(0, keepdims=True).astype(np.float64)
    x, y = np.round(place.points(project(palm, calib.left.K))[0]).astype(int)
    return x, y


def compose_in_new_thread(view: ViewerInput, settings: ViewSettings) -> np.ndarray:
    """The frame as a composer with fresh renderers draws it (renderers are per thread)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: Composer((640, 360), 640, 0.8).compose(view, settings)).result()


def test_a_second_frame_with_moved_vertices_and_a_new_texture_renders_them(calib, hand_mesh, uv_layout):
    composer = Composer((640, 360), 640, 0.8)
    first = view_of(calib, hand_mesh, plain_texture((0.1, 0.2, 0.9)), uv_layout)
    second = view_of(calib, moved(hand_mesh, 0.06), plain_texture((0.9, 0.15, 0.1)), uv_layout)
    a = composer.compose(first, SPLIT)
    b = composer.compose(second, SPLIT)
    np.testing.assert_array_equal(b, compose_in_new_thread(second, SPLIT))
    x0, y0 = palm_px(calib, hand_mesh)
    x1, y1 = palm_px(calib, second.snapshot.meshes[0])
    assert a[y0, x0, 2] > a[y0, x0, 0] + 40  # frame 1: blue hand here
    assert b[y1, x1, 0] > b[y1, x1, 2] + 40  # frame 2: red hand, moved
    assert (b[y0, x0] == GREY).all()  # and nothing of frame 1 left where the hand was
    right = b[60:, 640:].astype(int)
    assert ((right[..., 0] - right[..., 2]) > 40).mean() > 0.03  # the orbit panel shows the red hand too


def test_textures_are_converted_only_when_the_texture_map_changes(calib, hand_mesh, uv_layout, monkeypatch):
    import app.viewer.compose as compose

    calls = []
    original = compose.texture_rgb8
    monkeypatch.setattr(compose, "texture_rgb8", lambda t: calls.append(t) or original(t))
    composer = Composer((640, 360), 640, 0.8)
    same = plain_texture((0.3, 0.6, 0.3))
    for i in range(3):
        composer.compose(view_of(calib, moved(hand_mesh, 0.01 * i), same, uv_layout), SPLIT)
    assert calls == [same]  # one conversion (and upload) for both panels and three frames
    other = plain_texture((0.3, 0.6, 0.3))  # equal content, a new object: a new texture
    composer.compose(view_of(calib, hand_mesh, other, uv_layout), SPLIT)
    assert calls == [same, other]


def test_a_hand_leaving_the_view_leaves_no_trace(calib, hand_mesh, uv_layout):
    composer = Composer((640, 360), 640, 0.8)
    composer.compose(view_of(calib, hand_mesh, plain_texture((0.1, 0.2, 0.9)), uv_layout), SPLIT)
    empty = ViewerInput(ViewerSnapshot(9, 0, np.full((360, 640, 3), GREY, np.uint8)), calib.left.K)
    out = composer.compose(empty, SPLIT)
    assert (out[60:360, :640] == GREY).all()  # the image, below the HUD and above the letterbox bar


def test_topologies_are_shared_by_equal_layouts(hand_mesh, uv_layout):
    from app.viewer.compose import TopologyCache

    cache = TopologyCache()
    a = cache.get(hand_mesh.faces, len(hand_mesh.verts_m), uv_layout)
    assert cache.get(hand_mesh.faces, len(hand_mesh.verts_m), uv_layout) is a
    copies = (uv_layout[0].copy(), uv_layout[1].copy())
    assert cache.get(hand_mesh.faces.copy(), len(hand_mesh.verts_m), copies) is a
    assert cache.get(hand_mesh.faces, len(hand_mesh.verts_m), None) is not a


def test_the_orbit_extrinsic_is_the_orbit_view_map():
    from app.viewer.compose import orbit_extrinsic

    orbit, target = Orbit(yaw_deg=-35.0, pitch_deg=20.0, distance_m=0.5), np.array([0.05, -0.02, 0.4])
    pts = np.random.default_rng(0).normal(0.0, 0.1, (20, 3)) + target
    T = orbit_extrinsic(orbit, target)
    np.testing.assert_allclose(pts @ T[:3, :3].T + T[:3, 3], orbit.to_view(pts, target), atol=1e-6)
