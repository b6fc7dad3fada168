import numpy as np
import pytest

from app.geometry.camera import project
from app.types import TextureMap, ViewerSnapshot
from app.viewer import Composer, HudStatus, ViewerInput, ViewSettings
from app.viewer.layout import Orbit, fit_placement

GREY = 100


def view_of(calib, meshes=(), texture=None, keypoints_px=(), keypoints_cam_m=(), uv=(), status=None):
    image = np.full((360, 640, 3), GREY, np.uint8)
    snap = ViewerSnapshot(4, 123, image, tuple(meshes), texture, {"detection": 12.0, "render": 3.0})
    textures = (texture,) * len(meshes)
    return ViewerInput(snap, calib.left.K, tuple(keypoints_px), tuple(keypoints_cam_m), tuple(uv), textures,
                       status or HudStatus())


@pytest.fixture(scope="module")
def composer():
    c = Composer((640, 360), 640, overlay_alpha=1.0)
    yield c
    c.close()


def hand_pixel(calib, mesh):
    """Panel pixel (x, y) of the palm centre (mean of the wrist and middle MCP keypoints)."""
    place = fit_placement((640, 360), (640, 368))
    palm = mesh.joints_m[[0, 9]].mean(0, keepdims=True).astype(np.float64)
    x, y = np.round(place.points(project(palm, calib.left.K))[0]).astype(int)
    return x, y


def test_mesh_is_drawn_over_the_camera_image_where_it_projects(composer, calib, hand_mesh):
    out = composer.compose(view_of(calib, [hand_mesh]), ViewSettings("split"))
    assert out.shape == (368, 1280, 3)
    x, y = hand_pixel(calib, hand_mesh)
    assert np.abs(out[y, x].astype(int) - GREY).max() > 20  # the hand is there
    assert (out[300, 20] == GREY).all() and (out[300, 620] == GREY).all()  # the image elsewhere is untouched
    right = out[60:, 640:]
    assert (np.abs(right.astype(int) - 48).max(axis=2) > 20).mean() > 0.05  # the 3D view shows the mesh


def test_texture_colours_the_mesh(composer, calib, hand_mesh, uv_layout):
    blue = TextureMap(np.tile(np.array([0.1, 0.2, 0.9], np.float32), (64, 64, 1)), np.ones((64, 64), np.float32))
    out = composer.compose(view_of(calib, [hand_mesh], blue, uv=[uv_layout]), ViewSettings("camera"))
    plain = composer.compose(view_of(calib, [hand_mesh]), ViewSettings("camera"))
    place = fit_placement((640, 360), composer.canvas_wh)
    palm = hand_mesh.joints_m[[0, 9]].mean(0, keepdims=True).astype(np.float64)
    x, y = np.round(place.points(project(palm, calib.left.K))[0]).astype(int)
    r, g, b = out[y, x].astype(int)
    assert b > r + 40 and b > g  # blue texture
    assert plain[y, x, 0] > plain[y, x, 2]  # untextured: skin tone


def test_keypoints_are_drawn_in_both_panels_without_a_mesh(composer, calib, hand_mesh):
    kps_px = project(hand_mesh.joints_m.astype(np.float64), calib.left.K).astype(np.float32)
    out = composer.compose(view_of(calib, keypoints_px=[kps_px], keypoints_cam_m=[hand_mesh.joints_m]),
                           ViewSettings("split"))
    left, right = out[60:, :640].astype(int), out[60:, 640:].astype(int)
    assert (np.abs(left - GREY).max(axis=2) > 50).sum() > 200
    assert (np.abs(right - 48).max(axis=2) > 50).sum() > 200


def test_orbit_changes_the_3d_view(composer, calib, hand_mesh):
    a = composer.compose(view_of(calib, [hand_mesh]), ViewSettings("3d"))
    b = composer.compose(view_of(calib, [hand_mesh]), ViewSettings("3d", Orbit(yaw_deg=80.0, distance_m=0.6)))
    assert a.shape == b.shape == (368, 1280, 3)
    assert np.abs(a[60:].astype(int) - b[60:].astype(int)).mean() > 2


def test_hud_shows_recording_and_darkens_the_top_band(composer, calib):
    status = HudStatus(fps=12.0, hands_seen=1, recording=True, recorded_frames=5, notes=("texture: missing",))
    out = composer.compose(view_of(calib, status=status), ViewSettings("camera"))
    assert out[2, 2].max() < GREY  # dark band behind the text
    assert tuple(out[14, 1280 - 16]) == pytest.approx((230, 30, 30), abs=30)  # the red recording dot
    band = out[:80, :400].astype(int)
    assert (band.max(axis=2) > 200).sum() > 100  # text pixels


def test_composite_patch_mixes_only_where_the_render_covered():
    from app.offscreen.kept_scene import Patch, composite_patch

    panel = np.full((6, 6, 3), 100, np.uint8)
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[1, 2] = (200, 0, 100, 255)  # drawn, fully covered
    rgba[0, 0] = (60, 60, 60, 128)  # an antialiased edge: colour premultiplied by coverage
    composite_patch(panel, Patch(rgba, 2, 3), 0.75)
    assert tuple(panel[4, 4]) == (175, 25, 100)  # 0.25 * 100 + 0.75 * 200 ...
    assert tuple(panel[3, 2]) == (int(0.25 * 100 + 0.75 * 110 + 0.5),) * 3  # over = 60 + 100 (1 - 128 / 255)
    untouched = np.ones((6, 6), bool)
    untouched[4, 4] = untouched[3, 2] = False
    assert (panel[untouched] == 100).all()
    full = np.full((6, 6, 3), 100, np.uint8)
    composite_patch(full, Patch(rgba, 2, 3))
    assert tuple(full[4, 4]) == (200, 0, 100)
