"""Mesh regularisers of the test-time refinement (METHOD.md step 7; paper eqs. 2-4, thesis 4.2.4). Pure torch.

All terms are mean-reduced (the paper writes sums; the means keep the weights independent of the mesh
resolution, like PyTorch3D's mesh_edge_loss / mesh_laplacian_smoothing / mesh_normal_consistency, which the
thesis used):
- L_v    = mean_v ||dv_v||^2                                   (eq. 2 left; m^2)
- L_edge = mean over unique edges (i, j) of ||v_i - v_j||^2    (eq. 2 right counts each edge twice; m^2)
- L_lap  = mean_v ||v - mean_{k in N(v)} k||^2, uniform weights (eq. 3; m^2; vertices without neighbours
  are left out)
- L_n    = mean over pairs of faces sharing an edge of 1 - cos(n_l, n_r)   (eq. 4; unitless)

Vertices may be (V, 3) or batched (B, V, 3); the means then run over the batch too.

mesh_regularisers gives the weighted sum of L_n, L_lap and L_edge in one call: through the fused numba kernel
of _refine_kernels.py (forward and hand-written backward, float64 inside; ~20x faster than the torch terms on
the CPU) when numba is importable, else as the sum of the torch functions below.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np
import torch

# Guard of the cosine in L_n: a normal shorter than this (m^2) is divided by it instead of its length.
NORMAL_EPS = 1e-12


@dataclass(frozen=True)
class MeshTopology:
    """Connectivity of a triangle mesh, computed once per mesh.

    faces: (F, 3) int64; edges: (E, 2) int64 unique undirected edges, i < j; face_pairs: (A, 2) int64 faces
    that share an edge (every pair of the faces on an edge: one pair per interior edge of a manifold mesh);
    degree: (V,) int64 number of edge neighbours per vertex; n_verts: V.
    """

    faces: torch.Tensor
    edges: torch.Tensor
    face_pairs: torch.Tensor
    degree: torch.Tensor
    n_verts: int


def build_mesh_topology(faces: torch.Tensor, n_verts: int) -> MeshTopology:
    """faces: (F, 3) integer tensor of vertex indices in [0, n_verts) -> MeshTopology (on the faces' device)."""
    faces = _checked_faces(faces, n_verts)
    # Every face's three edges as sorted vertex pairs, keyed i * V + j so that equal edges get equal keys.
    corner = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    key = corner.amin(1) * n_verts + corner.amax(1)
    unique_key, edge_of_side = torch.unique(key, return_inverse=True)
    edges = torch.stack((unique_key // n_verts, unique_key % n_verts), dim=1)
    face_of_side = torch.arange(len(faces), device=faces.device).repeat_interleave(3)
    degree = torch.bincount(edges.flatten(), minlength=n_verts)
    return MeshTopology(faces, edges, _face_pairs(edge_of_side, face_of_side), degree, n_verts)


def _checked_faces(faces, n_verts: int) -> torch.Tensor:
    if not (torch.is_tensor(faces) and faces.ndim == 2 and faces.shape[1] == 3) or faces.is_floating_point():
        raise ValueError(f"faces: expected an integer (F, 3) tensor, got {getattr(faces, 'shape', type(faces))}")
    if len(faces) == 0:
        raise ValueError("faces: the mesh has no faces")
    if int(faces.min()) < 0 or int(faces.max()) >= n_verts:
        raise ValueError(f"faces: vertex indices must lie in [0, {n_verts}), the mesh has {n_verts} vertices")
    return faces.long()


def _face_pairs(edge_of_side: torch.Tensor, face_of_side: torch.Tensor) -> torch.Tensor:
    """(A, 2) int64: all pairs of faces on the same edge. Sides are grouped by edge; within a group of n sides
    every (a, b) with a < b is a pair (n = 2 on a manifold interior edge, 1 on a boundary)."""
    order = torch.argsort(edge_of_side, stable=True)
    edge_sorted, face_sorted = edge_of_side[order], face_of_side[order]
    counts = torch.bincount(edge_sorted)
    start = torch.cumsum(counts, 0) - counts
    pairs = []
    for n in torch.unique(counts).tolist():
        first = start[counts == n]
        for a in range(n):
            for b in range(a + 1, n):
                pairs.append(torch.stack((face_sorted[first + a], face_sorted[first + b]), dim=1))
    if not pairs:
        return torch.zeros(0, 2, dtype=torch.int64, device=edge_of_side.device)
    return torch.cat(pairs)


def vertex_offset_loss(offsets_m: torch.Tensor) -> torch.Tensor:
    """L_v: offsets_m (V, 3) or (B, V, 3) float, metres -> scalar, m^2: mean over vertices of ||dv||^2."""
    return (offsets_m * offsets_m).sum(-1).mean()


def edge_loss(verts_m: torch.Tensor, topo: MeshTopology) -> torch.Tensor:
    """L_edge: verts_m (V, 3) or (B, V, 3) float, metres -> scalar, m^2: mean squared edge length."""
    d = verts_m[..., topo.edges[:, 0], :] - verts_m[..., topo.edges[:, 1], :]
    return (d * d).sum(-1).mean()


def laplacian_loss(verts_m: torch.Tensor, topo: MeshTopology) -> torch.Tensor:
    """L_lap: verts_m (V, 3) or (B, V, 3) float, metres -> scalar, m^2: mean over vertices with neighbours of
    ||v - mean of its edge neighbours||^2 (uniform Laplacian)."""
    i, j = topo.edges[:, 0], topo.edges[:, 1]
    nbr_sum = torch.zeros_like(verts_m).index_add(-2, i, verts_m[..., j, :]).index_add(-2, j, verts_m[..., i, :])
    has_nbr = topo.degree > 0
    deg = topo.degree[has_nbr].to(verts_m.dtype)[:, None]
    delta = verts_m[..., has_nbr, :] - nbr_sum[..., has_nbr, :] / deg
    return (delta * delta).sum(-1).mean()


def face_normals(verts_m: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(..., F, 3) unnormalised normals (v1 - v0) x (v2 - v0) (length = twice the area, m^2)."""
    v0, v1, v2 = (verts_m[..., faces[:, k], :] for k in range(3))
    return torch.linalg.cross(v1 - v0, v2 - v0, dim=-1)


def normal_consistency_loss(verts_m: torch.Tensor, topo: MeshTopology, eps: float = NORMAL_EPS) -> torch.Tensor:
    """L_n: verts_m (V, 3) or (B, V, 3) float, metres -> scalar, unitless in [0, 2]: mean over neighbouring
    face pairs of 1 - cos(n_l, n_r). A degenerate (zero-area) face counts as cos = 0. 0 without pairs."""
    if len(topo.face_pairs) == 0:
        return verts_m.new_zeros(())
    n = face_normals(verts_m, topo.faces)
    n_l, n_r = n[..., topo.face_pairs[:, 0], :], n[..., topo.face_pairs[:, 1], :]
    cos = torch.nn.functional.cosine_similarity(n_l, n_r, dim=-1, eps=eps)
    return (1.0 - cos).mean()


def mesh_regularisers(verts_m: torch.Tensor, topo: MeshTopology, w_normal: float, w_laplacian: float,
                      w_edge: float, fused: bool | None = None) -> torch.Tensor:
    """w_normal L_n + w_laplacian L_lap + w_edge L_edge: verts_m (V, 3) or (B, V, 3) float, metres -> scalar.

    fused: use the numba kernel (True), the torch terms (False), or the kernel when numba is importable and
    verts_m is a (V, 3) CPU tensor (None). Both give the same value and gradient (to float rounding)."""
    if fused is None:
        fused = verts_m.ndim == 2 and verts_m.device.type == "cpu" and _numba_available()
    if fused:
        return _FusedRegularisers.apply(verts_m, topo, (float(w_normal), float(w_laplacian), float(w_edge)))
    loss = verts_m.new_zeros(())
    for weight, term in ((w_normal, normal_consistency_loss), (w_laplacian, laplacian_loss), (w_edge, edge_loss)):
        if weight > 0:
            loss = loss + weight * term(verts_m, topo)
    return loss


def _numba_available() -> bool:
    return importlib.util.find_spec("numba") is not None


def _topology_arrays(topo: MeshTopology) -> tuple[np.ndarray, ...]:
    """(faces, edges, face_pairs, degree) as contiguous int64 ndarrays (views of CPU tensors, no copy)."""
    return tuple(np.ascontiguousarray(t.cpu().numpy(), dtype=np.int64)
                 for t in (topo.faces, topo.edges, topo.face_pairs, topo.degree))


class _FusedRegularisers(torch.autograd.Function):
    """(V, 3) verts -> scalar w_n L_n + w_lap L_lap + w_edge L_edge; the gradient comes from the forward pass."""

    @staticmethod
    def forward(ctx, verts_m, topo: MeshTopology, weights: tuple[float, float, float]):
        from app.reconstruction import _refine_kernels as rk

        if verts_m.ndim != 2 or verts_m.shape[1] != 3:
            raise ValueError(f"mesh_regularisers(fused=True): expected (V, 3) vertices, got {tuple(verts_m.shape)}")
        verts = verts_m.detach().to(device="cpu", dtype=torch.float64).numpy()
        w_normal, w_laplacian, w_edge = weights
        loss, grad = rk.regularisers(verts, *_topology_arrays(topo), w_normal, w_laplacian, w_edge, NORMAL_EPS)
        ctx.grad = grad
        return torch.tensor(loss, dtype=verts_m.dtype, device=verts_m.device)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        grad = torch.from_numpy(ctx.grad).to(device=grad_loss.device, dtype=grad_loss.dtype)
        return grad * grad_loss, None, None
