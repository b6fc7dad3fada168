"""Numba kernels of the soft silhouette: the CPU fast path, one fused forward and one fused backward pass per
view, no per-pair arrays.

Same formula, conventions and truncation as _soft_pairs.py (read its docstring first):
    S(p) = 1 - prod_f (1 - D_f(p)),   D_f(p) = sigmoid(x),   x = sign_f(p) d_f(p)^2 / sigma_px2,
over the faces whose pixel box (the projected triangle grown by the blur radius r) holds p; pairs outside the
triangle at d^2 >= r^2 are left out (D := 0). Per pair, with e = exp(-|x|) in (0, 1] (one exp, no log):
    1 / (1 - D) = 1 + e^x = 1 + e (x < 0),  (1 + e) / e (x >= 0),
multiplied per pixel in float64; the miss prod (1 - D) = e^T = 1 / product, S = 1 - e^T. |x| is clamped at
-_X_FLOOR = 40: a left-out pair gets e = exp(-40) (1 + e == 1 in float32 and float64), and an inside pair's
factor stops at ~e^40, which changes only misses below e^-40 = 4e-18 (S = 1 in float64 either way). A product
past the float64 range becomes inf and the miss 0, its correctly rounded value.

Backward: with S = 1 - e^T and G = dL/dT per pixel,
    dL/dx = -G sigmoid(x),   sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0,   dx/d(d^2) = +-1/sigma,
and d(d^2)/d(vertices) as in _soft_pairs.py: the nearest point q = a + t (b - a) of the nearest edge a -> b
(first edge on ties) gives d(d^2)/da = -2 (p - q)(1 - t), d(d^2)/db = -2 (p - q) t. The pair geometry is
recomputed rather than stored, and the pixel gradients go through the pinhole projection to the vertices.

Speed: every face's whole pixel box is evaluated in one branch-free loop that the compiler vectorises (the
exp is a polynomial, _exp_neg), then multiplied into the image row by row. Projection, face set-up and the
per-pixel sums are float64; the per-pair loops run in the dtype of `proto` (float32: twice the vector width;
the pair geometry is taken relative to each face's box, so float32 keeps ~1e-6 px, and S is within ~1e-5 of
the float64 result), the float64 loops agree with the dense reference to rounding.

Arrays (numpy, C-contiguous): verts (B, V, 3) float64 metres, camera frame; faces (F, 3) int64; K (B, 3, 3)
float64 pixels; per-pixel images (B, H, W) float64; proto: an empty float32 or float64 array.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit

# Squared edge length (px^2) under which an edge counts as a point (as _soft_pairs._TINY_LEN2_PX2).
_TINY_LEN2_PX2 = 1e-12
# -|x| is clamped here: exp(-40) = 4e-18 vanishes next to 1 in float32 and float64: a clamped pair adds nothing.
_X_FLOOR = -40.0
# Face geometry row: box x0, y0, x1, y1, then per edge k at 4 + 8k: a_x, a_y (the start vertex relative to the
# box origin x0, y0), u_x, u_y, n_x, n_y, L, 1/L.
_N_GEOM = 28
# Per-face pair loops run over the box's pixel count rounded up to this (a whole number of float32 vectors, so no
# scalar remainder loop); the extra lanes fall outside the box and are ignored (forward) or weighted 0 (backward).
_LANES = 16
# Relaxed float semantics for the vectorised loops: reassociation (vector sums) and fused multiply-add only.
_FAST = {"reassoc", "contract"}
# error_model="numpy": float division by zero gives inf instead of raising (a raise blocks vectorisation).
_jit = functools.partial(njit, cache=True, nogil=True, error_model="numpy")
_jit_fast = functools.partial(njit, cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
_inline_fast = functools.partial(njit, inline="always", fastmath=_FAST, error_model="numpy")


@_inline_fast
def _exp_neg(y):
    """exp(y) for y in [_X_FLOOR, 0] (clamped) in y's dtype: (exp(y / 128))^128 with a degree-11 Taylor
    polynomial on |y / 128| <= 0.32; relative error < 1e-12 in float64, ~1e-5 in float32 (branch-free, so
    loops over it vectorise)."""
    F = type(y)
    z = min(max(y, F(_X_FLOOR)), F(0.0)) * F(1.0 / 128.0)
    p = F(1 / 39916800)
    for c in (1 / 3628800, 1 / 362880, 1 / 40320, 1 / 5040, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2, 1.0, 1.0):
        p = F(c) + z * p
    for _ in range(7):
        p = p * p
    return p


@_jit
def project_view(verts, K, znear):
    """verts (V, 3) float64 metres, K (3, 3) -> uv (V, 2) float64 pixels, in_front (V,) bool (z > znear).
    Vertices at or behind znear stay at (0, 0) (their faces are dropped)."""
    n = verts.shape[0]
    uv = np.zeros((n, 2))
    ok = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        z = verts[i, 2]
        if z > znear:
            ok[i] = True
            x, y = verts[i, 0] / z, verts[i, 1] / z
            uv[i, 0] = K[0, 0] * x + K[0, 1] * y + K[0, 2]
            uv[i, 1] = K[1, 1] * y + K[1, 2]
    return uv, ok


@_jit
def _face_row(uv, i0, i1, i2, r, height, width, row):
    """Writes face (i0, i1, i2)'s box and edge frames into row (_N_GEOM,) float64; returns its pixel count."""
    xs = (uv[i0, 0], uv[i1, 0], uv[i2, 0])
    ys = (uv[i0, 1], uv[i1, 1], uv[i2, 1])
    # Clamp in float before any int conversion: coordinates can be huge when a vertex sits just beyond znear.
    row[0] = min(max(math.ceil(min(xs) - r), 0.0), float(width))
    row[1] = min(max(math.ceil(min(ys) - r), 0.0), float(height))
    row[2] = min(max(math.floor(max(xs) + r), -1.0), float(width - 1))
    row[3] = min(max(math.floor(max(ys) + r), -1.0), float(height - 1))
    # Sign of twice the signed area (a1 - a0) x (a2 - a0): turns the edge normals inwards.
    area2 = (ys[1] - ys[0]) * (xs[0] - xs[2]) - (xs[1] - xs[0]) * (ys[0] - ys[2])
    orient = 1.0 if area2 >= 0.0 else -1.0
    for k in range(3):
        ex, ey = xs[(k + 1) % 3] - xs[k], ys[(k + 1) % 3] - ys[k]
        len2 = ex * ex + ey * ey
        if len2 > _TINY_LEN2_PX2:
            length = math.sqrt(len2)
            ux, uy, inv_len = ex / length, ey / length, 1.0 / length
        else:  # a point-like edge: fixed frames, opposite for edges 0 and 1 (such a triangle has no inside)
            length, ux, uy, inv_len = 0.0, (-1.0 if k == 1 else 1.0), 0.0, 0.0
        c = 4 + 8 * k
        row[c], row[c + 1], row[c + 2], row[c + 3] = xs[k] - row[0], ys[k] - row[1], ux, uy
        row[c + 4], row[c + 5], row[c + 6], row[c + 7] = -uy * orient, ux * orient, length, inv_len
    return int(max(row[2] - row[0] + 1.0, 0.0) * max(row[3] - row[1] + 1.0, 0.0))


@_jit
def view_geometry(verts, faces, K, r, height, width, znear):
    """One view: (geometry (F, _N_GEOM) float64, face kept (F,) bool, candidate pairs, faces dropped).
    A face is dropped when a vertex is at z <= znear."""
    uv, ok = project_view(verts, K, znear)
    n_faces = faces.shape[0]
    geom = np.zeros((n_faces, _N_GEOM))
    valid = np.zeros(n_faces, dtype=np.bool_)
    n_pairs, dropped = 0, 0
    for f in range(n_faces):
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        if not (ok[i0] and ok[i1] and ok[i2]):
            dropped += 1
            continue
        valid[f] = True
        n_pairs += _face_row(uv, i0, i1, i2, r, height, width, geom[f])
    return geom, valid, n_pairs, dropped


@_inline_fast
def _edge(row, k, px, py):
    """Edge k against the box pixel (px, py) (box coordinates, row's dtype): (s, clamped tau, d^2): signed
    distance to its line (> 0 inwards), the foot point's position along the edge clamped to [0, L], and the
    squared distance to the segment."""
    c = 4 + 8 * k
    wx, wy = px - row[c], py - row[c + 1]
    s = row[c + 4] * wx + row[c + 5] * wy
    tau = row[c + 2] * wx + row[c + 3] * wy
    clamped = min(max(tau, type(tau)(0.0)), row[c + 6])
    excess = tau - clamped
    return s, clamped, s * s + excess * excess


@_inline_fast
def _box_pixel(j, nx, inv_nx):
    """Box coordinates (px, py) of the j-th pixel (row-major, j of nx's float dtype) of a box nx pixels wide."""
    F = type(nx)
    py = np.floor((j + F(0.5)) * inv_nx)
    return j - py * nx, py


@_inline_fast
def _box_forward(row, n, inv_sigma, r2, fac):
    """Forward of one face over the first n pixels of its box (row-major, n may run past the box), in row's
    dtype: fac[j] = 1 / (1 - D) = 1 + exp(x), x clamped to <= -_X_FLOOR (1 when left out)."""
    F = row.dtype.type
    nx = row[2] - row[0] + F(1.0)
    inv_nx = F(1.0) / nx
    for j in range(n):
        px, py = _box_pixel(F(j), nx, inv_nx)
        s0, _, d0 = _edge(row, 0, px, py)
        s1, _, d1 = _edge(row, 1, px, py)
        s2, _, d2 = _edge(row, 2, px, py)
        dist2 = min(d0, min(d1, d2))
        inside = min(s0, min(s1, s2)) > F(0.0)
        keep = inside | (dist2 < r2)
        e = _exp_neg(-dist2 * inv_sigma if keep else F(_X_FLOOR))  # exp(-|x|)
        fac[j] = (F(1.0) + e) / e if inside else F(1.0) + e


@_inline_fast
def _scatter_box(prod, fac, x0, y0, nx, ny):
    """Multiplies fac (n,) into prod (H, W) over the box (x0, y0, nx, ny)."""
    for jy in range(ny):
        for jx in range(nx):
            prod[y0 + jy, x0 + jx] *= fac[jy * nx + jx]


@_jit
def _box_size(row):
    """(x0, y0, nx, ny) ints of a geometry row's box (nx or ny <= 0: empty)."""
    return int(row[0]), int(row[1]), int(row[2] - row[0] + 1.0), int(row[3] - row[1] + 1.0)


@_jit
def _padded(n):
    """n rounded up to a multiple of _LANES."""
    return (n + _LANES - 1) // _LANES * _LANES


@_jit
def _max_box(geom, valid):
    """Largest padded box pixel count over the kept faces (at least _LANES)."""
    out = 1
    for f in range(geom.shape[0]):
        if valid[f]:
            _, _, nx, ny = _box_size(geom[f])
            out = max(out, nx * ny)
    return _padded(out)


@_jit
def view_miss(geom, valid, sigma, r2, height, width, proto):
    """Forward of one view: prod over kept pairs of (1 - D) = e^T, (H, W) float64 in [0, 1] (1 where no pair
    reaches); pair loops in proto's dtype."""
    F = proto.dtype.type
    rows = geom.astype(proto.dtype)
    prod = np.ones((height, width))
    fac = np.empty(_max_box(geom, valid), dtype=proto.dtype)
    for f in range(geom.shape[0]):
        x0, y0, nx, ny = _box_size(geom[f])
        if not valid[f] or nx <= 0 or ny <= 0:
            continue
        _box_forward(rows[f], _padded(nx * ny), F(1.0 / sigma), F(r2), fac)
        _scatter_box(prod, fac, x0, y0, nx, ny)
    return 1.0 / prod


@_inline_fast
def _gather_box(image, x0, y0, nx, ny, out):
    """out[:nx * ny] = image's box (x0, y0, nx, ny), row-major; 0 up to the padded length."""
    for jy in range(ny):
        for jx in range(nx):
            out[jy * nx + jx] = image[y0 + jy, x0 + jx]
    out[nx * ny: _padded(nx * ny)] = 0


@_jit_fast
def _box_backward(row, n, inv_sigma, r2, g_box):
    """Backward of one face over the first n pixels of its box (row-major, n may run past the box: g_box must
    be 0 there), in row's dtype: g_box (n,) = dL/dT there -> dL/d(uv) of its three vertices, (g0x, g0y, g1x,
    g1y, g2x, g2y)."""
    F = row.dtype.type
    zero, one = F(0.0), F(1.0)
    g0x = g0y = g1x = g1y = g2x = g2y = zero
    ax0, ay0, ux0, uy0, il0 = row[4], row[5], row[6], row[7], row[11]
    ax1, ay1, ux1, uy1, il1 = row[12], row[13], row[14], row[15], row[19]
    ax2, ay2, ux2, uy2, il2 = row[20], row[21], row[22], row[23], row[27]
    nx = row[2] - row[0] + one
    inv_nx = one / nx
    for j in range(n):
        px, py = _box_pixel(F(j), nx, inv_nx)
        s0, c0, d0 = _edge(row, 0, px, py)
        s1, c1, d1 = _edge(row, 1, px, py)
        s2, c2, d2 = _edge(row, 2, px, py)
        dist2 = min(d0, min(d1, d2))
        inside = min(s0, min(s1, s2)) > zero
        keep = inside | (dist2 < r2)
        e = _exp_neg(-dist2 * inv_sigma)
        sig = (one if inside else e) / (one + e)
        # dL/d(d^2) = dL/dT * dT/dx * dx/d(d^2) = G * (-sigmoid) * (+-1 / sigma); times -2 for d(d^2)/dq.
        g = F(2.0) * g_box[j] * sig * inv_sigma  # (loaded unconditionally: keeps the loop vectorisable)
        g = (g if inside else -g) if keep else zero
        # Nearest edge (the first on ties): p - q and the foot point's fraction t along it.
        k0 = (d0 <= d1) & (d0 <= d2)
        k1 = (d1 < d0) & (d1 <= d2)
        k2 = (d2 < d0) & (d2 < d1)
        clamped = c0 if k0 else (c1 if k1 else c2)
        rx = px - (ax0 if k0 else (ax1 if k1 else ax2)) - clamped * (ux0 if k0 else (ux1 if k1 else ux2))
        ry = py - (ay0 if k0 else (ay1 if k1 else ay2)) - clamped * (uy0 if k0 else (uy1 if k1 else uy2))
        t = clamped * (il0 if k0 else (il1 if k1 else il2))
        ga, gb = g * (one - t), g * t  # on the edge's start and end vertex
        w0 = ga if k0 else (gb if k2 else zero)
        w1 = ga if k1 else (gb if k0 else zero)
        w2 = ga if k2 else (gb if k1 else zero)
        g0x += w0 * rx
        g0y += w0 * ry
        g1x += w1 * rx
        g1y += w1 * ry
        g2x += w2 * rx
        g2y += w2 * ry
    return g0x, g0y, g1x, g1y, g2x, g2y


@_jit
def view_uv_grad(geom, valid, faces, n_verts, g_log_miss, sigma, r2, proto):
    """Backward of one view: g_log_miss (H, W) = dL/dT per pixel -> dL/d(uv) (V, 2) float64; pair loops in
    proto's dtype."""
    F = proto.dtype.type
    rows = geom.astype(proto.dtype)
    guv = np.zeros((n_verts, 2))
    g_box = np.empty(_max_box(geom, valid), dtype=proto.dtype)
    for f in range(geom.shape[0]):
        x0, y0, nx, ny = _box_size(geom[f])
        if not valid[f] or nx <= 0 or ny <= 0:
            continue
        _gather_box(g_log_miss, x0, y0, nx, ny, g_box)
        g = _box_backward(rows[f], _padded(nx * ny), F(1.0 / sigma), F(r2), g_box)
        for k in range(3):
            guv[faces[f, k], 0] += g[2 * k]
            guv[faces[f, k], 1] += g[2 * k + 1]
    return guv


@_jit
def projection_grad(verts, K, znear, guv):
    """dL/d(uv) (V, 2) -> dL/d(verts) (V, 3) through u = fx X/Z + s Y/Z + cx, v = fy Y/Z + cy (0 behind znear)."""
    out = np.zeros((verts.shape[0], 3))
    for i in range(verts.shape[0]):
        z = verts[i, 2]
        if not z > znear:
            continue
        gx = guv[i, 0] * K[0, 0] / z
        gy = (guv[i, 0] * K[0, 1] + guv[i, 1] * K[1, 1]) / z
        out[i, 0], out[i, 1] = gx, gy
        out[i, 2] = -(gx * verts[i, 0] + gy * verts[i, 1]) / z
    return out


@_jit
def silhouette_forward(verts, faces, K, sigma, r, r2, height, width, znear, max_pairs, proto):
    """All views: (silhouette S (B, H, W) in proto's dtype, miss (B, H, W) float64 = prod (1 - D) = 1 - S,
    geometry (B, F, _N_GEOM) and face kept (B, F) for silhouette_backward, faces dropped (B,) int64, candidate
    pairs). When the candidate pairs of all views exceed max_pairs nothing is rasterized and S, miss are
    (0, H, W)."""
    n_views, n_faces = verts.shape[0], faces.shape[0]
    geom = np.empty((n_views, n_faces, _N_GEOM))
    valid = np.empty((n_views, n_faces), dtype=np.bool_)
    dropped = np.zeros(n_views, dtype=np.int64)
    n_pairs = 0
    for b in range(n_views):
        geom[b], valid[b], count, dropped[b] = view_geometry(verts[b], faces, K[b], r, height, width, znear)
        n_pairs += count
    if n_pairs > max_pairs:
        empty = np.zeros((0, height, width))
        return empty.astype(proto.dtype), empty, geom, valid, dropped, n_pairs
    miss = np.empty((n_views, height, width))
    for b in range(n_views):
        miss[b] = view_miss(geom[b], valid[b], sigma, r2, height, width, proto)
    return (1.0 - miss).astype(proto.dtype), miss, geom, valid, dropped, n_pairs


@_jit
def silhouette_backward(verts, faces, K, geom, valid, sigma, r2, znear, grad_sil, miss):
    """grad_sil (B, H, W) = dL/dS (float32 or float64; the pair loops run in its dtype), with
    silhouette_forward's miss, geometry and face flags -> dL/d(verts) (B, V, 3) float64."""
    out = np.zeros(verts.shape)
    g_log_miss = np.empty(miss.shape[1:])
    for b in range(verts.shape[0]):
        for i in range(g_log_miss.shape[0]):  # S = 1 - e^T: dL/dT = -dL/dS e^T
            for j in range(g_log_miss.shape[1]):
                g_log_miss[i, j] = -grad_sil[b, i, j] * miss[b, i, j]
        guv = view_uv_grad(geom[b], valid[b], faces, verts.shape[1], g_log_miss, sigma, r2, grad_sil[0, :0, 0])
        out[b] = projection_grad(verts[b], K[b], znear, guv)
    return out
