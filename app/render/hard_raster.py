"""Z-buffered hard rasterizer (no gradient): per pixel the nearest face, its barycentrics and the depth.

For the texture stage (METHOD.md step 8: rasterise the mesh, interpolate UVs per pixel). Pixel centres sit at
integer image coordinates (app/types.py); a pixel belongs to a face when its centre lies inside the projected
triangle or on its boundary. Both sides of a face are drawn unless cull_backfaces is set. Faces with a vertex
at z <= znear_m are dropped (no clipping). Among the faces covering a pixel the smallest camera depth wins,
ties going to the lower face index.

Work is vectorised over (pixel, face) pairs: every pixel of every face's bounding box, like the soft rasterizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from app.render._soft_pairs import project_vertices
from app.render.soft_raster import check_mesh_inputs


@dataclass(frozen=True)
class HardRasterConfig:
    """image_size: (H, W) pixels. znear_m: faces with a vertex at z <= znear_m (metres) are dropped.
    cull_backfaces: drop faces seen from behind, for meshes whose faces wind counter-clockwise seen from
    outside (outward normals by the right-hand rule, as trimesh and MANO): on screen (x right, y down) such a
    face seen from the front has (a1 - a0) x (a2 - a0) < 0."""

    image_size: tuple[int, int] = (224, 224)
    znear_m: float = 0.01
    cull_backfaces: bool = False

    def __post_init__(self):
        if len(self.image_size) != 2 or min(self.image_size) <= 0:
            raise ValueError(f"HardRasterConfig.image_size: expected (H, W) > 0, got {self.image_size}")
        if self.znear_m <= 0:
            raise ValueError(f"HardRasterConfig.znear_m must be > 0, got {self.znear_m}")


@dataclass(frozen=True)
class HardFragments:
    """face_id: (B, H, W) int64, index into faces, -1 for background.
    bary: (B, H, W, 3) float, perspective-correct barycentric weights of the face's 3 vertices (sum 1; use them
    to interpolate vertex attributes such as UVs), 0 for background.
    depth_m: (B, H, W) float, camera-frame z of the surface in metres, +inf for background.
    """

    face_id: torch.Tensor
    bary: torch.Tensor
    depth_m: torch.Tensor


def _face_boxes(tri, keep, height: int, width: int):
    """Pixel boxes (x0, y0) and (nx, ny) of the projected triangles, clipped to the image; (BF, 2) int64."""
    limit = tri.new_tensor([width, height])
    lo = torch.minimum(torch.ceil(tri.amin(dim=1)).clamp(min=0.0), limit)
    hi = torch.minimum(torch.floor(tri.amax(dim=1)).clamp(min=-1.0), limit - 1)
    size = (hi - lo + 1).clamp(min=0.0) * keep[:, None]
    return lo.long(), size.long()


def _pairs(origin, size):
    """Every pixel of every box: face (P,) and pixel (x, y) (P,) int64, pairs of a face consecutive."""
    counts = size[:, 0] * size[:, 1]
    total = int(counts.sum())
    fid = torch.repeat_interleave(torch.arange(counts.shape[0], device=counts.device), counts, output_size=total)
    off = torch.arange(total, device=counts.device) - (torch.cumsum(counts, 0) - counts)[fid]
    nx = size[fid, 0]
    return fid, origin[fid, 0] + off % nx, origin[fid, 1] + off // nx


def _screen_barycentrics(tri, fid, px, py):
    """Screen-space barycentrics (P, 3) of pixel centres in their faces (normalised by the signed area)."""
    a, b, c = tri[fid, 0], tri[fid, 1], tri[fid, 2]
    p = torch.stack((px, py), dim=1).to(tri.dtype)

    def cross(o, q, r):  # (q - o) x (r - o)
        return (q[:, 0] - o[:, 0]) * (r[:, 1] - o[:, 1]) - (q[:, 1] - o[:, 1]) * (r[:, 0] - o[:, 0])

    area = cross(a, b, c)
    lam = torch.stack((cross(p, b, c), cross(p, c, a), cross(p, a, b)), dim=1)
    return lam / area[:, None]


def _zbuffer(pix, depth, fid, n_pixels: int):
    """Index of the winning pair per covered pixel: smallest depth, then smallest face index."""
    zbuf = depth.new_full((n_pixels,), float("inf")).scatter_reduce(0, pix, depth, "amin")
    front = depth == zbuf[pix]
    big = torch.iinfo(torch.int64).max
    best_face = torch.full((n_pixels,), big, dtype=torch.int64, device=pix.device)
    best_face = best_face.scatter_reduce(0, pix[front], fid[front], "amin")
    return front & (fid == best_face[pix])


@torch.no_grad()
def hard_rasterize(verts_cam_m: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,
                   cfg: HardRasterConfig) -> HardFragments:
    """verts_cam_m: (B, V, 3) float, metres, camera frame (OpenCV); faces: (F, 3) int64; K: (B, 3, 3) or
    (3, 3), pixels. Returns HardFragments for (B, H, W) images."""
    faces, K = check_mesh_inputs(verts_cam_m, faces, K)
    n_views, n_faces = verts_cam_m.shape[0], faces.shape[0]
    height, width = cfg.image_size
    uv_px, in_front = project_vertices(verts_cam_m, K, cfg.znear_m)
    tri = uv_px[:, faces].flatten(0, 1)  # (BF, 3, 2)
    z_tri = verts_cam_m[..., 2][:, faces].flatten(0, 1)  # (BF, 3)
    area2 = (tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1]) - (tri[:, 1, 1] - tri[:, 0, 1]) * (
        tri[:, 2, 0] - tri[:, 0, 0]
    )
    keep = in_front[:, faces].all(dim=-1).flatten() & (area2 < 0 if cfg.cull_backfaces else area2 != 0)
    fid, px, py = _pairs(*_face_boxes(tri, keep, height, width))
    lam = _screen_barycentrics(tri, fid, px, py)
    inside = (lam >= 0).all(dim=1)
    fid, px, py, lam = fid[inside], px[inside], py[inside], lam[inside]
    # Perspective correction: screen barycentrics interpolate 1/z linearly.
    w = lam / z_tri[fid]
    depth = 1.0 / w.sum(dim=1)
    view = torch.div(fid, n_faces, rounding_mode="floor")
    pix = (view * height + py) * width + px
    win = _zbuffer(pix, depth, fid, n_views * height * width)
    return _scatter_winners(pix[win], fid[win] - view[win] * n_faces, w[win] * depth[win, None], depth[win],
                            n_views, height, width)


def _scatter_winners(pix, face, bary, depth, n_views: int, height: int, width: int) -> HardFragments:
    n_pixels = n_views * height * width
    face_id = torch.full((n_pixels,), -1, dtype=torch.int64, device=pix.device)
    face_id[pix] = face
    bary_out = bary.new_zeros(n_pixels, 3)
    bary_out[pix] = bary
    depth_out = depth.new_full((n_pixels,), float("inf"))
    depth_out[pix] = depth
    return HardFragments(face_id.view(n_views, height, width), bary_out.view(n_views, height, width, 3),
                         depth_out.view(n_views, height, width))
