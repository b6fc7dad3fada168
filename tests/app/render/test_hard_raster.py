"""Hard z-buffer rasterizer against a slow per-pixel reference."""

from __future__ import annotations

import pytest
import torch
import trimesh

from app.render import HardRasterConfig, hard_rasterize

torch.set_num_threads(1)
F64 = torch.float64


def reference_rasterize(verts_cam_m, faces, K, cfg: HardRasterConfig):
    """Per pixel, per face loop over one view: the nearest covering face, its perspective-correct
    barycentrics (solved in 3D along the pixel's ray) and its depth."""
    height, width = cfg.image_size
    face_id = torch.full((height, width), -1, dtype=torch.int64)
    bary = torch.zeros(height, width, 3, dtype=F64)
    depth = torch.full((height, width), float("inf"), dtype=F64)
    K_inv = torch.linalg.inv(K.double())
    for y in range(height):
        for x in range(width):
            ray = K_inv @ torch.tensor([x, y, 1.0], dtype=F64)
            for f, (i, j, k) in enumerate(faces.tolist()):
                a, b, c = verts_cam_m[i].double(), verts_cam_m[j].double(), verts_cam_m[k].double()
                if min(a[2], b[2], c[2]) <= cfg.znear_m:
                    continue
                normal = torch.linalg.cross(b - a, c - a)
                if cfg.cull_backfaces and float(normal @ a) >= 0:
                    continue  # faces away from the camera
                # ray * t = a + beta (b - a) + gamma (c - a)
                M = torch.stack((ray, a - b, a - c), dim=1)
                if abs(float(torch.linalg.det(M))) < 1e-15:
                    continue
                t, beta, gamma = torch.linalg.solve(M, a).tolist()
                w = (1.0 - beta - gamma, beta, gamma)
                if min(w) < -1e-12 or t <= 0:
                    continue
                z = t * float(ray[2])
                if z < depth[y, x] - 1e-12:
                    face_id[y, x], depth[y, x] = f, z
                    bary[y, x] = torch.tensor(w, dtype=F64)
    return face_id, bary, depth


def intrinsics(f_px, size):
    height, width = size
    return torch.tensor([[f_px, 0.0, (width - 1) / 2 + 0.3], [0.0, f_px, (height - 1) / 2 - 0.2],
                         [0.0, 0.0, 1.0]], dtype=F64)


def sphere_scene(subdivisions=1):
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions)
    verts = torch.as_tensor(mesh.vertices, dtype=F64) * 0.1 + torch.tensor([0.01, -0.02, 0.5], dtype=F64)
    return verts, torch.as_tensor(mesh.faces, dtype=torch.int64)


@pytest.mark.parametrize("cull", [False, True])
def test_sphere_matches_reference(cull):
    verts, faces = sphere_scene()
    size = (12, 14)
    K = intrinsics(40.0, size)
    cfg = HardRasterConfig(image_size=size, cull_backfaces=cull)
    frags = hard_rasterize(verts[None], faces, K[None], cfg)
    face_id, bary, depth = reference_rasterize(verts, faces, K, cfg)
    hit = face_id >= 0
    assert bool(hit.any()) and bool((~hit).any())
    assert torch.equal(frags.face_id[0] >= 0, hit)
    # Exactly equal depths (shared edges) may pick either face; the surface point must agree.
    torch.testing.assert_close(frags.depth_m[0][hit], depth[hit], atol=1e-9, rtol=0)
    assert bool(torch.isinf(frags.depth_m[0][~hit]).all())
    same = frags.face_id[0] == face_id
    assert float(same[hit].double().mean()) > 0.95
    torch.testing.assert_close(frags.bary[0][same & hit], bary[same & hit], atol=1e-9, rtol=0)
    torch.testing.assert_close(frags.bary[0].sum(-1)[hit], torch.ones(int(hit.sum()), dtype=F64))


def test_barycentrics_interpolate_the_surface_point():
    """sum_i bary_i * vertex_i lies on the pixel's ray at the reported depth (perspective-correct)."""
    verts, faces = sphere_scene(subdivisions=2)
    size = (30, 30)
    K = intrinsics(80.0, size)
    frags = hard_rasterize(verts[None].float(), faces, K[None].float(), HardRasterConfig(image_size=size))
    hit = frags.face_id[0] >= 0
    ys, xs = torch.nonzero(hit, as_tuple=True)
    tri = verts.float()[faces[frags.face_id[0][hit]]]  # (N, 3, 3)
    point = (frags.bary[0][hit][..., None] * tri).sum(1)
    torch.testing.assert_close(point[:, 2], frags.depth_m[0][hit], atol=1e-5, rtol=0)
    proj = (K.float() @ (point / point[:, 2:]).T).T
    torch.testing.assert_close(proj[:, 0], xs.float(), atol=1e-3, rtol=0)
    torch.testing.assert_close(proj[:, 1], ys.float(), atol=1e-3, rtol=0)


def test_nearer_face_wins_and_culling_keeps_front_faces():
    """Two overlapping squares: the nearer wins whatever the face order."""
    square = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], dtype=F64) * 0.05
    near = torch.cat((square, torch.full((4, 1), 0.4, dtype=F64)), 1)
    far = torch.cat((square + 0.02, torch.full((4, 1), 0.6, dtype=F64)), 1)
    verts = torch.cat((far, near))[None]
    quad = torch.tensor([[0, 2, 1], [0, 3, 2]])  # counter-clockwise seen from the camera (front faces)
    faces = torch.cat((quad, quad + 4))
    K = intrinsics(100.0, (32, 32))[None]
    frags = hard_rasterize(verts, faces, K, HardRasterConfig(image_size=(32, 32)))
    centre = frags.face_id[0, 15:17, 15:17]
    assert bool((centre >= 2).all()), "the near square (faces 2, 3) must cover the centre"
    assert float(frags.depth_m[0, 16, 16]) == pytest.approx(0.4)
    flipped = torch.cat((quad, quad + 4))[:, [0, 2, 1]]
    culled = hard_rasterize(verts, flipped, K, HardRasterConfig(image_size=(32, 32), cull_backfaces=True))
    assert bool((culled.face_id == -1).all())
    kept = hard_rasterize(verts, faces, K, HardRasterConfig(image_size=(32, 32), cull_backfaces=True))
    assert torch.equal(kept.face_id, frags.face_id)


def test_batch_faces_behind_camera_and_background():
    verts, faces = sphere_scene()
    size = (16, 16)
    K = intrinsics(40.0, size)
    batch = torch.stack((verts, verts - torch.tensor([0.0, 0.0, 1.0], dtype=F64)))  # view 1: behind
    frags = hard_rasterize(batch, faces, K, HardRasterConfig(image_size=size))
    single = hard_rasterize(verts[None], faces, K, HardRasterConfig(image_size=size))
    assert torch.equal(frags.face_id[:1], single.face_id)
    assert bool((frags.face_id[1] == -1).all()) and bool(torch.isinf(frags.depth_m[1]).all())
    assert float(frags.bary[1].abs().max()) == 0.0
    assert frags.face_id.shape == (2, 16, 16) and frags.bary.shape == (2, 16, 16, 3)


def test_config_rejects_bad_size():
    with pytest.raises(ValueError, match="image_size"):
        HardRasterConfig(image_size=(0, 4))
