"""The texture stage's per-texel work as a few numba-compiled loops (TextureConfig.kernels = 'numba').

The same steps and numbers as the torch reference (projection.py, visibility.py, update.py, fill.py,
accumulator.py), but each loop visits a texel once and keeps its intermediate values in registers, instead of
one pass over 10^5 texels per tensor operation. Slots are grouped by face (layout.py), so the loops run over
faces and, per face and view, over the face's slots with the corners' values hoisted out. Pure functions of
their arrays: no I/O, no threads, no state beyond the arrays passed in (updated in place where documented).

1. ``vertex_columns``: per vertex (V ~ 800) and view, homogeneous pixel coordinates (u, v, w) = K (R p + t)
   and the view cosine of the area-weighted vertex normal (projection.vertex_columns), and each view's extent.
2. ``facing_faces``: faces with a corner facing some view (layout.front_slots).
3. ``project_slots``: every slot of a facing face placed on the posed mesh (its barycentric combination of
   the corners' (u, v, w): perspective-correct), projected, its position and depth-grid cell kept for step 5
   and its depth z-buffered into the cell (visibility.splat_zbuffer).
4. ``depth_thresholds``: the per-cell threshold (visibility.threshold).
5. ``update_slots``: per face and view, ``face_view_weights`` gives each of the face's slots its depth test
   and grazing weight (visibility.view_weights; reading step 3's projections costs less than projecting
   again, -0.3 to -0.5 ms at 512^2); then per slot: the bilinear colour straight from the uint8 images
   (projection.sample_views), the stereo check and fusion (projection.fuse_views), the thesis 4.2.5 update of
   the slot's state (update.update_texels) and its new colour and confidence written into the published
   image, with the outside-chart texels of the band that copy it (accumulator.texture).
6. ``publish_all``: the whole image from the state (after a fill, reset or load), in texel order.
7. Fill (fill.py): ``seen_vertex_colours``, ``dilate_vertex_colours``, ``interpolate_fill``.
``slot_weights`` gives step 5's per-view weights for inspection and tests.

Arrays (all C-contiguous): verts (V, 3) float32 metres, left-camera frame; faces (F, 3) int64; R (B, 3, 3),
t (B, 3), K (B, 3, 3) float32 per view (B = 1 or 2); cols (V, B, 4) float32 = (u, v, w, cos) per vertex and
view; face_corner (F, 3) int64 each face's corners, bary (N, 3) float32 each slot's barycentrics on them,
face_start (F + 1,) int64 (face f holds slots face_start[f] .. face_start[f + 1] - 1); depth grids (B, Gh, Gw)
float32 metres, cell (c, r) of view b covers image cells origin[b] + (c, r) (visibility.GridFrame); images
(H, W, 3) uint8; state rgb / pi_old (3, N) float32 in [0, 1], count (N,) float32; published image (S * S, 3)
float32 and weight (S * S,) float32, indexed by flat texel (row * S + col) with int32 texel indices.

Floating point: float32 throughout, operations in the reference's order, no fast-math (inf marks empty cells),
so weights match the reference exactly in practice and colours within rounding (tests/app/texture/
test_fused.py). Hot helpers that must not branch unpredictably use min() rather than if (the z-buffer).

Compilation: ``cache=True`` writes the machine code next to this file (__pycache__, or NUMBA_CACHE_DIR), so
only the first process on a machine compiles (7-15 s for all loops on the project's loaded 2-core CPU); later
processes load it in ~0.3-0.4 s on the first call (docs/TEXTURE.md). Only the two bilinear helpers are inlined
at numba level (10 % faster sampling); inlining more doubled the compile time for no measurable gain.
``python -m app.texture warm-up`` fills the cache; ``TextureAccumulator.warm_up`` makes the first call before a
live loop.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}
_F32 = np.float32


@nb.njit(**_JIT)
def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) float32 unit area-weighted vertex normals (faces wind counter-clockwise seen from outside)."""
    normals = np.zeros(verts.shape, np.float32)
    for f in range(faces.shape[0]):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        e1x, e1y, e1z = verts[b, 0] - verts[a, 0], verts[b, 1] - verts[a, 1], verts[b, 2] - verts[a, 2]
        e2x, e2y, e2z = verts[c, 0] - verts[a, 0], verts[c, 1] - verts[a, 1], verts[c, 2] - verts[a, 2]
        nx, ny, nz = e1y * e2z - e1z * e2y, e1z * e2x - e1x * e2z, e1x * e2y - e1y * e2x
        for k in range(3):
            v = faces[f, k]
            normals[v, 0] += nx
            normals[v, 1] += ny
            normals[v, 2] += nz
    for v in range(verts.shape[0]):
        n = max(math.sqrt(normals[v, 0] ** 2 + normals[v, 1] ** 2 + normals[v, 2] ** 2), 1e-12)
        normals[v, 0] /= n
        normals[v, 1] /= n
        normals[v, 2] /= n
    return normals


@nb.njit(**_JIT)
def vertex_columns(verts: np.ndarray, faces: np.ndarray, R: np.ndarray, t: np.ndarray, K: np.ndarray):
    """Step 1: cols (V, B, 4) float32 (u, v, w, cos), verts_cam (B, V, 3) float32 metres per view, and bounds
    (B, 5) float32 per view: the projected vertices' (x_min, y_min, x_max, y_max) pixels (x = u / w, y = v / w)
    and the nearest vertex depth w (metres). cos = normal . (camera centre - vertex) / |camera centre - vertex|."""
    normals = vertex_normals(verts, faces)
    n_views, n_verts = R.shape[0], verts.shape[0]
    cols = np.empty((n_verts, n_views, 4), np.float32)
    verts_cam = np.empty((n_views, n_verts, 3), np.float32)
    bounds = np.empty((n_views, 5), np.float32)
    p, n = np.empty(3, np.float32), np.empty(3, np.float32)
    for b in range(n_views):
        bounds[b, 0], bounds[b, 1], bounds[b, 4] = np.inf, np.inf, np.inf
        bounds[b, 2], bounds[b, 3] = -np.inf, -np.inf
        for v in range(n_verts):
            for i in range(3):
                p[i] = R[b, i, 0] * verts[v, 0] + R[b, i, 1] * verts[v, 1] + R[b, i, 2] * verts[v, 2] + t[b, i]
                n[i] = R[b, i, 0] * normals[v, 0] + R[b, i, 1] * normals[v, 1] + R[b, i, 2] * normals[v, 2]
                verts_cam[b, v, i] = p[i]
            dist = max(math.sqrt(p[0] ** 2 + p[1] ** 2 + p[2] ** 2), 1e-9)
            for i in range(3):
                cols[v, b, i] = K[b, i, 0] * p[0] + K[b, i, 1] * p[1] + K[b, i, 2] * p[2]
            cols[v, b, 3] = -(p[0] * n[0] + p[1] * n[1] + p[2] * n[2]) / dist
            x, y = cols[v, b, 0] / cols[v, b, 2], cols[v, b, 1] / cols[v, b, 2]
            bounds[b, 0], bounds[b, 1] = min(bounds[b, 0], x), min(bounds[b, 1], y)
            bounds[b, 2], bounds[b, 3] = max(bounds[b, 2], x), max(bounds[b, 3], y)
            bounds[b, 4] = min(bounds[b, 4], cols[v, b, 2])
    return cols, verts_cam, bounds


@nb.njit(**_JIT)
def facing_faces(cols: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Step 2: (F,) bool, True where a corner of the face has a view cosine > 0 in some view."""
    out = np.zeros(faces.shape[0], np.bool_)
    for f in range(faces.shape[0]):
        for k in range(3):
            for b in range(cols.shape[1]):
                if cols[faces[f, k], b, 3] > 0:
                    out[f] = True
    return out


@nb.njit(**_JIT)
def _corner_columns(cols, face_corner, f, b, k):
    """Channel k of view b's columns at face f's three corners (in face_corner's order)."""
    return cols[face_corner[f, 0], b, k], cols[face_corner[f, 1], b, k], cols[face_corner[f, 2], b, k]


@nb.njit(**_JIT)
def _interp(bary, i, c):
    """Slot i's barycentric combination of one channel's corner values c = (c0, c1, c2)."""
    return bary[i, 0] * c[0] + bary[i, 1] * c[1] + bary[i, 2] * c[2]


@nb.njit(**_JIT)
def _cell(x, y, inv_cell, col_off, row_off, gw, gh):
    """Flat cell index (row * Gw + col) of image point (x, y) in a view's grid, clamped into the grid."""
    col = min(max(math.floor(x * inv_cell + col_off), 0.0), gw - 1.0)
    row = min(max(math.floor(y * inv_cell + row_off), 0.0), gh - 1.0)
    return nb.uint64(col) + nb.uint64(row) * nb.uint64(gw)


@nb.njit(**_JIT)
def project_slots(facing, face_start, face_corner, bary, cols, cell_args, pos, cells, zbuf, splat) -> None:
    """Step 3: every slot i of the facing (F,) bool faces placed on the posed mesh and projected into each view
    b: pos[b, i] = (x_px, y_px, z_m) float32, cells[b, i] = its flat depth-grid cell (int32, row * Gw + col,
    clamped into the grid); with ``splat``, zbuf (B, Gh, Gw) float32 (filled with inf by the caller) takes the
    nearest depth of the slots in each cell (visibility.splat_zbuffer), else it is not touched. face_corner
    (F, 3) int64: each face's corners in the order of its slots' barycentrics; cell_args = (inv_cell float32
    = 1 / cell_px, col_off / row_off (B,) float32 = 0.5 / cell_px - grid origin (image cells), Gw, Gh):
    cell = floor(x_px * inv_cell + off). The update pass reads pos / cells instead of projecting again."""
    inv_cell, col_off, row_off, gw, gh = cell_args
    n_views = cols.shape[1]
    flat = zbuf.reshape(n_views, zbuf.shape[1] * zbuf.shape[2])
    for b in range(n_views):
        for f in range(facing.shape[0]):
            if not facing[f]:
                continue
            u = _corner_columns(cols, face_corner, f, b, 0)
            v = _corner_columns(cols, face_corner, f, b, 1)
            w = _corner_columns(cols, face_corner, f, b, 2)
            for i in range(nb.uint64(face_start[f]), nb.uint64(face_start[f + 1])):
                z = _interp(bary, i, w)
                inv_z = _F32(1.0) / z
                x, y = _interp(bary, i, u) * inv_z, _interp(bary, i, v) * inv_z
                c = _cell(x, y, inv_cell, col_off[b], row_off[b], gw, gh)
                pos[b, i, 0], pos[b, i, 1], pos[b, i, 2] = x, y, z
                cells[b, i] = c
                if splat:
                    flat[b, c] = min(flat[b, c], z)  # branch-free: whether a texel is nearer is unpredictable


@nb.njit(**_JIT)
def _min3(grid: np.ndarray) -> np.ndarray:
    """(B, Gh, Gw) minimum over each cell's 3 x 3 neighbourhood clipped at the grid's edges (separable: along
    rows, then along columns)."""
    n_views, gh, gw = grid.shape
    rows = np.empty_like(grid)
    out = np.empty_like(grid)
    for b in range(n_views):
        for r in range(gh):
            rows[b, r, 0] = min(grid[b, r, 0], grid[b, r, 1])
            for c in range(1, gw - 1):
                rows[b, r, c] = min(grid[b, r, c - 1], grid[b, r, c], grid[b, r, c + 1])
            rows[b, r, gw - 1] = min(grid[b, r, gw - 2], grid[b, r, gw - 1])
        for c in range(gw):
            out[b, 0, c] = min(rows[b, 0, c], rows[b, 1, c])
            out[b, gh - 1, c] = min(rows[b, gh - 2, c], rows[b, gh - 1, c])
        for r in range(1, gh - 1):
            for c in range(gw):
                out[b, r, c] = min(rows[b, r - 1, c], rows[b, r, c], rows[b, r + 1, c])
    return out


@nb.njit(**_JIT)
def depth_thresholds(zbuf: np.ndarray, first: np.ndarray, stop: np.ndarray, empty_radius: int) -> np.ndarray:
    """Step 4: (B, Gh, Gw) float32 threshold per cell from the z-buffer (inf = empty; Gh, Gw >= 3; cells outside
    the image are emptied first, in place): the nearest depth of the 3 x 3 neighbourhood, or -inf within
    empty_radius cells of an empty cell. first / stop (B, 2) int64: grid columns / rows [first, stop) lie inside
    the image."""
    n_views, gh, gw = zbuf.shape
    empty = np.empty_like(zbuf)  # -1 where empty, else 0: a window minimum < 0 finds an empty cell
    for b in range(n_views):
        for r in range(gh):
            row_inside = first[b, 1] <= r and r < stop[b, 1]
            for c in range(gw):
                if not (row_inside and first[b, 0] <= c and c < stop[b, 0]):
                    zbuf[b, r, c] = np.inf
                empty[b, r, c] = -1.0 if zbuf[b, r, c] == np.inf else 0.0
    thr = _min3(zbuf)
    for _ in range(empty_radius):  # clipped (2 r + 1)^2 windows compose from r clipped 3 x 3 ones
        empty = _min3(empty)
    for b in range(n_views):
        for r in range(gh):
            for c in range(gw):
                if empty[b, r, c] < 0:
                    thr[b, r, c] = -np.inf
    return thr


@nb.njit(inline="always")
def _bilinear(img, x, y):
    """(r, g, b) float32 in [0, 1]: the uint8 image (H, W, 3) at pixel (x, y) / 255, bilinear between pixel
    centres (at integers), clamped into the image."""
    h, w = img.shape[0], img.shape[1]
    x = min(max(x, _F32(0.0)), _F32(w - 1))
    y = min(max(y, _F32(0.0)), _F32(h - 1))
    x0, y0 = min(nb.uint64(x), nb.uint64(w - 2)), min(nb.uint64(y), nb.uint64(h - 2))
    ax, ay = x - _F32(x0), y - _F32(y0)
    return (_lerp(img, x0, y0, 0, ax, ay), _lerp(img, x0, y0, 1, ax, ay), _lerp(img, x0, y0, 2, ax, ay))


@nb.njit(inline="always")
def _lerp(img, x0, y0, k, ax, ay):
    """Channel k between the pixels (x0, y0) .. (x0 + 1, y0 + 1) at fractions (ax, ay), / 255."""
    top = img[y0, x0, k] * (_F32(1.0) - ax) + img[y0, x0 + 1, k] * ax
    bottom = img[y0 + 1, x0, k] * (_F32(1.0) - ax) + img[y0 + 1, x0 + 1, k] * ax
    return (top * (_F32(1.0) - ay) + bottom * ay) * _F32(1.0 / 255.0)


@nb.njit(**_JIT)
def face_view_weights(bary, s0, s1, cols, face_corner, f, b, pos, cells, thr, slope, params, out) -> bool:
    """Steps 3-4 of visibility.py for the slots s0 .. s1 - 1 of face f in view b (projected by project_slots
    into pos / cells): out[0, j] = weight (the grazing weight times the depth test, 0 = not seen), out[1, j],
    out[2, j] = image (x, y) of slot s0 + j. thr (Gh * Gw,) float32; slope float32 = 1.5 cell_px / f; params
    = (cos_min, depth_tol_m, max_tan) float32. Returns whether any weight is > 0."""
    cos_min, depth_tol, max_tan = params
    cc = _corner_columns(cols, face_corner, f, b, 3)
    # Every slot's cosine interpolates the corners' (barycentrics in [0, 1], summing to 1 within 2e-7): when
    # all corners are below cos_min by more than the rounding, no slot gets weight.
    if max(cc[0], cc[1], cc[2]) < cos_min - _F32(1e-5):
        return False
    any_seen = False
    for i in range(s0, s1):
        j = i - s0
        out[0, j] = _F32(0.0)
        cos = _interp(bary, i, cc)
        grazing = min(max((cos - cos_min) / (_F32(1.0) - cos_min), _F32(0.0)), _F32(1.0))
        if grazing <= 0:
            continue
        z = pos[b, i, 2]
        behind = z - thr[cells[b, i]]
        if behind > depth_tol + z * slope * max_tan:  # fails whatever the slope term (the usual occluded case)
            continue
        if behind > depth_tol:  # passes without the slope term otherwise (the usual visible case)
            c = max(cos, _F32(1e-3))
            tan = min(math.sqrt(max(_F32(1.0) - c * c, _F32(0.0))) / c, max_tan)
            if behind > depth_tol + z * slope * tan:
                continue
        out[0, j], out[1, j], out[2, j] = grazing, pos[b, i, 0], pos[b, i, 1]
        any_seen = True
    return any_seen


@nb.njit(**_JIT)
def _write_texel(i, rgb, count, index, band_start, band_texel, image, weight) -> None:
    """Publish slot i's colour (clamped to [0, 1]) and confidence at its texel and at the outside texels within
    the band that copy it."""
    r = min(max(rgb[0, i], _F32(0.0)), _F32(1.0))
    g = min(max(rgb[1, i], _F32(0.0)), _F32(1.0))
    b = min(max(rgb[2, i], _F32(0.0)), _F32(1.0))
    t = index[i]
    image[t, 0], image[t, 1], image[t, 2] = r, g, b
    weight[t] = count[i]
    for j in range(band_start[i], band_start[i + 1]):
        o = band_texel[j]
        image[o, 0], image[o, 1], image[o, 2] = r, g, b


@nb.njit(**_JIT)
def _update_channel(i, k, pi, first, rgb, pi_old) -> None:
    """The thesis 4.2.5 update of channel k of slot i with its new projection pi where Phi = 1."""
    gamma = _F32(1.0) - abs(pi - pi_old[k, i])  # first line (Phi = 1)
    rgb[k, i] = pi if first else rgb[k, i] + gamma * (pi - rgb[k, i])  # second line: T + gamma (Pi - T)
    pi_old[k, i] = pi


@nb.njit(**_JIT)
def update_slots(facing, face_start, face_corner, bary, cols, pos, cells, thr, slope, params, stereo_tol, left,
                 right, rgb, pi_old, count, index, band_start, band_texel, image, weight) -> int:
    """Step 5 (see the module docstring) for every slot of the facing (F,) bool faces; updates rgb, pi_old,
    count, image and weight in place and returns the number of slots seen for the first time.

    pos (B, N, 3) / cells (B, N): the slots' projections (project_slots); thr (B, Gh * Gw) float32;
    slope (B,) float32 = 1.5 cell_px / f; params: (cos_min, depth_tol_m, max_tan) float32; stereo_tol float32;
    left / right: the images of views 0 and 1 (right is unused when B = 1); band_start (N + 1,) int32 /
    band_texel (K,) int32: the outside texels slot i's colour is copied to."""
    n_views = cols.shape[1]
    longest = 0
    for f in range(facing.shape[0]):
        longest = max(longest, face_start[f + 1] - face_start[f])
    seen = np.zeros((2, 3, longest), np.float32)  # per view: weight, x, y of the face's slots
    zero = _F32(0.0)
    n_first = 0
    for f in range(facing.shape[0]):
        if not facing[f]:
            continue
        s0, s1 = nb.uint64(face_start[f]), nb.uint64(face_start[f + 1])
        active = 0
        for b in range(n_views):
            if face_view_weights(bary, s0, s1, cols, face_corner, f, b, pos, cells, thr[b], slope[b], params,
                                 seen[b]):
                active |= 1 << b
        if active == 0:
            continue
        for i in range(s0, s1):
            j = i - s0
            w0 = seen[0, 0, j] if active & 1 else zero
            w1 = seen[1, 0, j] if active & 2 else zero
            r0 = g0 = b0 = r1 = g1 = b1 = zero
            if w0 > 0:
                r0, g0, b0 = _bilinear(left, seen[0, 1, j], seen[0, 2, j])
            if w1 > 0:
                r1, g1, b1 = _bilinear(right, seen[1, 1, j], seen[1, 2, j])
                if w0 > 0 and max(abs(r0 - r1), abs(g0 - g1), abs(b0 - b1)) > stereo_tol:
                    continue  # the two views show different surfaces: not written this frame
            if w0 + w1 <= 0:
                continue
            first = count[i] == 0  # the first observation sets T = Pi (update.py)
            n_first += first
            count[i] += 1
            inv_total = _F32(1.0) / (w0 + w1)  # Pi: the views' colours weighted (projection.fuse_views)
            _update_channel(i, 0, (r0 * w0 + r1 * w1) * inv_total, first, rgb, pi_old)
            _update_channel(i, 1, (g0 * w0 + g1 * w1) * inv_total, first, rgb, pi_old)
            _update_channel(i, 2, (b0 * w0 + b1 * w1) * inv_total, first, rgb, pi_old)
            _write_texel(i, rgb, count, index, band_start, band_texel, image, weight)
    return n_first


@nb.njit(**_JIT)
def publish_all(rgb, fill, count, index, gather_src, image, weight) -> None:
    """Step 6: every texel t of the image (S * S, 3) shows slot gather_src[t]'s colour (int32 (S * S,): the
    texel's own slot inside the charts, the nearest covered texel's outside): rgb (3, N) where count (N,) > 0,
    else fill (3, N), clamped to [0, 1]; weight (S * S,) = count inside the charts, 0 outside. Written in
    texel order (sequential writes; the slots' colours are gathered)."""
    shown = np.empty((index.shape[0], 3), np.float32)
    for i in range(index.shape[0]):
        src = rgb if count[i] > 0 else fill
        for k in range(3):
            shown[i, k] = min(max(src[k, i], _F32(0.0)), _F32(1.0))
    for t in range(gather_src.shape[0]):
        i = gather_src[t]
        image[t, 0], image[t, 1], image[t, 2] = shown[i, 0], shown[i, 1], shown[i, 2]
        weight[t] = count[i] if index[i] == t else _F32(0.0)


@nb.njit(**_JIT)
def seen_vertex_colours(face_start, face_corner, bary, rgb, count, n_verts: int):
    """Fill step 1 (fill.seen_vertex_colours): (V, 3) float32 mean colour of the seen slots (count > 0) around
    each vertex, weighted by their barycentrics on it, and (V,) bool whether it has any."""
    total = np.zeros((n_verts, 4), np.float32)
    for f in range(face_corner.shape[0]):
        for i in range(face_start[f], face_start[f + 1]):
            if count[i] > 0:
                for c in range(3):
                    v, w = face_corner[f, c], bary[i, c]
                    for k in range(3):
                        total[v, k] += rgb[k, i] * w
                    total[v, 3] += w
    colour = np.zeros((n_verts, 3), np.float32)
    for v in range(n_verts):
        if total[v, 3] > 0:
            for k in range(3):
                colour[v, k] = total[v, k] / total[v, 3]
    return colour, total[:, 3] > 0


@nb.njit(**_JIT)
def dilate_vertex_colours(colour, known, adj_start, adj, iterations: int) -> None:
    """Fill step 2 (fill.dilate_vertex_colours), in place: vertices not known (V,) bool take the mean colour
    of their known neighbours (adj[adj_start[v]:adj_start[v + 1]], int64), ring after ring, at most
    ``iterations`` rings. The colours grown in a ring are used from the next ring on."""
    n_verts = colour.shape[0]
    grown = np.zeros(n_verts, np.bool_)
    for _ in range(iterations):
        n_grown = 0
        for v in range(n_verts):
            if known[v]:
                continue
            n, r, g, b = 0, _F32(0.0), _F32(0.0), _F32(0.0)
            for e in range(adj_start[v], adj_start[v + 1]):
                u = adj[e]
                if known[u]:
                    n += 1
                    r, g, b = r + colour[u, 0], g + colour[u, 1], b + colour[u, 2]
            if n > 0:
                colour[v, 0], colour[v, 1], colour[v, 2] = r / _F32(n), g / _F32(n), b / _F32(n)
                grown[v] = True
                n_grown += 1
        if n_grown == 0:
            break
        for v in range(n_verts):
            known[v] |= grown[v]
            grown[v] = False


@nb.njit(**_JIT)
def interpolate_fill(face_start, face_corner, bary, colour, fill) -> None:
    """Fill step 3: fill (3, N) = each slot's barycentric combination of its face's vertex colours (V, 3)."""
    for f in range(face_corner.shape[0]):
        a, b, c = face_corner[f, 0], face_corner[f, 1], face_corner[f, 2]
        for i in range(face_start[f], face_start[f + 1]):
            for k in range(3):
                fill[k, i] = bary[i, 0] * colour[a, k] + bary[i, 1] * colour[b, k] + bary[i, 2] * colour[c, k]


@nb.njit(**_JIT)
def slot_weights(facing, face_start, face_corner, bary, cols, pos, cells, thr, slope, params, out) -> None:
    """For inspection and tests: out (B, N) float32 (zeroed by the caller) = each slot's weight per view, as
    update_slots computes it (face_view_weights over the facing faces)."""
    longest = 0
    for f in range(facing.shape[0]):
        longest = max(longest, face_start[f + 1] - face_start[f])
    seen = np.zeros((3, longest), np.float32)
    for f in range(facing.shape[0]):
        if not facing[f]:
            continue
        s0, s1 = nb.uint64(face_start[f]), nb.uint64(face_start[f + 1])
        for b in range(cols.shape[1]):
            if face_view_weights(bary, s0, s1, cols, face_corner, f, b, pos, cells, thr[b], slope[b], params, seen):
                for i in range(s0, s1):
                    out[b, i] = seen[0, i - s0]
