"""Soft silhouette renderer (both CPU backends: the fused numba kernels and the per-pair torch kernels) against a
slow dense (pixels x faces) reference."""

from __future__ import annotations

import os

import pytest
import torch
import trimesh

from app.render import (
    NumbaSilhouetteRenderer,
    PairLimitError,
    SoftRasterConfig,
    SoftSilhouetteRenderer,
    build_soft_silhouette_renderer,
)

torch.set_num_threads(1)
F64 = torch.float64


def dense_reference(verts_cam_m, faces, K, cfg: SoftRasterConfig, truncate: bool = True):
    """Straightforward SoftRas silhouette over every pixel x face pair (slow; small images only).

    verts_cam_m: (B, V, 3); faces: (F, 3) int64; K: (B, 3, 3). Returns (B, H, W).
    truncate: leave out faces at d^2 >= r^2 outside a pixel, as the renderer does.
    """
    height, width = cfg.image_size
    z = verts_cam_m[..., 2]
    in_front = z > cfg.znear_m
    z = torch.where(in_front, z, torch.ones_like(z))
    xn, yn = verts_cam_m[..., 0] / z, verts_cam_m[..., 1] / z
    u = K[:, 0, 0, None] * xn + K[:, 0, 1, None] * yn + K[:, 0, 2, None]
    v = K[:, 1, 1, None] * yn + K[:, 1, 2, None]
    uv = torch.stack((u, v), -1)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    p = torch.stack((xs, ys), -1).reshape(-1, 2).to(verts_cam_m.dtype)
    a = uv[:, faces]  # (B, F, 3, 2)
    e = torch.roll(a, -1, dims=2) - a
    pa = p[None, :, None, None, :] - a[:, None]  # (B, HW, F, 3, 2)
    ee = e[:, None]
    len2 = (ee * ee).sum(-1)
    t = ((pa * ee).sum(-1) / len2.clamp(min=1e-30)).clamp(0.0, 1.0)
    d2 = ((pa - t[..., None] * ee) ** 2).sum(-1).amin(-1)  # (B, HW, F)
    cross = ee[..., 0] * pa[..., 1] - ee[..., 1] * pa[..., 0]
    inside = (cross > 0).all(-1) | (cross < 0).all(-1)
    D = torch.sigmoid(torch.where(inside, d2, -d2) / cfg.sigma_px2)
    if truncate:
        D = torch.where(inside | (d2 < cfg.blur_radius2_px2), D, torch.zeros_like(D))
    D = D * in_front[:, faces].all(-1)[:, None, :]
    return (1.0 - torch.prod(1.0 - D, dim=-1)).reshape(-1, height, width)


BACKENDS = ["numba", "torch"]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Every test taking `backend` runs once per CPU backend."""
    return request.param


def renderer(size=(24, 32), backend="numba", **kw):
    return build_soft_silhouette_renderer(SoftRasterConfig(image_size=size, compile=False, backend=backend, **kw))


def intrinsics(n_views, f_px, size, dtype=F64):
    """(B, 3, 3) pinhole K, principal point at the image centre, view b with focal f_px * (1 + 0.1 b)."""
    height, width = size
    K = torch.zeros(n_views, 3, 3, dtype=dtype)
    for b in range(n_views):
        K[b] = torch.tensor([[f_px * (1 + 0.1 * b), 0.0, (width - 1) / 2], [0.0, f_px, (height - 1) / 2],
                             [0.0, 0.0, 1.0]], dtype=dtype)
    return K


def random_mesh(seed, n_views=2, n_verts=12, n_faces=10):
    g = torch.Generator().manual_seed(seed)
    verts = torch.randn(n_views, n_verts, 3, generator=g, dtype=F64) * 0.05
    verts[..., 2] += 0.4
    faces = torch.stack([torch.randperm(n_verts, generator=g)[:3] for _ in range(n_faces)])
    return verts, faces


def sphere(subdivisions=2, radius_m=0.08, n_views=2):
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions)
    verts = torch.as_tensor(mesh.vertices, dtype=F64) * radius_m
    offsets = torch.tensor([[0.0, 0.0, 0.4], [0.01, -0.005, 0.45]], dtype=F64)[:n_views]
    return verts[None] + offsets[:, None], torch.as_tensor(mesh.faces, dtype=torch.int64)


def values_and_grads(render_fn, verts, faces, K, weights):
    v = verts.clone().requires_grad_(True)
    sil = render_fn(v, faces, K)
    (sil * weights).sum().backward()
    return sil.detach(), v.grad


def assert_matches_reference(verts, faces, K, size, backend, **kw):
    render = renderer(size, backend, **kw)
    cfg = render.cfg
    weights = torch.randn(verts.shape[0], *size, generator=torch.Generator().manual_seed(0), dtype=verts.dtype)
    sil, grad = values_and_grads(render, verts, faces, K, weights)
    ref, ref_grad = values_and_grads(lambda v, f, k: dense_reference(v, f, k, cfg), verts, faces, K, weights)
    torch.testing.assert_close(sil, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(grad, ref_grad, atol=1e-6 * float(ref_grad.abs().max()), rtol=1e-6)
    return sil


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_meshes_match_dense_reference(seed, backend):
    verts, faces = random_mesh(seed)
    size = (24, 32)
    sil = assert_matches_reference(verts, faces, intrinsics(2, 40.0, size), size, backend)
    assert 0.0 < float(sil.max()) <= 1.0


def test_sphere_matches_dense_reference(backend):
    verts, faces = sphere()
    size = (40, 36)
    sil = assert_matches_reference(verts, faces, intrinsics(2, 60.0, size), size, backend)
    assert float(sil.max()) > 0.99 and float(sil.min()) == 0.0


def test_larger_sigma_and_skewed_K_match_dense_reference(backend):
    verts, faces = random_mesh(5, n_faces=6)
    size = (20, 22)
    K = intrinsics(2, 30.0, size)
    K[:, 0, 1] = 1.5  # skew
    assert_matches_reference(verts, faces, K, size, backend, sigma_px2=1.0, eps=1e-3)


def test_float32_close_to_float64_reference(backend):
    verts, faces = sphere()
    size = (40, 36)
    K = intrinsics(2, 60.0, size)
    render = renderer(size, backend)
    sil = render(verts.float(), faces, K.float())
    assert sil.dtype == torch.float32
    ref = dense_reference(verts, faces, K, render.cfg)
    torch.testing.assert_close(sil.double(), ref, atol=1e-4, rtol=0)


def test_truncation_is_the_only_approximation(backend):
    """With a tiny eps the truncated renderer equals the untruncated SoftRas formula."""
    verts, faces = sphere(subdivisions=1)
    size = (30, 30)
    K = intrinsics(2, 50.0, size)
    render = renderer(size, backend, eps=1e-12)
    ref = dense_reference(verts, faces, K, render.cfg, truncate=False)
    torch.testing.assert_close(render(verts, faces, K), ref, atol=1e-9, rtol=0)


def test_many_overlapping_faces_match_dense_reference(backend):
    """1200 faces on a pixel, whose edges pass through pixel centres (1 - D = 1/2 there): the numba kernels'
    per-pixel product of 1 / (1 - D) overflows to inf (2^1200), giving the correctly rounded miss 0."""
    verts, faces, K = square_scene((16, 16), (4.0, 12.0))
    sil = assert_matches_reference(verts, faces.repeat(600, 1), K, (16, 16), backend)
    assert float(sil[0, 4, 8]) == 1.0 and float(sil[0, 0, 0]) == 0.0


def test_numba_float32_kernels_close_to_float64():
    verts, faces = sphere(n_views=2)
    size = (40, 36)
    K = intrinsics(2, 60.0, size)
    weights = torch.randn(2, *size, generator=torch.Generator().manual_seed(1), dtype=F64)
    s64, g64 = values_and_grads(renderer(size, "numba"), verts, faces, K, weights)
    s32, g32 = values_and_grads(renderer(size, "numba"), verts.float(), faces, K.float(), weights.float())
    assert s32.dtype == g32.dtype == torch.float32
    torch.testing.assert_close(s32.double(), s64, atol=2e-5, rtol=0)
    torch.testing.assert_close(g32.double(), g64, atol=1e-4 * float(g64.abs().max()), rtol=1e-3)


def test_numba_exp_polynomial():
    pytest.importorskip("numba")
    import numpy as np

    from app.render._soft_numba import _exp_neg

    for dtype, tol in ((np.float64, 1e-12), (np.float32, 2e-5)):
        for y in np.linspace(-40.0, 0.0, 97):
            assert abs(float(_exp_neg(dtype(y))) / np.exp(float(dtype(y))) - 1.0) < tol, (dtype, y)


def square_scene(size=(40, 40), corners_px=(10.0, 30.0)):
    """Two triangles spanning the pixel square [lo, hi]^2 at z = 0.5 m with f = 100 px, c = 0."""
    lo, hi = corners_px
    z, f = 0.5, 100.0
    uv = torch.tensor([[lo, lo], [hi, lo], [hi, hi], [lo, hi]], dtype=F64)
    verts = torch.cat((uv * z / f, torch.full((4, 1), z, dtype=F64)), dim=1)[None]
    K = torch.tensor([[[f, 0.0, 0.0], [0.0, f, 0.0], [0.0, 0.0, 1.0]]], dtype=F64)
    return verts, torch.tensor([[0, 1, 2], [0, 2, 3]]), K


def test_square_is_one_inside_half_on_edge_zero_outside(backend):
    verts, faces, K = square_scene()
    sil = renderer((40, 40), backend)(verts, faces, K)[0]
    assert float(sil[15, 25]) == pytest.approx(1.0, abs=1e-6)  # (x 25, y 15): 5 px inside
    assert float(sil[10, 20]) == pytest.approx(0.5, abs=1e-9)  # on the top edge
    assert float(sil[20, 30]) == pytest.approx(0.5, abs=1e-9)  # on the right edge
    assert float(sil[9, 20]) == pytest.approx(torch.sigmoid(torch.tensor(-1.0 / 0.25)).item(), abs=1e-9)
    assert float(sil[35, 35]) == 0.0 and float(sil[0, 0]) == 0.0


def test_batch_of_two_equals_two_single_calls(backend):
    verts, faces = sphere()
    size = (32, 32)
    K = intrinsics(2, 50.0, size)
    render = renderer(size, backend)
    weights = torch.randn(2, *size, generator=torch.Generator().manual_seed(3), dtype=F64)
    sil, grad = values_and_grads(render, verts, faces, K, weights)
    for b in range(2):
        s_b, g_b = values_and_grads(render, verts[b : b + 1], faces, K[b : b + 1], weights[b : b + 1])
        torch.testing.assert_close(sil[b : b + 1], s_b, atol=1e-12, rtol=0)
        torch.testing.assert_close(grad[b : b + 1], g_b, atol=1e-10, rtol=0)


def test_vertex_behind_camera_drops_its_faces_without_nan(backend):
    verts, faces = sphere(subdivisions=1, n_views=1)
    size = (30, 30)
    K = intrinsics(1, 50.0, size)
    verts = verts.clone()
    verts[0, 0, 2] = -0.2  # behind the camera
    touching = (faces == 0).any(dim=1)
    render = renderer(size, backend)
    v = verts.clone().requires_grad_(True)
    sil = render(v, faces, K)
    sil.sum().backward()
    assert torch.isfinite(sil).all() and torch.isfinite(v.grad).all()
    assert float(v.grad[0, 0].abs().sum()) == 0.0
    if backend == "torch":
        assert int(render.rasterizer(verts, faces, K).n_faces_dropped[0]) == int(touching.sum())
    torch.testing.assert_close(sil.detach(), render(verts, faces[~touching], K), atol=1e-12, rtol=0)


def test_mesh_entirely_behind_or_outside_gives_zero(backend):
    verts, faces = sphere(subdivisions=1, n_views=2)
    verts = verts.clone()
    verts[0, :, 2] -= 1.0  # view 0: behind the camera
    verts[1, :, 0] += 5.0  # view 1: far to the right, outside the image
    v = verts.requires_grad_(True)
    sil = renderer((16, 16), backend)(v, faces, intrinsics(2, 30.0, (16, 16)))
    sil.sum().backward()
    assert float(sil.detach().abs().max()) == 0.0 and float(v.grad.abs().max()) == 0.0


def test_degenerate_triangles_stay_finite_and_at_most_half(backend):
    verts = torch.tensor([[[0.0, 0.0, 0.4], [0.05, 0.02, 0.4], [0.02, 0.05, 0.4]]], dtype=F64)
    size = (24, 32)
    K = intrinsics(1, 40.0, size)
    for face in ([0, 0, 1], [0, 1, 1], [2, 2, 2]):
        faces = torch.tensor([face])
        v = verts.clone().requires_grad_(True)
        sil = renderer(size, backend)(v, faces, K)
        sil.sum().backward()
        assert 0.0 < float(sil.detach().max()) <= 0.5 + 1e-12
        assert torch.isfinite(v.grad).all()
        ref = dense_reference(verts, faces, K, SoftRasterConfig(image_size=size))
        torch.testing.assert_close(sil.detach(), ref, atol=1e-9, rtol=0)


def test_gradient_descent_moves_the_mesh_onto_the_target(backend):
    verts, faces = sphere(subdivisions=2, radius_m=0.05, n_views=2)
    size = (48, 48)
    K = intrinsics(2, 70.0, size)
    render = renderer(size, backend, sigma_px2=1.0)
    target = render(verts, faces, K)
    shift = torch.tensor([0.012, -0.008, 0.0], dtype=F64, requires_grad=True)
    opt = torch.optim.SGD([shift], lr=2e-5, momentum=0.9)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = ((render(verts + shift, faces, K) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.1 * losses[0]
    assert float(shift[:2].detach().norm()) < 0.3 * 0.0144


def test_pair_cap_raises_a_clear_error(backend):
    verts, faces = sphere(subdivisions=1, n_views=1)
    size = (30, 30)
    with pytest.raises(PairLimitError, match="max_pairs"):
        renderer(size, backend, max_pairs=50)(verts, faces, intrinsics(1, 50.0, size))


def test_fragments_describe_pixels_and_drops():
    verts, faces = sphere(subdivisions=1, n_views=2)
    size = (20, 24)
    frags = renderer(size, "torch").rasterizer(verts, faces, intrinsics(2, 40.0, size))
    assert frags.signed_dist2_px2.shape == frags.pixel_index.shape
    assert int(frags.pixel_index.min()) >= 0 and int(frags.pixel_index.max()) < 2 * 20 * 24
    assert frags.n_faces_dropped.tolist() == [0, 0]
    kept = torch.isfinite(frags.signed_dist2_px2)
    assert bool(kept.any()) and bool((frags.signed_dist2_px2[~kept] < 0).all())


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(image_size=(0, 10)), "image_size"),
        (dict(sigma_px2=0.0), "sigma_px2"),
        (dict(eps=0.7), "eps"),
        (dict(backend="opengl"), "backend"),
    ],
)
def test_config_rejects_bad_values(change, message):
    with pytest.raises(ValueError, match=message):
        SoftRasterConfig(**change)


def test_blur_radius_matches_eps():
    cfg = SoftRasterConfig(sigma_px2=0.25, eps=1e-4)
    assert 1.0 < cfg.blur_radius_px < 2.0
    d2 = torch.tensor(-cfg.blur_radius2_px2 / cfg.sigma_px2, dtype=F64)
    assert float(torch.sigmoid(d2)) == pytest.approx(cfg.eps, rel=1e-9)


def test_bad_inputs_name_the_problem(backend):
    verts, faces = sphere(subdivisions=0, n_views=1)
    render = renderer((8, 8), backend)
    K = intrinsics(1, 10.0, (8, 8))
    with pytest.raises(ValueError, match="verts_cam_m"):
        render(verts[0], faces, K)
    with pytest.raises(ValueError, match="faces"):
        render(verts, faces + 100, K)
    with pytest.raises(ValueError, match="K"):
        render(verts, faces, K.expand(3, 3, 3))
    with pytest.raises(ValueError, match="NaN"):
        render(verts * float("nan"), faces, K)


def test_unbatched_K_is_broadcast(backend):
    verts, faces = sphere(subdivisions=1, n_views=2)
    K = intrinsics(1, 40.0, (20, 20))
    render = renderer((20, 20), backend)
    torch.testing.assert_close(render(verts, faces, K[0]), render(verts, faces, K.expand(2, 3, 3)))


def test_factory_backends():
    assert isinstance(build_soft_silhouette_renderer(SoftRasterConfig(backend="auto")),
                      NumbaSilhouetteRenderer) or torch.cuda.is_available()
    assert isinstance(build_soft_silhouette_renderer(SoftRasterConfig(backend="torch", compile=False)),
                      SoftSilhouetteRenderer)
    try:
        import pytorch3d  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="pytorch3d"):
            build_soft_silhouette_renderer(SoftRasterConfig(backend="pytorch3d"))


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("REALHANDS_SLOW_TESTS"), reason="torch.compile takes ~1 min; set "
                    "REALHANDS_SLOW_TESTS=1 to run")
def test_compiled_kernels_match_eager():
    verts, faces = sphere(n_views=2)
    size = (40, 36)
    K = intrinsics(2, 60.0, size)
    weights = torch.randn(2, *size, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    compiled = build_soft_silhouette_renderer(SoftRasterConfig(image_size=size, compile=True, backend="torch"))
    args = (verts.float(), faces, K.float(), weights)
    sil_c, grad_c = values_and_grads(compiled, *args[:3], args[3])
    sil_e, grad_e = values_and_grads(renderer(size, "torch"), *args[:3], args[3])
    torch.testing.assert_close(sil_c, sil_e, atol=1e-5, rtol=0)
    torch.testing.assert_close(grad_c, grad_e, atol=1e-4 * float(grad_e.abs().max()), rtol=1e-4)
