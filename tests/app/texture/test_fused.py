"""The numba path (TextureConfig.kernels='numba': jit.py, fused.py) against the torch reference it replaces:
vertex columns, the depth grid's frame and thresholds, per-view weights (so the visibility semantics carry
over: a texel hidden from a view gets no weight in it), the fill, and whole updates on rendered hands (texture,
confidence, state) with both visibility backends and with one usable view; TextureMaps handed out never change;
without numba the accumulator falls back to the reference."""

import sys

import numpy as np
import pytest
import torch

from app.texture import fused, jit
from app.texture.accumulator import ZNEAR_M, TextureAccumulator, stereo_views
from app.texture.config import TextureConfig
from app.texture.fill import fill_unseen
from app.texture.projection import vertex_columns
from app.texture.visibility import GridFrame, grid_frame, threshold
from app.types import StereoFrame
from calibration.presets import preset_rig
from calibration.rig import make_stereo

torch.set_num_threads(1)


def both(hand_model, **cfg) -> dict:
    """A torch and a numba accumulator with the same config."""
    return {k: TextureAccumulator(TextureConfig(kernels=k, **cfg), hand_model) for k in ("torch", "numba")}


def test_vertex_columns_match_the_reference(hand_model, open_scene):
    mesh, calib = open_scene.mesh, open_scene.frame.calibration
    T, K, sizes = stereo_views(calib)
    faces = torch.from_numpy(mesh.faces.astype(np.int64))
    ref_cols, ref_cam, ref_px = vertex_columns(torch.from_numpy(mesh.verts_m), faces, T, K)
    cams = fused.camera_set(T.numpy(), K.numpy(), sizes.numpy())
    cols, cam, bounds = jit.vertex_columns(mesh.verts_m.astype(np.float32), faces.numpy(), cams.R, cams.t, cams.K)
    np.testing.assert_allclose(cols.reshape(len(mesh.verts_m), -1), ref_cols.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cam, ref_cam.numpy(), atol=1e-6)
    np.testing.assert_allclose(bounds[:, :2], ref_px.amin(dim=1).numpy(), atol=1e-3)
    np.testing.assert_allclose(bounds[:, 2:4], ref_px.amax(dim=1).numpy(), atol=1e-3)
    np.testing.assert_allclose(bounds[:, 4], ref_cam[..., 2].amin(dim=1).numpy(), atol=1e-6)


def test_grid_box_matches_grid_frame():
    rng = np.random.default_rng(0)
    sizes = np.array([[640, 360], [640, 360]])
    for trial in range(20):
        verts_px = rng.uniform([-30, -30], [680, 400], (2, 40, 2)).astype(np.float32) * (0.2 if trial % 2 else 1)
        for cell in (1, 2, 3):
            ref = grid_frame(torch.from_numpy(verts_px), torch.from_numpy(sizes), cell)
            got = fused.grid_box(verts_px.min(axis=1), verts_px.max(axis=1), sizes, cell)
            assert got.shape == ref.shape
            np.testing.assert_array_equal(got.origin, ref.origin.numpy())
            np.testing.assert_array_equal(got.image_cells, ref.image_cells.numpy())


@pytest.mark.parametrize("radius", [1, 2])
def test_depth_thresholds_match_the_reference(radius):
    rng = np.random.default_rng(radius)
    zbuf = rng.uniform(0.3, 0.5, (2, 12, 15)).astype(np.float32)
    zbuf[rng.random(zbuf.shape) < 0.15] = np.inf
    origin, image_cells = np.array([[0, 3], [5, 0]]), np.array([[10, 100], [100, 8]])  # image edges cut both
    frame = GridFrame(torch.from_numpy(origin), (12, 15), 1, torch.from_numpy(image_cells))
    ref = threshold(torch.from_numpy(zbuf.copy()), frame, radius).numpy()
    got = jit.depth_thresholds(zbuf.copy(), np.maximum(0, 1 - origin), np.maximum(0, image_cells - origin), radius)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("visibility", ["splat", "raster"])
def test_view_weights_match_the_reference(hand_model, fist_scene, visibility):
    """The same weight for every slot in every view: the hidden palm texels behind the curled fingers, which
    test_visibility.py checks against exact ray depths for the reference, get none here either."""
    accs = both(hand_model, size=256, visibility=visibility)
    ref = accs["torch"].view_weights(fist_scene.mesh, fist_scene.frame).numpy()
    acc = accs["numba"]
    geo = acc.fused_geometry(fist_scene.mesh, fist_scene.frame)
    thr = fused.depth_grid(acc._topology, geo, visibility, ZNEAR_M)
    got = fused.slot_weights(acc._topology, geo, thr, acc._params)
    assert (ref > 0).sum() > 10000
    np.testing.assert_array_equal(got > 0, ref > 0)
    np.testing.assert_allclose(got, ref, atol=1e-6)


@pytest.mark.parametrize(("size", "visibility"), [(128, "splat"), (512, "splat"), (128, "raster")])
def test_updates_match_the_reference(hand_model, open_scene, fist_scene, size, visibility):
    """Several updates (with fills in between): the same confidence everywhere, the same colours within
    float rounding, the same state."""
    accs = both(hand_model, size=size, visibility=visibility, fill_every=2)
    for scene in (open_scene, fist_scene, open_scene, fist_scene, open_scene):
        maps = {k: acc.update(scene.mesh, scene.frame) for k, acc in accs.items()}
        np.testing.assert_array_equal(maps["numba"].weight, maps["torch"].weight)
        np.testing.assert_allclose(maps["numba"].rgb, maps["torch"].rgb, atol=1e-4)
        assert maps["numba"].n_updates == maps["torch"].n_updates
    ref, got = accs["torch"].state, accs["numba"].state
    np.testing.assert_array_equal(got.count.numpy(), ref.count.numpy())
    np.testing.assert_allclose(got.rgb.numpy(), ref.rgb.numpy(), atol=1e-4)
    np.testing.assert_allclose(got.pi_old.numpy(), ref.pi_old.numpy(), atol=1e-4)
    # Only what the reference's projection writes is written: Phi of one more update.
    before = got.count.clone()
    phi = accs["torch"].project(fist_scene.mesh, fist_scene.frame).phi
    accs["numba"].update(fist_scene.mesh, fist_scene.frame)
    np.testing.assert_array_equal((accs["numba"].state.count - before).numpy(), phi.float().numpy())


def test_one_usable_view_matches_the_reference(hand_model, open_scene):
    """A rig whose right camera looks the other way: every vertex is behind it, only the left view is used."""
    rig = preset_rig("zed-mini", "640x360")
    turned = make_stereo(rig.left.K, np.zeros(5), rig.left.K, np.zeros(5), np.diag([-1.0, 1.0, -1.0]),
                         np.array([-0.063, 0.0, 0.0]), rig.left.size_wh, rectified=True)
    frame = StereoFrame(0, 0, open_scene.frame.left, open_scene.frame.right, turned)
    accs = both(hand_model, size=128)
    maps = {k: acc.update(open_scene.mesh, frame) for k, acc in accs.items()}
    assert maps["torch"].weight.any()
    np.testing.assert_array_equal(maps["numba"].weight, maps["torch"].weight)
    np.testing.assert_allclose(maps["numba"].rgb, maps["torch"].rgb, atol=1e-4)


def test_fill_matches_the_reference(hand_model, open_scene):
    acc = TextureAccumulator(TextureConfig(size=128), hand_model)
    lay, topo = acc.layout, acc._topology
    acc.update(open_scene.mesh, open_scene.frame)
    st = acc.state
    for iterations in (0, 1, 64):
        ref = fill_unseen(lay.interp, lay.interp_t, acc._adjacency, st.rgb, st.count > 0, iterations).numpy()
        got = fused.fill_unseen(topo, st.rgb.numpy(), st.count.numpy(), iterations)
        np.testing.assert_allclose(got, ref, atol=1e-6)
    nothing = fused.fill_unseen(topo, st.rgb.numpy(), np.zeros_like(st.count.numpy()), 64)
    assert not nothing.any()


def test_handed_out_texture_maps_never_change(hand_model, open_scene, fist_scene):
    """The image is updated in place between updates; every TextureMap gets its own copy."""
    acc = TextureAccumulator(TextureConfig(size=128, fill_every=1), hand_model)
    first = acc.update(open_scene.mesh, open_scene.frame)
    kept = (first.rgb.copy(), first.weight.copy())
    for scene in (fist_scene, open_scene):
        later = acc.update(scene.mesh, scene.frame)
    np.testing.assert_array_equal(first.rgb, kept[0])
    np.testing.assert_array_equal(first.weight, kept[1])
    assert later.weight.max() == 2.0 and not np.shares_memory(later.rgb, acc._image)


def test_without_numba_the_reference_runs(hand_model, open_scene, monkeypatch):
    import app.texture

    monkeypatch.setitem(sys.modules, "app.texture.fused", None)  # the import fails as when numba is missing
    monkeypatch.delattr(app.texture, "fused")
    with pytest.warns(UserWarning, match="numba is unavailable"):
        acc = TextureAccumulator(TextureConfig(size=128), hand_model)
    assert acc.kernels_used == "torch"
    assert acc.update(open_scene.mesh, open_scene.frame).weight.any()
    with pytest.raises(ValueError, match="kernels"):
        TextureConfig(kernels="cuda")
