"""Colours for texels never seen, so the rendered hand has no holes.

Texels in a UV chart that no view has seen yet take a colour from the nearest seen surface, found on the mesh
rather than in UV space (UV neighbours across a seam lie far apart on the hand, and charts border each other in
the texture without touching on the hand):
1. per vertex, the mean colour of the seen texels around it (their barycentric weights on the vertex);
2. vertices with no seen texel take the mean of their neighbours that have a colour, repeated outwards over
   the mesh graph until every vertex reachable from a seen one has a colour (a graph dilation);
3. each unseen texel interpolates its face's vertex colours with its barycentrics.
Texels outside the charts copy their nearest covered texel (layout.gather_src, models.hand_model.uv's
nearest_covered_index) when an image is made, so bilinear lookups and mip-maps at seams never blend background.

Arrays: rgb (3, N) float32 per slot, channels first (update.py), seen (N,) bool, torch; interp (N, V) and
interp_t (V, N) sparse CSR of layout.py.
"""

from __future__ import annotations

import numpy as np
import torch

from app.texture.layout import quiet_sparse


def vertex_adjacency(faces: np.ndarray, n_verts: int) -> torch.Tensor:
    """(V, V) float32 sparse CSR, 1 where two vertices share an edge."""
    f = np.asarray(faces, np.int64)
    pairs = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    both = np.unique(np.concatenate([pairs, pairs[:, ::-1]]), axis=0)  # symmetric, sorted by (row, column)
    idx = torch.from_numpy(both.T.copy())
    with quiet_sparse():
        return torch.sparse_coo_tensor(idx, torch.ones(len(both)), (n_verts, n_verts)).coalesce().to_sparse_csr()


def seen_vertex_colours(interp_t: torch.Tensor, rgb: torch.Tensor, seen: torch.Tensor):
    """Step 1: (V, 3) mean colour of the seen texels around each vertex and (V,) their total weight."""
    w = seen.float()
    total = torch.sparse.mm(interp_t, torch.cat((rgb * w, w[None]), dim=0).T.contiguous())
    return total[:, :3] / total[:, 3:].clamp(min=1e-12), total[:, 3]


def dilate_vertex_colours(colour: torch.Tensor, known: torch.Tensor, adjacency: torch.Tensor,
                          iterations: int) -> torch.Tensor:
    """Step 2: (V, 3) colours where vertices not ``known`` (V,) bool take the mean of their coloured
    neighbours, ring after ring, at most ``iterations`` rings (vertices out of reach keep 0)."""
    colour = colour * known[:, None]
    known = known.clone()
    for _ in range(iterations):
        if bool(known.all()):
            break
        acc = torch.sparse.mm(adjacency, torch.cat((colour, known[:, None].float()), dim=1))
        grow = ~known & (acc[:, 3] > 0)
        if not bool(grow.any()):
            break
        colour[grow] = acc[grow, :3] / acc[grow, 3:]
        known |= grow
    return colour


def fill_unseen(interp: torch.Tensor, interp_t: torch.Tensor, adjacency: torch.Tensor, rgb: torch.Tensor,
                seen: torch.Tensor, iterations: int) -> torch.Tensor:
    """(3, N) fill colours for every slot (steps 1-3); callers keep rgb where seen. Zeros when nothing is seen."""
    if not bool(seen.any()):
        return torch.zeros_like(rgb)
    colour, weight = seen_vertex_colours(interp_t, rgb, seen)
    colour = dilate_vertex_colours(colour, weight > 0, adjacency, iterations)
    return torch.sparse.mm(interp, colour).T.contiguous()
