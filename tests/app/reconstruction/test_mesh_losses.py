"""Mesh regularisers against slow loop references on tiny meshes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import trimesh

from app.reconstruction.mesh_losses import (
    build_mesh_topology,
    edge_loss,
    laplacian_loss,
    mesh_regularisers,
    normal_consistency_loss,
    vertex_offset_loss,
)

torch.set_num_threads(1)


def neighbours(faces: np.ndarray, n_verts: int) -> list[set]:
    nbr = [set() for _ in range(n_verts)]
    for f in faces.tolist():
        for a, b in itertools.permutations(f, 2):
            nbr[a].add(b)
    return nbr


def ref_edge(verts: np.ndarray, faces: np.ndarray) -> float:
    """Paper eq. 2, sum over v and k in N(v) of ||v - k||^2, divided by the number of (v, k) pairs: each edge
    counted twice in both, so it equals the mean over unique edges."""
    nbr = neighbours(faces, len(verts))
    terms = [float(np.sum((verts[v] - verts[k]) ** 2)) for v in range(len(verts)) for k in nbr[v]]
    return sum(terms) / len(terms)


def ref_laplacian(verts: np.ndarray, faces: np.ndarray) -> float:
    nbr = neighbours(faces, len(verts))
    terms = []
    for v in range(len(verts)):
        if nbr[v]:
            delta = verts[v] - sum(verts[k] for k in nbr[v]) / len(nbr[v])
            terms.append(float(delta @ delta))
    return sum(terms) / len(terms)


def ref_normal(verts: np.ndarray, faces: np.ndarray) -> float:
    """Loop over all face pairs; a pair counts when the faces share two vertices."""
    terms = []
    for a, b in itertools.combinations(range(len(faces)), 2):
        if len(set(faces[a]) & set(faces[b])) == 2:
            na = np.cross(verts[faces[a, 1]] - verts[faces[a, 0]], verts[faces[a, 2]] - verts[faces[a, 0]])
            nb = np.cross(verts[faces[b, 1]] - verts[faces[b, 0]], verts[faces[b, 2]] - verts[faces[b, 0]])
            terms.append(1.0 - float(na @ nb) / (np.linalg.norm(na) * np.linalg.norm(nb)))
    return sum(terms) / len(terms)


def tiny_meshes():
    """A jittered icosahedron (closed), an open strip of 4 triangles with an isolated extra vertex, and a
    non-manifold fan (3 faces on one edge)."""
    ico = trimesh.creation.icosahedron()
    rng = np.random.default_rng(0)
    v_ico = ico.vertices * 0.01 + rng.normal(0, 0.002, ico.vertices.shape)
    strip_v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0.2], [1, 1, 0], [0, 2, 0.1], [1, 2, 0.3], [5, 5, 5]]) * 0.01
    strip_f = np.array([[0, 1, 2], [1, 3, 2], [2, 3, 4], [3, 5, 4]])
    fan_v = np.array([[0, 0, 0], [1, 0, 0], [0.5, 1, 0], [0.5, -1, 0.3], [0.5, 0.2, 1]]) * 0.01
    fan_f = np.array([[0, 1, 2], [1, 0, 3], [0, 1, 4]])
    return [(v_ico, np.asarray(ico.faces)), (strip_v, strip_f), (fan_v, fan_f)]


@pytest.mark.parametrize("mesh_index", [0, 1, 2])
def test_regularisers_match_loop_references(mesh_index):
    verts_np, faces_np = tiny_meshes()[mesh_index]
    verts = torch.tensor(verts_np, dtype=torch.float64)
    topo = build_mesh_topology(torch.tensor(faces_np), len(verts_np))
    assert math.isclose(float(edge_loss(verts, topo)), ref_edge(verts_np, faces_np), rel_tol=1e-10)
    assert math.isclose(float(laplacian_loss(verts, topo)), ref_laplacian(verts_np, faces_np), rel_tol=1e-10)
    assert math.isclose(float(normal_consistency_loss(verts, topo)), ref_normal(verts_np, faces_np),
                        rel_tol=1e-10, abs_tol=1e-12)


def test_fan_has_all_three_pairs_on_its_shared_edge():
    _, faces = tiny_meshes()[2]
    topo = build_mesh_topology(torch.tensor(faces), 5)
    assert sorted(map(tuple, topo.face_pairs.sort(1).values.tolist())) == [(0, 1), (0, 2), (1, 2)]


def test_flat_grid_has_zero_normal_and_interior_laplacian():
    # A planar regular grid: every normal agrees, and interior vertices sit at their neighbours' mean.
    n = 4
    xy = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2) * 0.01
    verts = torch.tensor(np.concatenate([xy, np.zeros((n * n, 1))], 1))
    quads = [(i * n + j, (i + 1) * n + j, i * n + j + 1, (i + 1) * n + j + 1) for i in range(n - 1)
             for j in range(n - 1)]
    faces = torch.tensor([f for a, b, c, d in quads for f in ((a, b, c), (b, d, c))])
    topo = build_mesh_topology(faces, n * n)
    assert float(normal_consistency_loss(verts, topo)) == pytest.approx(0.0, abs=1e-12)
    bent = verts.clone()
    bent[5, 2] = 0.01
    assert float(normal_consistency_loss(bent, topo)) > 0.01


def test_batched_and_gradients_agree_with_single():
    verts_np, faces_np = tiny_meshes()[0]
    topo = build_mesh_topology(torch.tensor(faces_np), len(verts_np))
    v = torch.tensor(verts_np, dtype=torch.float64, requires_grad=True)
    batch = torch.stack((v, v * 1.5))
    single = [edge_loss(x, topo) for x in (v, v * 1.5)]
    assert float(edge_loss(batch, topo).detach()) == pytest.approx(float(sum(single).detach() / 2), rel=1e-12)
    for fn in (edge_loss, laplacian_loss, normal_consistency_loss):
        assert torch.autograd.gradcheck(lambda x, fn=fn: fn(x, topo), (v,))


def test_vertex_offset_loss_is_mean_squared_norm():
    dv = torch.tensor([[0.001, 0.0, 0.0], [0.0, 0.002, 0.002]])
    assert float(vertex_offset_loss(dv)) == pytest.approx((1e-6 + 8e-6) / 2)


def test_bad_faces_are_named():
    with pytest.raises(ValueError, match="vertex indices"):
        build_mesh_topology(torch.tensor([[0, 1, 5]]), 3)
    with pytest.raises(ValueError, match="integer"):
        build_mesh_topology(torch.zeros(2, 3), 3)
    with pytest.raises(ValueError, match="no faces"):
        build_mesh_topology(torch.zeros(0, 3, dtype=torch.int64), 3)


def torch_terms(verts, topo, w_normal, w_laplacian, w_edge):
    return (w_normal * normal_consistency_loss(verts, topo) + w_laplacian * laplacian_loss(verts, topo)
            + w_edge * edge_loss(verts, topo))


def value_and_grad(fn, verts):
    v = verts.clone().requires_grad_(True)
    loss = fn(v)
    loss.backward()
    return float(loss.detach()), v.grad


@pytest.mark.parametrize("mesh_index", [0, 1, 2])
@pytest.mark.parametrize("weights", [(1.0, 1.0, 0.1), (0.0, 2.0, 0.0), (0.5, 0.0, 3.0)])
def test_fused_regularisers_match_the_torch_terms(mesh_index, weights):
    pytest.importorskip("numba")
    verts_np, faces_np = tiny_meshes()[mesh_index]
    verts = torch.tensor(verts_np, dtype=torch.float64)
    topo = build_mesh_topology(torch.tensor(faces_np), len(verts_np))
    fused, g_fused = value_and_grad(lambda v: mesh_regularisers(v, topo, *weights, fused=True), verts)
    ref, g_ref = value_and_grad(lambda v: torch_terms(v, topo, *weights), verts)
    assert fused == pytest.approx(ref, rel=1e-10, abs=1e-15)
    torch.testing.assert_close(g_fused, g_ref, rtol=1e-8, atol=1e-10 * float(g_ref.abs().max()))


def test_fused_regularisers_on_the_hand_model_with_a_degenerate_face():
    pytest.importorskip("numba")
    from models.hand_model.layer import HandModel
    from models.hand_model.mano_io import load_mano_dict, open_model_path

    model = HandModel(load_mano_dict(open_model_path("right")))
    with torch.no_grad():
        verts = model(0.3 * torch.randn(1, 48, generator=torch.Generator().manual_seed(1)), torch.zeros(1, 10))
    verts = verts.verts_m[0].double()
    faces = model.faces
    verts[faces[7, 1]] = verts[faces[7, 0]]  # a zero-area face: its cosines count as 0
    topo = build_mesh_topology(faces, model.num_verts)
    fused, g_fused = value_and_grad(lambda v: mesh_regularisers(v, topo, 1.0, 1.0, 0.1), verts)
    ref, g_ref = value_and_grad(lambda v: torch_terms(v, topo, 1.0, 1.0, 0.1), verts)
    assert fused == pytest.approx(ref, rel=1e-9)
    torch.testing.assert_close(g_fused, g_ref, rtol=1e-6, atol=1e-8 * float(g_ref.abs().max()))
    # float32 vertices: float64 inside, the result and gradient in float32
    f32, g32 = value_and_grad(lambda v: mesh_regularisers(v, topo, 1.0, 1.0, 0.1), verts.float())
    assert g32.dtype == torch.float32 and f32 == pytest.approx(ref, rel=1e-5)


def test_batched_vertices_use_the_torch_terms():
    verts_np, faces_np = tiny_meshes()[0]
    topo = build_mesh_topology(torch.tensor(faces_np), len(verts_np))
    batch = torch.tensor(np.stack((verts_np, 1.5 * verts_np)))
    expected = float(torch_terms(batch, topo, 1.0, 1.0, 0.1))
    assert float(mesh_regularisers(batch, topo, 1.0, 1.0, 0.1)) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match=r"\(V, 3\)"):
        mesh_regularisers(batch, topo, 1.0, 1.0, 0.1, fused=True)
