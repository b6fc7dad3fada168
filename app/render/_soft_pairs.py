"""Pure tensor kernels of the sparse soft rasterizer: projection, per-face edge coefficients, the
(pixel, face) candidate pairs and their signed squared distances.

Pixel conventions (app/types.py): pixel (row y, column x) has its centre at image coordinates (x, y), both
integers; OpenCV pinhole u = fx X/Z + s Y/Z + cx, v = fy Y/Z + cy.

Algorithm (per view b and face f, all vectorised):
1. project the vertices, drop faces with a vertex at z <= znear;
2. per face, the pixel box of its projected triangle grown by the blur radius r, clipped to the image;
3. one candidate pair per pixel of each box (repeat_interleave + arange offsets);
4. per pair and edge k: s_k = signed distance to the edge's line (positive towards the triangle) and
   tau_k = coordinate along the edge, both affine in the pair's pixel offset (ix, iy) from its box origin,
   so d_k^2 = s_k^2 + (tau_k - clamp(tau_k, 0, L_k))^2 is the squared distance to the edge segment;
5. d^2 = min_k d_k^2, inside = min_k s_k > 0; pairs outside the triangle with d^2 > r^2 are dropped.
The gradient of step 4-5 is written by hand (``PairSignedDist2``): d^2 depends on the nearest edge only,
and through its 7 coefficients only, which keeps the backward pass to a handful of ops per pair.
"""

from __future__ import annotations

import torch

# Squared edge length (px^2) under which an edge counts as a point (its direction is undefined).
_TINY_LEN2_PX2 = 1e-12
# Coefficients per edge: n_x, n_y, c_s (signed line distance), u_x, u_y, c_t (along-edge), L (length).
N_COEF = 7


def project_vertices(verts_cam_m: torch.Tensor, K: torch.Tensor, znear_m: float):
    """Pinhole projection.

    verts_cam_m: (B, V, 3) float, metres, camera frame (OpenCV: x right, y down, z forward).
    K: (B, 3, 3) float, pixels.
    Returns uv_px (B, V, 2) float, pixels, and in_front (B, V) bool (z > znear_m). Vertices at or behind
    znear are projected as if z = 1 m (finite values, zero gradient through z) and must be masked by the caller.
    """
    z = verts_cam_m[..., 2]
    in_front = z > znear_m
    z_safe = torch.where(in_front, z, torch.ones_like(z))
    x = verts_cam_m[..., 0] / z_safe
    y = verts_cam_m[..., 1] / z_safe
    u = K[:, 0, 0, None] * x + K[:, 0, 1, None] * y + K[:, 0, 2, None]
    v = K[:, 1, 1, None] * y + K[:, 1, 2, None]
    return torch.stack((u, v), dim=-1), in_front


def face_boxes(tri_uv_px: torch.Tensor, face_ok: torch.Tensor, r_px: float, height: int, width: int):
    """Integer pixel boxes of the triangles grown by r_px, clipped to the image (no gradient).

    tri_uv_px: (B, F, 3, 2) float pixels; face_ok: (B, F) bool.
    Returns origin (B, F, 2) int64 (x0, y0) and size (B, F, 2) int64 (nx, ny), size 0 for empty boxes.
    """
    tri = tri_uv_px.detach()
    limit = tri.new_tensor([width, height])
    lo = torch.ceil(tri.amin(dim=2) - r_px)
    hi = torch.floor(tri.amax(dim=2) + r_px)
    # Clamp in float first: projected coordinates can be huge when a vertex sits just beyond znear.
    lo = torch.minimum(lo.clamp(min=0.0), limit).long()
    hi = torch.minimum(hi.clamp(min=-1.0), limit - 1).long()
    size = (hi - lo + 1).clamp(min=0) * face_ok[..., None]
    return lo, size


def build_pairs(origin: torch.Tensor, size: torch.Tensor, height: int, width: int, max_pairs: int):
    """One (pixel, face) pair per pixel of every face box.

    origin, size: (B, F, 2) int64 from ``face_boxes``.
    Returns fid (P,) int64 flat face index b*F + f, ix and iy (P,) int64 offsets inside the box, and
    pix (P,) int64 flat pixel index b*H*W + y*W + x. Raises PairLimitError when P > max_pairs.
    """
    n_views, n_faces = origin.shape[:2]
    nx = size[..., 0].reshape(-1)
    counts = nx * size[..., 1].reshape(-1)
    total = int(counts.sum())
    if total > max_pairs:
        raise PairLimitError(total, max_pairs)
    view = torch.arange(n_views, device=origin.device).repeat_interleave(n_faces)
    base = view * (height * width) + origin[..., 1].reshape(-1) * width + origin[..., 0].reshape(-1)
    start = torch.cumsum(counts, 0) - counts
    fid = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts, output_size=total)
    return _pair_offsets(fid, start, nx, base, width)


def _pair_offsets(fid, start, nx, base, width: int):
    """Step 3: the pair's rank inside its face box -> (ix, iy) offsets and the flat pixel index."""
    off = torch.arange(fid.numel(), device=fid.device) - start[fid]
    nxp = nx[fid]
    iy = torch.div(off, nxp, rounding_mode="floor")
    ix = off - iy * nxp
    pix = base[fid] + iy * width + ix
    return fid, ix, iy, pix


def edge_coefficients(tri_uv_px: torch.Tensor, origin: torch.Tensor) -> torch.Tensor:
    """Step 4's per-face affine coefficients, relative to each face's box origin (differentiable).

    tri_uv_px: (B, F, 3, 2) float pixels; origin: (B, F, 2) int64 box origin (x0, y0).
    Returns (B, F, 3, 7): per edge k (from vertex k to k+1) n_x, n_y, c_s, u_x, u_y, c_t, L with u the unit
    edge direction, n the unit normal pointing into the triangle, s = n.(p - a) = n.(ix, iy) + c_s,
    tau = u.(p - a) = u.(ix, iy) + c_t and L the edge length, all in pixels. Local offsets keep the
    coefficients small, so float32 does not lose the sub-pixel part of the distance.
    """
    a = tri_uv_px
    e = torch.roll(a, shifts=-1, dims=2) - a
    # Twice the signed area, (a1 - a0) x (a2 - a0); its sign turns the edge normals inwards.
    area2 = e[..., 0, 1] * e[..., 2, 0] - e[..., 0, 0] * e[..., 2, 1]
    orient = torch.where(area2 >= 0, 1.0, -1.0).to(a.dtype)
    len2 = (e * e).sum(-1)
    is_edge = len2 > _TINY_LEN2_PX2
    length = torch.sqrt(len2.clamp(min=_TINY_LEN2_PX2))
    # A point-like edge gets a fixed orthonormal frame and L = 0, so d^2 = |p - a|^2 exactly; the frames of
    # edges 0 and 1 are opposite so that a point-like triangle never has an inside.
    fallback = a.new_tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])
    u = torch.where(is_edge[..., None], e / length[..., None], fallback)
    n = torch.stack((-u[..., 1], u[..., 0]), dim=-1) * orient[..., None, None]
    w = origin[:, :, None, :].to(a.dtype) - a
    c_s = (n * w).sum(-1)
    c_t = (u * w).sum(-1)
    length = torch.where(is_edge, length, torch.zeros_like(length))
    return torch.stack((n[..., 0], n[..., 1], c_s, u[..., 0], u[..., 1], c_t, length), dim=-1)


def eval_pairs(coefs: torch.Tensor, fid: torch.Tensor, ix: torch.Tensor, iy: torch.Tensor, r2_px2: float):
    """Steps 4-5 for every candidate pair (no gradient).

    coefs: (BF, 3, 7) from ``edge_coefficients``; fid, ix, iy: (P,) int64.
    Returns signed d^2 (P,) (+ inside, - outside), the nearest edge's s and excess (P,) each, the
    nearest edge index (P,) int64 and keep (P,) bool (inside or d^2 <= r2_px2).
    """
    c = coefs[fid]
    fx = ix.to(coefs.dtype)[:, None]
    fy = iy.to(coefs.dtype)[:, None]
    s = c[..., 2] + c[..., 0] * fx + c[..., 1] * fy
    tau = c[..., 5] + c[..., 3] * fx + c[..., 4] * fy
    excess = tau - torch.minimum(tau.clamp(min=0.0), c[..., 6])
    d2k = s * s + excess * excess
    d2, k = d2k.min(dim=1)
    inside = s.amin(dim=1) > 0
    keep = inside | (d2 <= r2_px2)
    s_k = s.gather(1, k[:, None])[:, 0]
    ex_k = excess.gather(1, k[:, None])[:, 0]
    signed = torch.where(inside, d2, -d2)
    return signed, s_k, ex_k, k, keep


def grad_factors(signed: torch.Tensor, s_k: torch.Tensor, ex_k: torch.Tensor) -> torch.Tensor:
    """d(signed d^2) / d(nearest edge's s, excess-through-tau, L) per pair: (P, 3).

    signed = sign * (s^2 + excess^2); excess = tau - clamp(tau, 0, L) so d excess/d tau = 1 wherever
    excess != 0 and d excess/d L = -1 where tau > L (excess > 0).
    """
    sign = torch.where(signed > 0, 2.0, -2.0).to(signed.dtype)
    return torch.stack((sign * s_k, sign * ex_k, -sign * ex_k.clamp(min=0.0)), dim=1)


def coef_grad_rows(grad: torch.Tensor, factors: torch.Tensor, ix: torch.Tensor, iy: torch.Tensor):
    """Per-pair gradient rows (P, 7) for the nearest edge's coefficients, given d loss / d signed d^2."""
    g = grad[:, None] * factors
    fx = ix.to(g.dtype)
    fy = iy.to(g.dtype)
    gs, ge = g[:, 0], g[:, 1]
    return torch.stack((gs * fx, gs * fy, gs, ge * fx, ge * fy, ge, g[:, 2]), dim=1)


class PairLimitError(RuntimeError):
    """More candidate (pixel, face) pairs than SoftRasterConfig.max_pairs allows."""

    def __init__(self, total: int, max_pairs: int):
        super().__init__(
            f"soft rasterizer: {total} candidate (pixel, face) pairs exceed SoftRasterConfig.max_pairs="
            f"{max_pairs}. The mesh covers far more pixels than a hand crop should (too close to the camera, "
            "wrong units or intrinsics?), or sigma_px2 is too large; fix the input, lower image_size or "
            "sigma_px2, or raise max_pairs if the memory (~100 bytes per pair) is available."
        )
        self.total = total
        self.max_pairs = max_pairs


class PairSignedDist2(torch.autograd.Function):
    """coefs (BF, 3, 7) -> signed d^2 (Pk,) of the kept pairs, and their pixel / face indices.

    Non-differentiable inputs: fid, ix, iy, pix (P,) int64 candidate pairs; r2_px2 float; kernels, a
    (eval_pairs, grad_factors, coef_grad_rows) triple (eager or torch.compile'd versions).
    Outputs: signed (Pk,) float, pix_kept (Pk,) int64, fid_kept (Pk,) int64.
    """

    @staticmethod
    def forward(ctx, coefs, fid, ix, iy, pix, r2_px2, kernels):
        evaluate, factors_fn, rows_fn = kernels
        signed, s_k, ex_k, k, keep = evaluate(coefs, fid, ix, iy, r2_px2)
        idx = keep.nonzero()[:, 0]
        signed, fid, pix = signed[idx], fid[idx], pix[idx]
        ctx.save_for_backward(factors_fn(signed, s_k[idx], ex_k[idx]), fid * 3 + k[idx], ix[idx], iy[idx])
        ctx.coef_shape = coefs.shape
        ctx.rows_fn = rows_fn
        ctx.mark_non_differentiable(pix, fid)
        return signed, pix, fid

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_signed, _grad_pix, _grad_fid):
        factors, edge_index, ix, iy = ctx.saved_tensors
        rows = ctx.rows_fn(grad_signed, factors, ix, iy)
        n_rows = ctx.coef_shape[0] * ctx.coef_shape[1]
        grad = rows.new_zeros(n_rows, N_COEF).index_add_(0, edge_index, rows)
        return grad.view(ctx.coef_shape), None, None, None, None, None, None
