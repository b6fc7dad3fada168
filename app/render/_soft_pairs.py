"""Pure tensor kernels of the sparse soft rasterizer: projection, per-face tables, the (pixel, face)
candidate pairs and their signed squared distances, with a hand-written backward pass.

Pixel conventions (app/types.py): pixel (row y, column x) has its centre at image coordinates (x, y), both
integers; OpenCV pinhole u = fx X/Z + s Y/Z + cx, v = fy Y/Z + cy.

Algorithm (per view b and face f, all vectorised):
1. project the vertices; faces with a vertex at z <= znear are dropped;
2. per face, the pixel box of its projected triangle grown by the blur radius r, clipped to the image;
3. one candidate pair per pixel of each box: the pair's face by repeat_interleave, its offset (ix, iy) inside
   the box from its rank (fused into step 4's kernel);
4. per pair and edge k (a_k -> a_k+1, unit direction u_k, unit normal n_k pointing into the triangle):
   s_k = n_k . (p - a_k), tau_k = u_k . (p - a_k), both affine in (ix, iy) with per-face coefficients taken
   relative to the box origin (small numbers: float32 keeps the sub-pixel part), and
   d_k^2 = s_k^2 + (tau_k - clamp(tau_k, 0, L_k))^2, the squared distance to the edge segment;
5. d^2 = min_k d_k^2; inside = min_k s_k > 0; signed = +d^2 inside, -d^2 outside, and -inf for pairs outside
   the triangle with d^2 >= r^2 (they add exactly nothing: sigmoid(-inf) = 0).
Backward (PairSignedDist2): d^2 = |p - q|^2 with q = a + t (b - a) the nearest point of the nearest edge, so
d(d^2)/da = -2 (p - q)(1 - t) and d(d^2)/db = -2 (p - q) t (t's own derivative drops out: q is optimal).
The per-pair rows are summed per face by a sparse CSR (faces x pairs) matrix product: pairs of a face are
consecutive, so the matrix is built without sorting, and it is ~6x faster than index_add on CPU.

The kernels (face_table, pair_forward, pair_backward) are plain elementwise code on 1-D tensors so that
torch.compile fuses each into one loop; eager PyTorch runs the same code.
"""

from __future__ import annotations

import warnings

import torch

# Squared edge length (px^2) under which an edge counts as a point (its direction is undefined).
_TINY_LEN2_PX2 = 1e-12
# Face table columns: box start rank, box width nx, flat pixel index of the box origin, then per edge k at 3 + 7k:
# c_s, n_x, n_y, c_t, u_x, u_y, L with s = c_s + n.(ix, iy) and tau = c_t + u.(ix, iy).
_N_FACE_COLS = 24
# Edge table columns (row 3 f + k): u_x, u_y, n_x, n_y, 1 / L (0 for a point-like edge).
_N_EDGE_COLS = 5
# Index arithmetic runs in the float dtype of the vertices; float32 is exact below 2^24.
MAX_EXACT_INDEX = 2**24


class PairLimitError(RuntimeError):
    """More candidate (pixel, face) pairs than SoftRasterConfig.max_pairs allows."""

    def __init__(self, total: int, max_pairs: int):
        super().__init__(
            f"soft rasterizer: {total} candidate (pixel, face) pairs exceed SoftRasterConfig.max_pairs="
            f"{max_pairs}. The mesh covers far more pixels than a hand crop should (too close to the camera, "
            "wrong units or intrinsics?), or sigma_px2 is too large; fix the input, lower image_size or "
            "sigma_px2, or raise max_pairs if the memory (~60 bytes per pair) is available."
        )
        self.total = total
        self.max_pairs = max_pairs


def project_vertices(verts_cam_m: torch.Tensor, K: torch.Tensor, znear_m: float):
    """Pinhole projection.

    verts_cam_m: (B, V, 3) float, metres, camera frame (OpenCV: x right, y down, z forward).
    K: (B, 3, 3) float, pixels.
    Returns uv_px (B, V, 2) float, pixels, and in_front (B, V) bool (z > znear_m). Vertices at or behind
    znear are projected as if z = 1 m (finite values, no gradient through z) and must be masked by the caller.
    """
    z = verts_cam_m[..., 2]
    in_front = z > znear_m
    z_safe = torch.where(in_front, z, torch.ones_like(z))
    x = verts_cam_m[..., 0] / z_safe
    y = verts_cam_m[..., 1] / z_safe
    u = K[:, 0, 0, None] * x + K[:, 0, 1, None] * y + K[:, 0, 2, None]
    v = K[:, 1, 1, None] * y + K[:, 1, 2, None]
    return torch.stack((u, v), dim=-1), in_front


def _face_boxes(tri, face_ok, r_px: float, height: int, width: int):
    """Step 2: box origin (x0, y0) and size (nx, ny) per face, (BF, 2) float holding integers."""
    limit = tri.new_tensor([width, height])
    lo = torch.ceil(tri.amin(dim=1) - r_px)
    hi = torch.floor(tri.amax(dim=1) + r_px)
    # Clamp before anything else: coordinates can be huge when a vertex sits just beyond znear.
    lo = torch.minimum(lo.clamp(min=0.0), limit)
    hi = torch.minimum(hi.clamp(min=-1.0), limit - 1)
    size = (hi - lo + 1).clamp(min=0.0) * face_ok[:, None]
    return lo, size


def _edge_frames(tri):
    """Per edge: unit direction u (BF, 3, 2), inward unit normal n, length L (BF, 3), orientation (BF,)."""
    e = torch.roll(tri, shifts=-1, dims=1) - tri
    # Twice the signed area, (a1 - a0) x (a2 - a0); its sign turns the edge normals inwards.
    area2 = e[:, 0, 1] * e[:, 2, 0] - e[:, 0, 0] * e[:, 2, 1]
    orient = torch.where(area2 >= 0, 1.0, -1.0).to(tri.dtype)
    len2 = (e * e).sum(-1)
    is_edge = len2 > _TINY_LEN2_PX2
    length = torch.sqrt(len2.clamp(min=_TINY_LEN2_PX2))
    # A point-like edge gets a fixed orthonormal frame and L = 0, so d^2 = |p - a|^2 exactly; the frames of
    # edges 0 and 1 are opposite so that a point-like triangle never has an inside.
    fallback = tri.new_tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])
    u = torch.where(is_edge[..., None], e / length[..., None], fallback)
    n = torch.stack((-u[..., 1], u[..., 0]), dim=-1) * orient[:, None, None]
    return u, n, torch.where(is_edge, length, torch.zeros_like(length)), orient


def face_table(tri_uv_px, face_ok, view_index, r_px: float, height: int, width: int):
    """Steps 2 and 4's per-face data (no gradient).

    tri_uv_px: (BF, 3, 2) float pixels; face_ok: (BF,) bool; view_index: (BF,) float, the face's view b.
    Returns the face table (BF, 24), the edge table (BF * 3, 5) (see _N_FACE_COLS, _N_EDGE_COLS) and the
    pair count per face (BF,) float.
    """
    origin, size = _face_boxes(tri_uv_px, face_ok, r_px, height, width)
    counts = size[:, 0] * size[:, 1]
    u, n, length, _ = _edge_frames(tri_uv_px)
    w = origin[:, None, :] - tri_uv_px  # box origin relative to each edge's start vertex
    c_s = (n * w).sum(-1)
    c_t = (u * w).sum(-1)
    per_edge = torch.stack((c_s, n[..., 0], n[..., 1], c_t, u[..., 0], u[..., 1], length), dim=-1).flatten(1)
    base = view_index * (height * width) + origin[:, 1] * width + origin[:, 0]
    start = torch.cumsum(counts, 0) - counts
    faces = torch.cat((torch.stack((start, size[:, 0], base), dim=1), per_edge), dim=1)
    inv_len = torch.where(length > 0, 1.0 / length.clamp(min=_TINY_LEN2_PX2), torch.zeros_like(length))
    edges = torch.cat((u, n, inv_len[..., None]), dim=-1).reshape(-1, _N_EDGE_COLS)
    return faces, edges, counts


def _gather_rows(table, index):
    """table (N, C)[index] transposed to (C, P): compiled, a fused row gather; eager, index_select on the
    transposed table, whose contiguous (P,) rows keep the following eager ops fast."""
    if torch.compiler.is_compiling():
        return table[index].t()
    return table.t().contiguous().index_select(1, index)


def _less(a, b):
    """Float mask (a < b) as 0. / 1. (eager: written straight into a float tensor, 6x faster than .to())."""
    if torch.compiler.is_compiling():
        return (a < b).to(a.dtype)
    return torch.lt(a, b, out=torch.empty_like(a))


def pair_forward(faces, fid, r2_px2: float, width: int):
    """Steps 3-5 for every candidate pair (no gradient).

    faces: (BF, 24) face table; fid: (P,) int64 face of each pair, pairs of a face consecutive.
    Returns signed (P,) float px^2, pix (P,) int64 flat pixel index b*H*W + y*W + x, and for the backward
    pass the nearest edge's s, excess, tau (P,) float and its index k (P,) float (0., 1. or 2.).
    Selections use lerp with 0/1 weights (exact) rather than torch.where, which is slow in eager mode.
    """
    g = _gather_rows(faces, fid)
    off = torch.arange(fid.shape[0], device=fid.device, dtype=faces.dtype) - g[0]
    iy = torch.floor(off / g[1])
    ix = off - iy * g[1]
    pix = (g[2] + iy * width + ix).long()
    for k in range(3):
        c_s, n_x, n_y, c_t, u_x, u_y, length = g[3 + 7 * k : 10 + 7 * k]
        s = c_s + n_x * ix + n_y * iy
        tau = c_t + u_x * ix + u_y * iy
        excess = tau - torch.minimum(tau.clamp(min=0.0), length)
        d2 = s * s + excess * excess
        if k == 0:
            best_d2, best_s, best_ex, best_tau, best_k, min_s = d2, s, excess, tau, torch.zeros_like(s), s
            continue
        closer = _less(d2, best_d2)
        best_d2 = torch.minimum(best_d2, d2)
        best_s, best_ex, best_tau = (torch.lerp(b, v, closer) for b, v in ((best_s, s), (best_ex, excess),
                                                                           (best_tau, tau)))
        best_k = best_k + closer * (k - best_k)
        min_s = torch.minimum(min_s, s)
    # inside <=> min_s > 0 (degenerate triangles have min_s <= 0); the shift sends min_s = +0 outside
    signed = torch.copysign(best_d2, min_s - 1e-30)
    signed = torch.where(signed > -r2_px2, signed, float("-inf"))
    return signed, pix, best_s, best_ex, best_tau, best_k


def _one_hot(k, j: int):
    """1. where k == j, else 0. (k holds 0., 1. or 2.)."""
    return (1.0 - (k - j).abs()).clamp(min=0.0)


def pair_backward(grad_signed, signed, s, excess, tau, k, fid, edges):
    """Per-pair gradient of sum(grad_signed * signed) w.r.t. its face's vertices: (P, 6) rows
    (vertex 0 x, y, vertex 1 x, y, vertex 2 x, y); only the nearest edge's two vertices are non-zero.

    signed, s, excess, tau, k, fid: (P,) from pair_forward; edges: (BF * 3, 5) edge table.
    """
    e = _gather_rows(edges, fid * 3 + k.long())
    u_x, u_y, n_x, n_y, inv_len = e
    g2 = grad_signed * torch.copysign(grad_signed.new_tensor(2.0), signed)  # d signed / d(d^2), times 2
    r_x = excess * u_x + s * n_x  # p - q in image coordinates: d(d^2)/dq = -2 (p - q)
    r_y = excess * u_y + s * n_y
    t = (tau * inv_len).clamp(0.0, 1.0)
    g_b = -g2 * t  # on vertex k + 1
    g_a = -g2 - g_b  # on vertex k
    hot = [_one_hot(k, j) for j in range(3)]
    cols = []
    for j in range(3):
        w = hot[j] * g_a + hot[(j + 2) % 3] * g_b
        cols += [w * r_x, w * r_y]
    return torch.stack(cols, dim=1)


def shade_forward(signed, sigma_px2: float):
    """log(1 - D) per pair, D = sigmoid(signed / sigma): -softplus(signed / sigma), exact (0 for -inf)."""
    return -torch.nn.functional.softplus(signed / sigma_px2)


def shade_backward(grad_log_miss_pix, pix, signed, sigma_px2: float):
    """d loss / d signed per pair from d loss / d(sum log(1 - D)) per pixel (flat), gathered at pix."""
    return grad_log_miss_pix[pix] * (-torch.sigmoid(signed / sigma_px2) / sigma_px2)


def face_sum_matrix(counts: torch.Tensor, dtype) -> torch.Tensor:
    """(BF, P) sparse CSR matrix of ones summing the consecutive pairs of each face (the fast reduction)."""
    crow = torch.zeros(counts.shape[0] + 1, dtype=torch.int64, device=counts.device)
    torch.cumsum(counts, 0, out=crow[1:])
    n_pairs = int(crow[-1])
    col = torch.arange(n_pairs, device=counts.device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(crow, col, torch.ones(n_pairs, dtype=dtype, device=counts.device),
                                       size=(counts.shape[0], n_pairs))


class PairSignedDist2(torch.autograd.Function):
    """tri_uv_px (BF, 3, 2) -> signed d^2 (P,) of every candidate pair, and its pixel index (P,) int64.

    Other inputs (non-differentiable): face_ok (BF,) bool, view_index (BF,) float, r_px, r2_px2, height,
    width, max_pairs, kernels = (face_table, pair_forward, pair_backward) callables (eager or compiled).
    """

    @staticmethod
    def forward(ctx, tri_uv_px, face_ok, view_index, r_px, r2_px2, height, width, max_pairs, kernels):
        table_fn, forward_fn, backward_fn = kernels
        faces, edges, counts = table_fn(tri_uv_px, face_ok, view_index, r_px, height, width)
        counts = counts.long()
        total = int(counts.sum())
        if total > max_pairs:
            raise PairLimitError(total, max_pairs)
        fid = torch.repeat_interleave(torch.arange(counts.shape[0], device=counts.device), counts, output_size=total)
        signed, pix, s, excess, tau, k = forward_fn(faces, fid, r2_px2, width)
        ctx.save_for_backward(signed, s, excess, tau, k, fid, edges, counts)
        ctx.backward_fn = backward_fn
        ctx.mark_non_differentiable(pix)
        return signed, pix

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_signed, _grad_pix):
        *saved, counts = ctx.saved_tensors
        rows = ctx.backward_fn(grad_signed.contiguous(), *saved)
        grad = face_sum_matrix(counts, rows.dtype) @ rows
        return grad.view(-1, 3, 2), None, None, None, None, None, None, None, None


class LogMissSum(torch.autograd.Function):
    """signed (P,), pix (P,) -> per-pixel sum over pairs of log(1 - D), flat (n_pixels,).

    Non-differentiable inputs: pix (P,) int64, n_pixels, sigma_px2, kernels = (shade_forward, shade_backward).
    """

    @staticmethod
    def forward(ctx, signed, pix, n_pixels: int, sigma_px2: float, kernels):
        log_miss = kernels[0](signed, sigma_px2)
        ctx.save_for_backward(signed, pix)
        ctx.sigma_px2, ctx.backward_fn = sigma_px2, kernels[1]
        return log_miss.new_zeros(n_pixels).index_add_(0, pix, log_miss)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_total):
        signed, pix = ctx.saved_tensors
        return ctx.backward_fn(grad_total.contiguous(), pix, signed, ctx.sigma_px2), None, None, None, None
