"""Projection: texel positions against a direct numpy projection of their surface points, bilinear sampling
against a slow reference, view fusion, and a rendered hand whose known skin comes back where it belongs."""

import numpy as np
import pytest
import torch

from app.texture.accumulator import TextureAccumulator, stereo_views
from app.texture.config import TextureConfig
from app.texture.layout import from_image, layout_for_model
from app.texture.projection import fuse_views, sample_views, texel_pixels, vertex_columns, vertex_normals

torch.set_num_threads(1)


def test_texel_pixels_match_projected_surface_points(hand_model, open_scene):
    layout = layout_for_model(hand_model, 128)
    T, K, _ = stereo_views(open_scene.frame.calibration)
    verts = torch.from_numpy(open_scene.mesh.verts_m)
    cols, _, _ = vertex_columns(verts, torch.from_numpy(layout.faces), T, K)
    x, y, z, _ = texel_pixels(torch.sparse.mm(layout.interp, cols), 2)
    # Reference: the texel's 3D point from its face and barycentrics (texel_geometry), through P = K [R | t].
    from models.hand_model.uv import texel_geometry

    geom = texel_geometry(layout.vt, layout.ft, 128)
    fid = geom.face_id.ravel()[layout.index]
    bary = geom.bary.reshape(-1, 3)[layout.index].astype(np.float64)
    points = np.einsum("nk,nkc->nc", bary, open_scene.mesh.verts_m.astype(np.float64)[layout.faces[fid]])
    for b, view in enumerate((open_scene.frame.calibration.left, open_scene.frame.calibration.right)):
        p = np.concatenate([points, np.ones((len(points), 1))], 1) @ view.P.T
        np.testing.assert_allclose(x[b].numpy(), p[:, 0] / p[:, 2], atol=2e-3)
        np.testing.assert_allclose(y[b].numpy(), p[:, 1] / p[:, 2], atol=2e-3)
        np.testing.assert_allclose(z[b].numpy(), p[:, 2], atol=1e-6)


def test_vertex_normals_point_outwards(hand_model):
    verts = hand_model.mano.v_template.detach()
    normals = vertex_normals(verts, hand_model.faces)
    outward = ((verts - verts.mean(0)) * normals).sum(1)
    assert (outward > 0).float().mean() > 0.8  # a closed-ish blob: most normals point away from the middle
    np.testing.assert_allclose(normals.norm(dim=1).numpy(), 1.0, atol=1e-5)


def bilinear_reference(image: np.ndarray, x: float, y: float) -> np.ndarray:
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    ax, ay = x - x0, y - y0
    p = image.astype(np.float64)
    top = p[y0, x0] * (1 - ax) + p[y0, min(x0 + 1, image.shape[1] - 1)] * ax
    bot = p[min(y0 + 1, image.shape[0] - 1), x0] * (1 - ax) + p[min(y0 + 1, image.shape[0] - 1),
                                                               min(x0 + 1, image.shape[1] - 1)] * ax
    return (top * (1 - ay) + bot * ay) / 255.0


def test_sample_views_is_bilinear_between_pixel_centres():
    rng = np.random.default_rng(0)
    images = tuple(torch.from_numpy(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)) for _ in range(2))
    x = torch.from_numpy(rng.uniform(5, 50, (2, 200)).astype(np.float32))
    y = torch.from_numpy(rng.uniform(3, 30, (2, 200)).astype(np.float32))
    x[:, 0], y[:, 0] = 7.0, 9.0  # exactly on a pixel centre
    verts_px = torch.tensor([[[4.0, 2.0], [52.0, 33.0]], [[6.0, 1.0], [55.0, 31.0]]])
    got = sample_views(images, x, y, verts_px).numpy()
    for b in range(2):
        ref = np.stack([bilinear_reference(images[b].numpy(), x[b, i].item(), y[b, i].item()) for i in range(200)])
        np.testing.assert_allclose(got[b].T, ref, atol=1e-5)
    np.testing.assert_allclose(got[0][:, 0], images[0].numpy()[9, 7] / 255.0, atol=1e-6)


def test_fuse_views_weighted_mean():
    colours = torch.tensor([[[0.2, 0.5, 0.9]], [[0.6, 0.1, 0.9]]]).permute(0, 2, 1)  # (2, 3, 1)
    pi, total = fuse_views(colours, torch.tensor([[1.0], [3.0]]))
    np.testing.assert_allclose(pi.numpy(), [[0.5], [0.2], [0.9]], atol=1e-6)  # (3, N) channels first
    assert total.item() == 4.0
    pi, total = fuse_views(colours, torch.zeros(2, 1))
    assert total.item() == 0.0 and float(pi.abs().max()) == 0.0


@pytest.mark.parametrize("backend", ["splat", "raster"])
def test_rendered_skin_comes_back_in_its_texels(hand_model, open_scene, backend):
    """One stereo frame of a hand wearing a known skin (ambient light: the images show the albedo): the
    projection puts the right colours in the right texels (a flipped or shifted UV mapping scores ~15 dB)."""
    acc = TextureAccumulator(TextureConfig(size=open_scene.skin.shape[0], compile=False, visibility=backend),
                             hand_model)
    proj = acc.project(open_scene.mesh, open_scene.frame)
    phi = proj.phi.numpy()
    assert phi.mean() > 0.25
    truth = from_image(acc.layout, open_scene.skin).astype(np.float64) / 255.0
    err = proj.pi.numpy()[phi] - truth[phi]
    psnr = -10 * np.log10(np.mean(err ** 2))
    assert psnr > 30.0
    flipped = from_image(acc.layout, open_scene.skin[::-1]).astype(np.float64) / 255.0
    assert -10 * np.log10(np.mean((proj.pi.numpy()[phi] - flipped[phi]) ** 2)) < psnr - 8.0


def test_vertex_normals_with_the_incidence_matrix_match(hand_model):
    from app.texture.projection import vertex_face_incidence

    verts = hand_model.mano.v_template.detach()
    inc = vertex_face_incidence(hand_model.faces.numpy(), len(verts))
    np.testing.assert_allclose(vertex_normals(verts, hand_model.faces, inc).numpy(),
                               vertex_normals(verts, hand_model.faces).numpy(), atol=1e-6)


def test_fuse_views_drops_slots_whose_views_disagree():
    # Per view, the RGB of slot 0 (both views agree), slot 1 (they see different things: a misplaced mesh) and
    # slot 2 (only the right view sees it).
    left = [[0.80, 0.60, 0.50], [0.80, 0.60, 0.50], [0.0, 0.0, 0.0]]
    right = [[0.82, 0.61, 0.50], [0.30, 0.30, 0.20], [0.10, 0.10, 0.10]]
    colours = torch.tensor([left, right]).permute(0, 2, 1)  # (views, channels, slots)
    weights = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    pi, total = fuse_views(colours, weights, 0.12)
    assert total.tolist() == [2.0, 0.0, 1.0]
    np.testing.assert_allclose(pi[:, 0].numpy(), [0.81, 0.605, 0.5], atol=1e-6)
    np.testing.assert_allclose(pi[:, 2].numpy(), [0.1, 0.1, 0.1], atol=1e-6)
