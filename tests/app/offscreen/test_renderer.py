"""Offscreen renderer: projection convention against the pinhole model, supersampling, linear albedo."""

import numpy as np
import pytest

from app.geometry.camera import project
from app.offscreen.renderer import OffscreenRenderer, SceneMesh, srgb_to_linear


def _square(z_m: float = 0.5, half_m: float = 0.05) -> SceneMesh:
    v = np.array([[-half_m, -half_m, z_m], [half_m, -half_m, z_m], [half_m, half_m, z_m], [-half_m, half_m, z_m]],
                 np.float32)
    f = np.array([[0, 2, 1], [0, 3, 2]], np.int64)  # facing the camera (-z) in the OpenCV frame
    return SceneMesh(v, f, np.full((4, 3), 0.8, np.float32), np.zeros(2, np.int64))


@pytest.fixture(scope="module", params=[1, 2])
def renderer(request):
    r = OffscreenRenderer(64, 48, supersample=request.param)
    yield r
    r.close()


def test_square_lands_where_the_pinhole_model_puts_it(renderer):
    K = np.array([[200.0, 0, 31.5], [0, 200.0, 23.5], [0, 0, 1]])
    m = _square()
    view = renderer.render([m], K, with_parts=True)
    corners = project(m.verts_m.astype(np.float64), K)  # x in [11.5, 51.5], y in [3.5, 43.5]
    lo, hi = np.ceil(corners.min(0)).astype(int), np.floor(corners.max(0)).astype(int)
    mask = view.parts >= 0
    assert mask[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1].all()
    assert mask.sum() == (hi - lo + 1).prod()
    np.testing.assert_allclose(view.depth_m[mask], 0.5, atol=1e-4)


def test_supersampled_edges_blend_with_background():
    K = np.array([[200.0, 0, 31.25], [0, 200.0, 23.25], [0, 0, 1]])  # edges fall mid-pixel
    bg = np.zeros((48, 64, 3), np.uint8)
    r1, r2 = OffscreenRenderer(64, 48, 1), OffscreenRenderer(64, 48, 2)
    a = r1.render([_square()], K, bg, ambient=1.0, light_intensity=np.zeros(1)).rgb
    b = r2.render([_square()], K, bg, ambient=1.0, light_intensity=np.zeros(1)).rgb
    r1.close(), r2.close()
    assert abs(int(a[24, 32, 0]) - int(b[24, 32, 0])) <= 1  # interiors agree
    for img in (a, b):  # edge pixels carry partial coverage: the summed coverage is the square's 40 x 40 px
        coverage = img[..., 0].astype(float).sum() / float(img[24, 32, 0])
        assert coverage == pytest.approx(1600, rel=0.02)


def test_srgb_to_linear_matches_the_standard():
    np.testing.assert_allclose(srgb_to_linear(np.array([0.0, 0.04045, 0.5, 1.0])),
                               [0.0, 0.04045 / 12.92, 0.21404, 1.0], atol=1e-5)


def test_light_travelling_away_from_the_camera_lights_the_visible_side():
    K = np.array([[200.0, 0, 31.5], [0, 200.0, 23.5], [0, 0, 1]])
    r = OffscreenRenderer(64, 48)
    bg = np.zeros((48, 64, 3), np.uint8)
    lit = r.render([_square()], K, bg, light_dirs_cam=np.array([[0.0, 0.0, 1.0]]), light_intensity=np.array([3.0]),
                   ambient=0.0).rgb
    back = r.render([_square()], K, bg, light_dirs_cam=np.array([[0.0, 0.0, -1.0]]),
                    light_intensity=np.array([3.0]), ambient=0.0).rgb
    r.close()
    assert lit[24, 32].mean() > 100 > 10 > back[24, 32].mean()


def test_scenes_walk_nodes_in_insertion_order():
    """pyrender iterates sets of nodes (order = object ids); draw order decides depth ties and the order lights
    are summed, so identical scenes must list their nodes in the order they were added."""
    import pyrender
    import trimesh

    from app.offscreen.renderer import _ordered_pyrender

    pr = _ordered_pyrender(pyrender)
    scene = pr.Scene()
    box = pr.Mesh.from_trimesh(trimesh.creation.box())
    meshes = [scene.add(box) for _ in range(30)]
    lights = [scene.add(pr.DirectionalLight(intensity=float(k))) for k in range(1, 6)]
    assert scene.mesh_nodes == meshes
    assert scene.directional_light_nodes == lights and scene.light_nodes == lights
