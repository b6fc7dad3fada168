"""Projection of the camera images onto the texture (METHOD.md step 8: Pi and Phi), by gathering from texels.

Design choice: gather, not the thesis's splat. The thesis rasterises the mesh and splats each image pixel's
colour into the texel its interpolated UV names; a hand spans a few thousand pixels per view but 10^5 texels at
512^2, so a splat writes a small fraction of the texels each frame and leaves holes. Here every covered texel's
surface point (its barycentrics on its face, computed once per model in layout.py) is placed on the posed mesh,
projected into each view, weighted by visibility.py and given the image colour there by bilinear interpolation:
every visible texel is written every frame, at a cost linear in the texel count, with no per-frame raster.

1. ``vertex_columns`` (per vertex, V ~ 800): each view's homogeneous pixel coordinates (u, v, w) = K (R p + t)
   and the view cosine of the vertex normal.
2. ``texel_pixels``: a slot's surface point is the barycentric combination of its face's corners in 3D (exact
   on the flat face), so its homogeneous pixel coordinates are the same combination of the corners' (u, v, w):
   one sparse product (layout.interp) interpolates all columns of all views; x = u / w, y = v / w, z = w. The
   view cosine is interpolated from the vertices (smooth across faces).
3. ``sample_views``: the image colour at (x, y), bilinear between pixel centres (at integers).
4. ``fuse_views``: the weighted mean over the views -> Pi, and Phi = (total weight > 0); slots whose two
   stereo colours disagree are dropped (a misplaced mesh samples different surfaces in the two views).

Arrays (torch; B views stacked, N covered texels = the slots of layout.py): verts_m (V, 3) float32 metres,
left-camera frame; T_cam_left (B, 4, 4), K (B, 3, 3) float32; x_px / y_px (B, N) float32 image pixels;
z_m (B, N) metres along the optical axis; cos (B, N); colours (B, 3, N) float32 in [0, 1] (sRGB as captured).
``texel_pixels`` and ``fuse_views`` are plain tensor code, so kernels.py can compile them into fused loops.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F


def vertex_normals(verts_m: torch.Tensor, faces: torch.Tensor, incidence: torch.Tensor | None = None) -> torch.Tensor:
    """(V, 3) unit area-weighted vertex normals of (V, 3) vertices; faces (F, 3) wind counter-clockwise seen
    from outside (outward normals), as the hand models do. incidence: optional (V, F) sparse CSR, 1 where a
    vertex belongs to a face (``vertex_face_incidence``): sums the face normals in one product."""
    tri = verts_m[faces]  # (F, 3, 3)
    a, b = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    fn = torch.stack((a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1], a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                      a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]), dim=1)  # a x b, twice the face's area
    if incidence is not None:
        vn = torch.sparse.mm(incidence, fn)
    else:
        vn = torch.zeros_like(verts_m)
        for k in range(3):
            vn.index_add_(0, faces[:, k], fn)
    return vn / vn.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def vertex_face_incidence(faces: np.ndarray, n_verts: int) -> torch.Tensor:
    """(V, F) float32 sparse CSR: 1 where vertex v is a corner of face f."""
    faces = np.asarray(faces, np.int64)
    rows = faces.ravel()
    order = np.argsort(rows, kind="stable")
    cols = np.repeat(np.arange(len(faces)), 3)[order]
    crow = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_verts))])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        return torch.sparse_csr_tensor(torch.from_numpy(crow), torch.from_numpy(cols), torch.ones(len(cols)),
                                       (n_verts, len(faces)))


def vertex_columns(verts_m: torch.Tensor, faces: torch.Tensor, T_cam_left: torch.Tensor, K: torch.Tensor,
                   incidence: torch.Tensor | None = None):
    """Step 1. Returns cols (V, 4B) float32 = per view (u, v, w, cos) side by side, verts_cam_m (B, V, 3) and
    verts_px (B, V, 2). cos: normal . (camera centre - vertex) / |camera centre - vertex|. incidence: see
    vertex_normals."""
    n_views, n_verts = T_cam_left.shape[0], verts_m.shape[0]
    R = T_cam_left[:, :3, :3]
    verts_cam = verts_m @ R.transpose(1, 2) + T_cam_left[:, None, :3, 3]
    normals_cam = vertex_normals(verts_m, faces, incidence) @ R.transpose(1, 2)
    cos = -(verts_cam * normals_cam).sum(-1) / verts_cam.norm(dim=-1).clamp(min=1e-9)
    hom = verts_cam @ K.transpose(1, 2)  # (B, V, 3), last column = z
    cols = torch.cat((hom, cos[..., None]), dim=-1).permute(1, 0, 2).reshape(n_verts, 4 * n_views)
    return cols, verts_cam, hom[..., :2] / hom[..., 2:]


def texel_pixels(per_texel: torch.Tensor, n_views: int):
    """Step 2 after the sparse product per_texel = interp @ cols (N, 4B): x_px, y_px, z_m, cos, each (B, N).
    Callers make sure every vertex lies in front of the cameras (w > 0)."""
    u, v, z, cos = per_texel.t().reshape(n_views, 4, -1).unbind(1)
    inv_z = 1.0 / z
    return u * inv_z, v * inv_z, z, cos


def _boxes(verts_px: torch.Tensor, sizes: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], int, int]:
    """Per view the pixel box origin (x0, y0) around the projected vertices (B, V, 2), clipped to the image
    (width, height), and the common box size (w, h) >= 2."""
    wh = torch.tensor(sizes, dtype=verts_px.dtype)
    lo = torch.minimum(torch.maximum(verts_px.amin(dim=1).floor() - 1, torch.zeros(2)), wh - 2)
    hi = torch.maximum(torch.minimum(verts_px.amax(dim=1).ceil() + 1, wh - 1), lo + 1)
    size = (hi - lo + 1).amax(dim=0)
    return [(int(a), int(b)) for a, b in lo.tolist()], int(size[0]), int(size[1])


def sample_views(images: tuple[torch.Tensor, ...], x_px: torch.Tensor, y_px: torch.Tensor,
                 verts_px: torch.Tensor) -> torch.Tensor:
    """Step 3: (B, 3, N) float32 in [0, 1], channels first: the colour of images[b] (H, W, 3) uint8 at every
    slot's projection (x_px[b], y_px[b]), bilinear between the four nearest pixel centres (points off the box
    around the hand are clamped onto its border; visibility gives them weight 0). Only the box around the
    projected vertices verts_px (B, V, 2) is converted to float."""
    origin, w, h = _boxes(verts_px, [(img.shape[1], img.shape[0]) for img in images])
    boxes = torch.zeros(len(images), 3, h, w)
    for b, (img, (x0, y0)) in enumerate(zip(images, origin, strict=True)):
        part = img[y0:y0 + h, x0:x0 + w].permute(2, 0, 1)
        boxes[b, :, :part.shape[1], :part.shape[2]] = part
    # grid_sample with align_corners=True: -1 and +1 are the centres of the box's first and last pixels.
    sx, sy = 2.0 / (w - 1), 2.0 / (h - 1)
    grid = torch.empty(x_px.shape + (2,))
    for b, (x0, y0) in enumerate(origin):
        grid[b, :, 0] = x_px[b] * sx + (-1.0 - sx * x0)
        grid[b, :, 1] = y_px[b] * sy + (-1.0 - sy * y0)
    got = F.grid_sample(boxes, grid[:, None], mode="bilinear", padding_mode="border", align_corners=True)
    return got[:, :, 0].mul_(1.0 / 255.0)


def fuse_views(colours: torch.Tensor, weights: torch.Tensor, stereo_tol: torch.Tensor | float = 1.0):
    """Step 4: colours (B, 3, N), weights (B, N) (0 = not seen by that view) -> pi (3, N) channels first (0
    where no view sees the slot) and total (N,) float32 weight; Phi = total > 0.

    Stereo consistency: a slot both views of a stereo pair see must show the same colour in both (the same
    surface point); where the two colours differ by more than stereo_tol in some channel, the mesh is not where
    the surface is (a misfit, or an occluder the mesh lacks) and the slot is not written this frame."""
    if weights.shape[0] == 2:
        both = (weights[0] > 0) & (weights[1] > 0)
        clash = (colours[0] - colours[1]).abs().amax(dim=0) > stereo_tol
        weights = weights * (~(both & clash)).to(weights.dtype)
    total = weights.sum(dim=0)
    pi = (colours * weights[:, None]).sum(dim=0).div_(total.clamp(min=1e-12))
    return pi, total
