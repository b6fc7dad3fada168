"""One stereo update through the compiled loops of jit.py (TextureConfig.kernels = 'numba'), step by step.

``SlotTopology`` holds everything that depends only on the hand model's UV layout (computed once per
accumulator); ``place`` -> ``depth_grid`` -> ``write`` is one update, the same steps and numbers as the torch
reference path (accumulator.py ``geometry`` and ``update``; tests/app/texture/test_fused.py compares them).
The steps are separate functions so that benchmarks/bench_texture.py can time them.

Arrays: as in jit.py. Cameras: ``CameraSet`` (the views of a calibration, float32 numpy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from app.texture import jit
from app.texture.fill import vertex_adjacency
from app.texture.layout import TexelLayout
from app.texture.visibility import NEIGHBOURHOOD_CELLS, GridFrame, auto_cell_px, raster_zbuffer


@dataclass(frozen=True)
class SlotTopology:
    """The layout as the compiled loops read it. faces (F, 3) int64; face_corner (F, 3) int64 each face's corners
    in the order of its slots' barycentrics bary (N, 3) float32 (the rows of layout.interp, columns sorted by
    vertex); face_start (F + 1,) int64: face f holds slots face_start[f] .. face_start[f + 1] - 1; index
    (N,) int32 flat texel of each slot; band_start (N + 1,) int32 / band_texel (K,) int32: the outside texels
    within layout.BAND_TEXELS of a chart that copy slot i are band_texel[band_start[i]:band_start[i + 1]];
    gather_src (S * S,) int32: the slot each texel shows (layout.gather_src); adj_start (V + 1,) int64 / adj
    (E,) int64: the mesh's vertex neighbours (CSR of fill.vertex_adjacency). Texel indices are int32 (S * S <
    2^31): half the memory the per-texel loops stream through."""

    faces: np.ndarray
    face_corner: np.ndarray
    bary: np.ndarray
    face_start: np.ndarray
    index: np.ndarray
    band_start: np.ndarray
    band_texel: np.ndarray
    gather_src: np.ndarray
    adj_start: np.ndarray
    adj: np.ndarray


def _by_source(texels: np.ndarray, src: np.ndarray, n_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR (start (N + 1,), texel (K,), int32) of the texels (K,) grouped by the slot src (K,) they copy."""
    order = np.argsort(src, kind="stable")
    start = np.searchsorted(src[order], np.arange(n_slots + 1)).astype(np.int32)
    return start, texels[order].astype(np.int32)


def slot_topology(layout: TexelLayout) -> SlotTopology:
    """The compiled loops' view of a layout (once per accumulator)."""
    faces = np.ascontiguousarray(layout.faces, np.int64)
    face_corner = np.sort(faces, axis=1)
    if not np.array_equal(layout.interp.col_indices().view(-1, 3).numpy(), face_corner[layout.face]):
        raise ValueError("texel layout: a slot's interpolation columns are not its face's corners")
    bary = np.ascontiguousarray(layout.interp.values().view(-1, 3).numpy(), np.float32)
    band = _by_source(layout.band, layout.gather_src[layout.band], layout.n_slots)
    adjacency = vertex_adjacency(faces, layout.n_verts)
    return SlotTopology(faces, face_corner, bary, np.ascontiguousarray(layout.face_start, np.int64),
                        layout.index.astype(np.int32), *band, layout.gather_src.astype(np.int32),
                        adjacency.crow_indices().numpy(), adjacency.col_indices().numpy())


@dataclass(frozen=True)
class CameraSet:
    """The views of a calibration: R (B, 3, 3), t (B, 3), K (B, 3, 3) float32 (T_cam_left's rotation and
    translation, intrinsics); size_wh (B, 2) int64 image (width, height); views: which views (0 left, 1 right)."""

    R: np.ndarray
    t: np.ndarray
    K: np.ndarray
    size_wh: np.ndarray
    views: tuple[int, ...]

    def subset(self, views: list[int]) -> CameraSet:
        pick = list(views)
        return CameraSet(np.ascontiguousarray(self.R[pick]), np.ascontiguousarray(self.t[pick]),
                         np.ascontiguousarray(self.K[pick]), self.size_wh[pick], tuple(self.views[i] for i in pick))


def camera_set(T_cam_left: np.ndarray, K: np.ndarray, size_wh: np.ndarray) -> CameraSet:
    """CameraSet of both views from accumulator.stereo_views' arrays ((2, 4, 4), (2, 3, 3), (2, 2))."""
    T = np.asarray(T_cam_left, np.float32)
    return CameraSet(np.ascontiguousarray(T[:, :3, :3]), np.ascontiguousarray(T[:, :3, 3]),
                     np.ascontiguousarray(K, np.float32), np.asarray(size_wh, np.int64), (0, 1))


def slot_buffers(n_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """The per-slot projection buffers an accumulator keeps between updates (allocated once): (2, N, 3) float32
    (x_px, y_px, z_m) and (2, N) int32 depth-grid cells per view; each update writes and reads only the slots of
    its facing faces (jit.project_slots, jit.update_slots)."""
    return np.zeros((2, n_slots, 3), np.float32), np.zeros((2, n_slots), np.int32)


@dataclass(frozen=True)
class FusedGeometry:
    """Step 1-2 of one frame: cameras (the usable views, B); cols (V, B, 4) float32; verts_cam (B, V, 3)
    float32; facing (F,) bool; grid: the depth grids' GridFrame (numpy origin / image_cells (B, 2) int64);
    cell_args: (inv_cell float32, col_off (B,) float32, row_off (B,) float32, Gw, Gh) for jit's cell index;
    slope (B,) float32 = 1.5 cell_px / f; pos (B, N, 3) float32 / cells (B, N) int32: where depth_grid puts
    the slots' projections for write (views of the accumulator's slot_buffers)."""

    cameras: CameraSet
    cols: np.ndarray
    verts_cam: np.ndarray
    facing: np.ndarray
    grid: GridFrame
    cell_args: tuple
    slope: np.ndarray
    pos: np.ndarray
    cells: np.ndarray


def grid_box(px_min: np.ndarray, px_max: np.ndarray, size_wh: np.ndarray, cell_px: int) -> GridFrame:
    """visibility.grid_frame in numpy (the same cells) from the projected vertices' extent px_min / px_max
    (B, 2) float32 pixels; size_wh (B, 2) image (width, height)."""
    image_cells = np.floor((size_wh.astype(np.float64) - 0.5) / cell_px).astype(np.int64)
    half, cell = np.float32(0.5), np.float32(cell_px)
    lo = np.floor((px_min + half) / cell).astype(np.int64) - 1
    hi = np.floor((px_max + half) / cell).astype(np.int64) + 1
    lo = np.minimum(np.maximum(lo, 0), image_cells)
    hi = np.maximum(np.minimum(hi, image_cells), lo)
    gw, gh = (max(int(v), 3) for v in (hi - lo + 1).max(axis=0))
    return GridFrame(lo, (gh, gw), cell_px, image_cells)


def _cell_args(grid: GridFrame) -> tuple:
    """GridFrame.index_args in the float32 scalars and (B,) arrays jit._cell takes."""
    inv = np.float32(1.0 / grid.cell_px)
    off = np.float32(0.5 * inv) - grid.origin.astype(np.float32)
    return inv, np.ascontiguousarray(off[:, 0]), np.ascontiguousarray(off[:, 1]), grid.shape[1], grid.shape[0]


def place(topo: SlotTopology, verts_m: np.ndarray, cameras: CameraSet, znear_m: float, cell_px: int,
          texel_m: float, buffers: tuple[np.ndarray, np.ndarray]) -> FusedGeometry | None:
    """Steps 1-2 (jit.vertex_columns, jit.facing_faces) and the depth grid's frame, for the views with every
    vertex farther than znear_m (None: no such view or no facing face). cell_px: 0 = auto (splat: from the
    projected texel spacing texel_m at the nearest vertex), else that size. buffers: slot_buffers(N). A mesh
    with a non-finite vertex gives None."""
    verts = np.array(verts_m, np.float32, order="C")
    if not np.isfinite(verts).all():  # the loops index memory with projected positions: never feed them NaN
        return None
    cols, verts_cam, bounds = jit.vertex_columns(verts, topo.faces, cameras.R, cameras.t, cameras.K)
    views = [b for b in range(len(bounds)) if bounds[b, 4] > znear_m]
    if not views:
        return None
    if len(views) < len(bounds):
        cameras = cameras.subset(views)
        cols, verts_cam, bounds = np.ascontiguousarray(cols[:, views]), verts_cam[views], bounds[views]
    facing = jit.facing_faces(cols, topo.faces)
    if not facing.any():
        return None
    cell = cell_px or auto_cell_px(texel_m, float(cameras.K[:, 0, 0].max()), float(bounds[:, 4].min()))
    grid = grid_box(bounds[:, 0:2], bounds[:, 2:4], cameras.size_wh, cell)
    slope = (np.float32(NEIGHBOURHOOD_CELLS * cell) / cameras.K[:, 0, 0]).astype(np.float32)
    n_views = len(cameras.views)
    return FusedGeometry(cameras, cols, verts_cam, facing, grid, _cell_args(grid), slope, buffers[0][:n_views],
                         buffers[1][:n_views])


def depth_grid(topo: SlotTopology, geo: FusedGeometry, visibility: str, znear_m: float) -> np.ndarray:
    """Steps 3-4: every slot of a facing face projected into geo.pos / geo.cells (jit.project_slots), and the
    (B, Gh * Gw) float32 depth thresholds (visibility.threshold) from the slots' own z-buffer (splat) or, for
    'raster', app.render.hard_raster's (visibility.raster_zbuffer)."""
    grid = geo.grid
    splat = visibility != "raster"
    if splat:
        zbuf, radius = np.full((len(geo.cameras.views),) + grid.shape, np.inf, np.float32), 2
    else:
        frame = GridFrame(torch.from_numpy(grid.origin), grid.shape, grid.cell_px, torch.from_numpy(grid.image_cells))
        zbuf = raster_zbuffer(frame, torch.from_numpy(geo.verts_cam), torch.from_numpy(topo.faces),
                              torch.from_numpy(geo.cameras.K), znear_m).numpy()
        zbuf, radius = np.ascontiguousarray(zbuf, np.float32), 1
    jit.project_slots(geo.facing, topo.face_start, topo.face_corner, topo.bary, geo.cols, geo.cell_args, geo.pos,
                      geo.cells, zbuf, splat)
    first = np.maximum(0, 1 - grid.origin)
    stop = np.maximum(0, grid.image_cells - grid.origin)
    return jit.depth_thresholds(zbuf, first, stop, radius).reshape(len(geo.cameras.views), -1)


def write(topo: SlotTopology, geo: FusedGeometry, thr: np.ndarray, images: tuple[np.ndarray, ...],
          params: tuple, stereo_tol: np.float32, state: tuple[np.ndarray, np.ndarray, np.ndarray],
          image: np.ndarray, weight: np.ndarray) -> int:
    """Step 5 (jit.update_slots): the update of the state (rgb, pi_old (3, N), count (N,), in place) and of the
    published image (S * S, 3) / weight (S * S,) at the written texels; returns the number of slots seen for
    the first time. images: (H, W, 3) uint8 of the views in geo.cameras.views; params: (cos_min, depth_tol_m,
    max_tan) float32."""
    pixels = [_read_only(images[b]) for b in geo.cameras.views]
    return jit.update_slots(geo.facing, topo.face_start, topo.face_corner, topo.bary, geo.cols, geo.pos, geo.cells,
                            thr, geo.slope, params, stereo_tol, pixels[0], pixels[-1], *state, topo.index,
                            topo.band_start, topo.band_texel, image, weight)


def slot_weights(topo: SlotTopology, geo: FusedGeometry, thr: np.ndarray, params: tuple) -> np.ndarray:
    """(B, N) float32 weight of every slot in each of geo's views (0 = not seen), as ``write`` computes it
    (after depth_grid); for inspection and tests (TextureAccumulator.view_weights is the torch reference)."""
    out = np.zeros((geo.cols.shape[1], len(topo.index)), np.float32)
    jit.slot_weights(geo.facing, topo.face_start, topo.face_corner, topo.bary, geo.cols, geo.pos, geo.cells, thr,
                     geo.slope, params, out)
    return out


def publish_all(topo: SlotTopology, rgb: np.ndarray, fill: np.ndarray, count: np.ndarray, image: np.ndarray,
                weight: np.ndarray) -> None:
    """Step 6 (jit.publish_all): the whole image (S * S, 3) and weight (S * S,) from the state, in place."""
    jit.publish_all(rgb, fill, count, topo.index, topo.gather_src, image, weight)


def fill_unseen(topo: SlotTopology, rgb: np.ndarray, count: np.ndarray, iterations: int) -> np.ndarray:
    """fill.fill_unseen through jit's loops: (3, N) float32 fill colours of every slot from rgb (3, N) where
    count (N,) > 0 (zeros when nothing is seen)."""
    colour, known = jit.seen_vertex_colours(topo.face_start, topo.face_corner, topo.bary, rgb, count,
                                            len(topo.adj_start) - 1)
    jit.dilate_vertex_colours(colour, known, topo.adj_start, topo.adj, iterations)
    fill = np.empty_like(rgb)
    jit.interpolate_fill(topo.face_start, topo.face_corner, topo.bary, colour, fill)
    return fill


def _read_only(image: np.ndarray) -> np.ndarray:
    """A C-contiguous uint8 read-only view (one compiled signature whatever the frame's flags) of an (H, W, 3)
    image with H, W >= 2 (bilinear sampling reads 2 x 2 pixels)."""
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 2:
        raise ValueError(f"texture: expected an (H, W, 3) image of at least 2 x 2 pixels, got {image.shape}")
    out = np.ascontiguousarray(image, np.uint8).view()
    out.flags.writeable = False
    return out
