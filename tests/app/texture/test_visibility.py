"""Visibility: the depth grid and test on small arrays, and on a hand against the hard rasterizer's exact
per-pixel z-buffer (a texel hidden behind the curled fingers is never sampled from a view that cannot see it)."""

import math

import numpy as np
import pytest
import torch

from app.render.hard_raster import HardRasterConfig, hard_rasterize
from app.texture.accumulator import TextureAccumulator, stereo_views
from app.texture.config import TextureConfig
from app.texture.projection import texel_pixels, vertex_columns
from app.texture.visibility import (
    GridFrame,
    auto_cell_px,
    cell_index,
    grazing_weight,
    grid_frame,
    splat_zbuffer,
    threshold,
    view_weights,
)

torch.set_num_threads(1)


def test_grazing_weight_ramp():
    cos = torch.tensor([-1.0, 0.0, 0.2, 0.6, 1.0])
    np.testing.assert_allclose(grazing_weight(cos, 0.2).numpy(), [0, 0, 0, 0.5, 1.0], atol=1e-6)


def test_auto_cell_grows_with_projected_texel_spacing():
    assert auto_cell_px(0.0005, 350.0, 0.4) == 1
    assert auto_cell_px(0.0005, 700.0, 0.2) == 3  # 1.25 * 1.75 px


def small_frame(gh=6, gw=7, image_cells=(100, 100)) -> GridFrame:
    return GridFrame(torch.tensor([[10, 20]]), (gh, gw), 1, torch.tensor([image_cells]))


def test_cell_index_and_splat_zbuffer_take_the_nearest():
    frame = small_frame()
    x = torch.tensor([[12.2, 12.4, 13.6, 9.0]])
    y = torch.tensor([[22.1, 21.6, 22.0, 40.0]])
    flat = cell_index(x, y, *frame.index_args())
    # (12.2, 22.1) and (12.4, 21.6) share cell (12, 22) -> grid (2, 2); (13.6, 22.0) -> cell (14, 22) -> (4, 2);
    # off-grid points are clamped onto the border.
    assert flat[0, :3].tolist() == [2 * 7 + 2, 2 * 7 + 2, 2 * 7 + 4]
    assert flat[0, 3].item() == 5 * 7 + 0
    zbuf = splat_zbuffer(flat, torch.tensor([[0.5, 0.4, 0.7, 0.9]]), frame)
    assert zbuf[0, 2, 2].item() == pytest.approx(0.4) and zbuf[0, 2, 4].item() == pytest.approx(0.7)
    assert math.isinf(zbuf[0, 0, 0].item())


def test_threshold_is_the_neighbourhood_minimum_and_fails_near_empty_cells():
    frame = small_frame(9, 9)
    zbuf = torch.full((1, 9, 9), math.inf)
    zbuf[0, 1:8, 1:8] = 0.5
    zbuf[0, 4, 5] = 0.3  # an occluder in the middle
    thr = threshold(zbuf.clone(), frame, 1)
    assert thr[0, 4, 4].item() == pytest.approx(0.3)  # its neighbour sees the occluder's depth
    assert thr[0, 4, 2].item() == pytest.approx(0.5)
    assert thr[0, 1, 4].item() == -math.inf  # next to an empty cell: the silhouette
    assert thr[0, 2, 4].item() == pytest.approx(0.5)
    assert threshold(zbuf.clone(), frame, 2)[0, 2, 4].item() == -math.inf  # two cells from empty
    outside = threshold(zbuf.clone(), small_frame(9, 9, image_cells=(14, 100)), 1)
    assert outside[0, 4, 2].item() == pytest.approx(0.5) and outside[0, 4, 3].item() == -math.inf  # image edge


def test_view_weights_depth_test_and_slope():
    thr = torch.tensor([0.50])
    flat = torch.zeros(1, 3, dtype=torch.long)
    z = torch.tensor([[0.502, 0.520, 0.502]])
    cos = torch.tensor([[1.0, 1.0, 0.1]])
    consts = (torch.tensor(0.2), torch.tensor(0.003), torch.tensor(1.5))
    w = view_weights(thr, flat, z, cos, torch.tensor([[0.0]]), *consts)
    assert w[0, 0].item() == pytest.approx(1.0)  # 2 mm behind: within tolerance, face-on
    assert w[0, 1].item() == 0.0  # 20 mm behind: occluded
    assert w[0, 2].item() == 0.0  # grazing
    slope = torch.tensor([[0.01]])  # 1.5 cells x (z / f) per metre of depth
    one = flat[:, :1]
    # 45 degrees (tan 1): allowed 3 mm + 0.51 * 0.01 * 1 = 8.1 mm behind.
    cos45 = torch.tensor([[2 ** -0.5]])
    assert view_weights(thr, one, torch.tensor([[0.5075]]), cos45, slope, *consts).item() > 0
    assert view_weights(thr, one, torch.tensor([[0.5095]]), cos45, slope, *consts).item() == 0
    # Steeper than the cap (tan 3 > 1.5): allowed 3 mm + 0.51 * 0.01 * 1.5 = 10.7 mm, not 18 mm.
    steep = torch.tensor([[10 ** -0.5]])
    assert view_weights(thr, one, torch.tensor([[0.5105]]), steep, slope, *consts).item() > 0
    assert view_weights(thr, one, torch.tensor([[0.512]]), steep, slope, *consts).item() == 0


def ray_depth_behind(acc, mesh, frame, view: int, up: int = 4):
    """(N,) metres each texel lies behind the nearest surface along its own camera ray (0 = it is that
    surface), from the hard rasterizer's exact z-buffer at up x the view's resolution around the hand, and the
    texels' view cosines (N,)."""
    T, K, _ = stereo_views(frame.calibration)
    faces = torch.from_numpy(acc.layout.faces)
    cols, verts_cam, verts_px = vertex_columns(torch.from_numpy(mesh.verts_m), faces, T, K)
    x, y, z, cos = (t[view].numpy() for t in texel_pixels(torch.sparse.mm(acc.layout.interp, cols), 2))
    lo = verts_px[view].amin(0).floor() - 2
    size = ((verts_px[view].amax(0).ceil() + 2 - lo + 1) * up).long()
    # Fine pixel (i, j) has its centre at coarse (lo + (i - (up - 1) / 2) / up): K_fine = A K with a shift.
    A = torch.tensor([[up, 0, (up - 1) / 2 - up * lo[0]], [0, up, (up - 1) / 2 - up * lo[1]], [0, 0, 1.0]])
    cfg = HardRasterConfig(image_size=(int(size[1]), int(size[0])))
    depth = hard_rasterize(verts_cam[view][None], faces, A @ K[view], cfg).depth_m[0].numpy()
    col = np.clip(np.round((x - lo[0].item()) * up + (up - 1) / 2).astype(int), 0, depth.shape[1] - 1)
    row = np.clip(np.round((y - lo[1].item()) * up + (up - 1) / 2).astype(int), 0, depth.shape[0] - 1)
    return z - depth[row, col], cos


@pytest.mark.parametrize("backend", ["splat", "raster"])
def test_texels_behind_the_curled_fingers_are_never_sampled(hand_model, fist_scene, backend):
    """Palm texels hidden behind the fingers (more than 5 mm behind the first surface along their ray, so not
    the surface the pixel shows) get no weight in that view, and are not written when both views miss them."""
    acc = TextureAccumulator(TextureConfig(size=256, compile=False, visibility=backend), hand_model)
    weights = acc.view_weights(fist_scene.mesh, fist_scene.frame).numpy()
    proj = acc.project(fist_scene.mesh, fist_scene.frame)
    hidden_both = np.ones(acc.layout.n_slots, bool)
    for view in (0, 1):
        behind, cos = ray_depth_behind(acc, fist_scene.mesh, fist_scene.frame, view)
        hidden = (behind > 0.005) & (cos > acc.cfg.cos_min)  # facing the view, yet behind another surface
        assert hidden.sum() > 1000  # the pose hides plenty of front-facing surface: the test means something
        assert not np.any(weights[view][hidden] > 0)
        visible = (behind < 0.001) & (cos > acc.cfg.cos_min)
        assert (weights[view][visible] > 0).mean() > 0.6  # and most of what the view shows is sampled
        hidden_both &= hidden
    assert hidden_both.sum() > 500 and not proj.phi.numpy()[hidden_both].any()


def test_splat_grid_agrees_with_the_raster_grid(hand_model, fist_scene):
    """The fast splat grid sees a subset of what the exact raster grid sees (it keeps a wider margin from
    the silhouette), and most of it."""
    seen = []
    for backend in ("splat", "raster"):
        acc = TextureAccumulator(TextureConfig(size=256, compile=False, visibility=backend), hand_model)
        seen.append(acc.view_weights(fist_scene.mesh, fist_scene.frame).numpy() > 0)
    splat, raster = seen
    print(f"splat {splat.sum()} raster {raster.sum()} both {(splat & raster).sum()}")
    assert (splat & raster).sum() > 0.98 * splat.sum()
    assert splat.sum() > 0.65 * raster.sum()


def test_grid_frame_clips_to_the_image():
    verts_px = torch.tensor([[[-50.0, 10.0], [30.0, 700.0]]])
    frame = grid_frame(verts_px, torch.tensor([[640, 360]]), 2)
    assert frame.origin[0].tolist() == [0, 4]
    assert frame.image_cells[0].tolist() == [319, 179]
    assert frame.shape == (179 - 4 + 1, 16 - 0 + 1)


def test_box_max_against_max_pool():
    from app.texture.visibility import _box_max

    grid = torch.rand(2, 9, 13)
    for r in (1, 2):
        ref = torch.nn.functional.max_pool2d(grid[:, None], 2 * r + 1, stride=1, padding=r)[:, 0]
        np.testing.assert_array_equal(_box_max(grid, r).numpy(), ref.numpy())
