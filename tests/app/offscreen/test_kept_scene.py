"""Kept-scene renderer: the same pixels as the per-call OffscreenRenderer, cameras by extrinsic, and nothing stale
between frames (vertex buffers rewritten, textures replaced, hands hidden)."""

import numpy as np
import pytest

from app.offscreen.kept_scene import HandDraw, KeptSceneRenderer, Patch, RenderTopology, composite_patch
from app.offscreen.renderer import OffscreenRenderer, SceneMesh

W, H = 96, 72
K = np.array([[150.0, 0, 47.5], [0, 150.0, 35.5], [0, 0, 1]])
PLAIN = np.array([0.8, 0.62, 0.52], np.float32)
FACES = np.array([[0, 2, 1], [0, 3, 2]], np.int64)  # facing the camera (-z) in the OpenCV frame
VT = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)


def quad(x_m: float = 0.0, tilt: float = 0.4, half_m: float = 0.05, z_m: float = 0.4) -> np.ndarray:
    """(4, 3) float32 corners of a square turned by ``tilt`` radians about y, centred at (x_m, 0, z_m)."""
    c, s = np.cos(tilt), np.sin(tilt)
    local = np.array([[-half_m, -half_m, 0], [half_m, -half_m, 0], [half_m, half_m, 0], [-half_m, half_m, 0]])
    R = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return (local @ R.T + (x_m, 0.0, z_m)).astype(np.float32)


def texture(colour=(40, 90, 220)) -> np.ndarray:
    """(32, 32, 3) uint8: a colour with a darker left half (so orientation shows)."""
    img = np.tile(np.array(colour, np.uint8), (32, 32, 1))
    img[:, :16] //= 2
    return img


@pytest.fixture(scope="module")
def kept():
    return KeptSceneRenderer(W, H, PLAIN)


@pytest.fixture(scope="module")
def per_call():
    r = OffscreenRenderer(W, H, multisample=False)
    yield r
    r.close()


def composed(patch: Patch, background: np.ndarray) -> np.ndarray:
    out = background.copy()
    composite_patch(out, patch)
    return out


def reference(per_call: OffscreenRenderer, mesh: SceneMesh, background: np.ndarray) -> np.ndarray:
    per_call.render([mesh], K, background)  # the first render of a renderer is multisampled
    return per_call.render([mesh], K, background).rgb


def test_textured_and_plain_quads_match_the_per_call_renderer(kept, per_call):
    bg = np.full((H, W, 3), 30, np.uint8)
    v, tex = quad(), texture()
    topo = RenderTopology.build(FACES, 4, (VT, FACES))
    kept.set_hands([HandDraw("a", topo, v, tex, lambda: tex)])
    ours = composed(kept.render(K), bg)
    ref = reference(per_call, SceneMesh(v, FACES, np.ones((4, 3), np.float32), uv=VT, texture=tex), bg)
    assert (ref != 30).any(axis=2).sum() > 500
    assert np.abs(ours.astype(int) - ref).max() <= 1

    kept.set_hands([HandDraw("a", RenderTopology.build(FACES, 4), v)])
    ours = composed(kept.render(K), bg)
    ref = reference(per_call, SceneMesh(v, FACES, np.repeat(PLAIN[None], 4, 0)), bg)
    assert np.abs(ours.astype(int) - ref).max() <= 1


def test_an_extrinsic_equals_moving_the_mesh_into_the_camera(kept):
    """Orbit views move the GL camera (and the lights with it) instead of the vertices."""
    a, centre = np.deg2rad(35.0), np.array([0.0, 0.0, 0.4])
    T = np.eye(4)
    T[:3, :3] = [[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]
    T[:3, 3] = centre - T[:3, :3] @ centre + (0.01, -0.005, 0.02)  # turned about the quad's centre, moved
    v, tex = quad(tilt=0.0), texture()
    topo = RenderTopology.build(FACES, 4, (VT, FACES))
    bg = np.zeros((H, W, 3), np.uint8)
    kept.set_hands([HandDraw("a", topo, v, tex, lambda: tex)])
    by_camera = composed(kept.render(K, T), bg).astype(int)
    moved = (v @ T[:3, :3].T + T[:3, 3]).astype(np.float32)
    kept.set_hands([HandDraw("a", topo, moved, tex, lambda: tex)])
    by_vertices = composed(kept.render(K), bg).astype(int)
    diff = np.abs(by_camera - by_vertices).max(axis=2)
    assert (by_vertices.max(axis=2) > 0).sum() > 500
    assert (diff > 2).mean() < 0.005


def test_a_second_frame_draws_moved_vertices_and_a_new_texture(kept):
    """No stale buffers: frame 2 of a kept scene is what a fresh renderer draws of frame 2."""
    topo = RenderTopology.build(FACES, 4, (VT, FACES))
    red, green = texture((220, 40, 40)), texture((40, 220, 40))
    bg = np.zeros((H, W, 3), np.uint8)
    kept.set_hands([HandDraw("a", topo, quad(x_m=-0.03), red, lambda: red)])
    first = composed(kept.render(K), bg)
    kept.set_hands([HandDraw("a", topo, quad(x_m=0.03), green, lambda: green)])
    second = composed(kept.render(K), bg)
    fresh = KeptSceneRenderer(W, H, PLAIN)
    fresh.set_hands([HandDraw("a", RenderTopology.build(FACES, 4, (VT, FACES)), quad(x_m=0.03), green,
                              lambda: green)])
    np.testing.assert_array_equal(second, composed(fresh.render(K), bg))
    u_left, u_right = int(K[0, 2] - 0.03 / 0.4 * K[0, 0]), int(K[0, 2] + 0.03 / 0.4 * K[0, 0])
    y = int(K[1, 2])
    assert first[y, u_left, 0] > first[y, u_left, 1]  # red where the quad was
    assert second[y, u_right, 1] > second[y, u_right, 0]  # green where it is now
    assert (second[:, : u_left - 5] == 0).all()  # nothing left behind


def test_textures_are_made_only_when_their_key_changes(kept):
    topo = RenderTopology.build(FACES, 4, (VT, FACES))
    made = []

    def make(name: str):
        def fn():
            made.append(name)
            return texture()
        return fn

    key_a, key_b = object(), object()
    for _ in range(3):
        kept.set_hands([HandDraw("t", topo, quad(), key_a, make("a"))])
        kept.render(K)
    kept.set_hands([HandDraw("t", topo, quad(), key_b, make("b"))])
    assert made == ["a", "b"]


def test_hands_not_given_are_hidden_and_slots_switch_texturing(kept):
    topo_tex, topo_plain = RenderTopology.build(FACES, 4, (VT, FACES)), RenderTopology.build(FACES, 4)
    tex = texture()
    kept.set_hands([HandDraw("l", topo_tex, quad(x_m=-0.03), tex, lambda: tex),
                    HandDraw("r", topo_plain, quad(x_m=0.03))])
    both = kept.render(K)
    assert both.rgba.shape[1] > 40  # the box spans both quads
    kept.set_hands([HandDraw("r", topo_plain, quad(x_m=0.03))])
    one = kept.render(K)
    assert one.x0 > both.x0 and one.rgba.shape[1] < both.rgba.shape[1]
    kept.set_hands([HandDraw("r", topo_tex, quad(x_m=0.03), tex, lambda: tex)])  # plain -> textured
    blue = composed(kept.render(K), np.zeros((H, W, 3), np.uint8))
    u = int(K[0, 2] + 0.04 / 0.4 * K[0, 0])
    assert blue[int(K[1, 2]), u, 2] > blue[int(K[1, 2]), u, 0]
    kept.set_hands([])
    empty = kept.render(K)
    assert empty.rgba.size == 0


def test_vertex_normals_are_area_weighted_on_the_welded_mesh():
    topo = RenderTopology.build(FACES, 4, (VT, FACES))
    n = topo.normals(quad(tilt=0.0))
    np.testing.assert_allclose(n, np.tile([0.0, 0.0, -1.0], (4, 1)), atol=1e-6)  # towards the camera
