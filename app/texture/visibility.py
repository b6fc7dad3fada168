"""Which texels a view sees, and how well: a per-view depth grid, a slope-aware depth test, grazing weights.

METHOD.md step 8 rasterises the mesh so that only visible surface is sampled. Here every covered texel's surface
point is projected into the view (projection.py) and kept when it is the nearest surface there:

1. Depth grid over the bounding box of the mesh's projection (a point of a face projects inside its projected
   triangle, so the vertices' box holds every texel), in cells of ``cell_px`` pixels, one of two backends:
   - splat (``splat_zbuffer``): every texel's depth z-buffered (min) into its cell. At the sizes used texels
     are denser than pixels (10^5 texels on a hand of a few thousand pixels), so every cell the surface covers
     gets texels when cell_px >= the projected texel spacing (``auto_cell_px``).
   - raster (``raster_zbuffer``): app.render.hard_raster's per-pixel z-buffer of the mesh (cell_px = 1):
     exact, slower; the reference the splat grid is tested against.
2. ``threshold``: per cell, the nearest depth over its 3 x 3 neighbourhood; -inf where an empty cell or a
   cell outside the image lies within ``empty_radius`` cells (1 for the raster grid, 2 for the splat grid,
   whose covered cells reach up to a cell past the silhouette). The minimum fails texels just behind an
   occluding edge (their bilinear footprint would mix in the occluder); -inf drops texels on the silhouette (the
   footprint mixes in the background) and at the image border.
3. Depth test: z - threshold <= depth_tol_m + 1.5 * cell_px * (z / f) * min(tan, max_tan). The second term is
   how much the surface's own depth changes over the 1.5-cell radius of the neighbourhood at its angle to the
   view (tan of the angle between normal and ray). Capping it keeps the test sharp at grazing angles, where a
   texel a few millimetres behind an occluding edge would otherwise pass (checked against exact ray depths in
   tests/app/texture/test_visibility.py); steep texels then fail near depth edges, at little cost: their
   grazing weight is small.
4. ``view_weights``: the grazing weight (0 at cos <= cos_min, rising linearly to 1 face-on) times the depth
   test. A texel is seen by a view when its weight is > 0.

Cells: pixel centres sit at integer coordinates (app/types.py), so pixel i covers [i - 0.5, i + 0.5) and a point
at x lies in image cell floor((x + 0.5) / cell_px); grid cell = image cell - the grid's origin.
Arrays: torch, B views stacked: x_px / y_px (B, N) float32 image pixels, z_m (B, N) float32 metres along the
optical axis, cos (B, N) float32 (unit normal . unit direction to the camera; > 0 faces it). The functions
used per texel (``cell_index``, ``view_weights``) are plain tensor code for kernels.py to compile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from app.render.hard_raster import HardRasterConfig, hard_rasterize

# Texels are z-buffered into cells at least this many times the projected texel spacing (hole-free margin).
_CELL_MARGIN = 1.25
# Radius, in cells, over which the 3 x 3 minimum reaches (from a texel to the far side of a neighbour cell).
NEIGHBOURHOOD_CELLS = 1.5


@dataclass(frozen=True)
class GridFrame:
    """Where the depth grids of B views lie. origin: (B, 2) int64 image cell (column, row) of grid cell (0, 0);
    shape: (Gh, Gw) shared by the views (the largest box); cell_px: cell side in pixels; image_cells: (B, 2)
    int64, cells 1 .. image_cells - 1 (columns, rows) lie inside [0, W - 1] x [0, H - 1], where a bilinear
    lookup has all four pixels."""

    origin: torch.Tensor
    shape: tuple[int, int]
    cell_px: int
    image_cells: torch.Tensor

    @property
    def n_cells(self) -> int:
        return int(self.origin.shape[0]) * self.shape[0] * self.shape[1]

    def index_args(self) -> tuple[torch.Tensor, ...]:
        """cell_index's grid arguments: inv_cell (0-d), col_off / row_off / view_row (B, 1), last (2,) =
        (Gw - 1, Gh - 1), all float32 (view b's rows start at b * Gh)."""
        gh, gw = self.shape
        inv = 1.0 / self.cell_px
        col = 0.5 * inv - self.origin[:, 0, None].float()
        row = 0.5 * inv - self.origin[:, 1, None].float()
        view_row = (torch.arange(self.origin.shape[0]) * gh).float()[:, None]
        return torch.tensor(inv), col, row, view_row, torch.tensor([gw - 1.0, gh - 1.0])


def auto_cell_px(texel_m: float, fx_px: float, z_near_m: float) -> int:
    """Smallest cell (pixels) that the texels of a surface at depth >= z_near_m cover without holes: the
    projected texel spacing texel_m * fx / z, with a margin."""
    return max(1, math.ceil(_CELL_MARGIN * texel_m * fx_px / max(z_near_m, 1e-3)))


def grid_frame(verts_px: torch.Tensor, image_wh: torch.Tensor, cell_px: int) -> GridFrame:
    """Grid over each view's box of projected vertices verts_px (B, V, 2), one cell of margin each side,
    clipped to image cells 0 .. image_cells (the first cell beyond each side is kept: points clamped onto it
    are outside the image and never seen); image_wh (B, 2) image (width, height)."""
    # Cell c spans [c cell - 0.5, (c + 1) cell - 0.5): inside [0, W - 1] for 1 <= c < floor((W - 0.5) / cell).
    image_cells = torch.floor((torch.as_tensor(image_wh, dtype=torch.float64) - 0.5) / cell_px).long()
    lo = torch.floor((verts_px.amin(dim=1) + 0.5) / cell_px).long() - 1
    hi = torch.floor((verts_px.amax(dim=1) + 0.5) / cell_px).long() + 1
    lo = torch.minimum(lo.clamp(min=0), image_cells)
    hi = torch.maximum(torch.minimum(hi, image_cells), lo)
    gw, gh = (max(int(v), 3) for v in (hi - lo + 1).amax(dim=0))
    return GridFrame(lo, (gh, gw), cell_px, image_cells)


def cell_index(x_px: torch.Tensor, y_px: torch.Tensor, inv_cell: torch.Tensor, col_off: torch.Tensor,
               row_off: torch.Tensor, view_row: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """(B, N) int64 flat index into the (B, Gh, Gw) grid of each point's cell, clamped into its view's grid;
    the grid arguments come from GridFrame.index_args()."""
    col = torch.floor(x_px * inv_cell + col_off).clamp(min=0.0).minimum(last[0])
    row = torch.floor(y_px * inv_cell + row_off).clamp(min=0.0).minimum(last[1]) + view_row
    return (col + row * (last[0] + 1.0)).long()


def splat_zbuffer(flat: torch.Tensor, z_m: torch.Tensor, frame: GridFrame) -> torch.Tensor:
    """Step 1 (splat): (B, Gh, Gw) float32 nearest texel depth per cell, inf where no texel falls."""
    zbuf = torch.full((frame.n_cells,), math.inf, dtype=z_m.dtype)
    zbuf.scatter_reduce_(0, flat.reshape(-1), z_m.reshape(-1), "amin")
    return zbuf.view(-1, *frame.shape)


def raster_zbuffer(frame: GridFrame, verts_cam_m: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,
                   znear_m: float = 0.01) -> torch.Tensor:
    """Step 1 (raster), for a frame of 1-pixel cells: (B, Gh, Gw) float32 depth of the nearest face per pixel
    (inf = background) from the hard rasterizer. verts_cam_m (B, V, 3) metres in each view's camera frame;
    faces (F, 3) int64; K (B, 3, 3)."""
    if frame.cell_px != 1:
        raise ValueError(f"raster_zbuffer needs a grid of 1-pixel cells, got cell_px={frame.cell_px}")
    K_box = K.clone()
    K_box[:, 0, 2] -= frame.origin[:, 0].to(K.dtype)
    K_box[:, 1, 2] -= frame.origin[:, 1].to(K.dtype)
    cfg = HardRasterConfig(image_size=frame.shape, znear_m=znear_m)
    return hard_rasterize(verts_cam_m, faces, K_box, cfg).depth_m.to(torch.float32)


def threshold(zbuf: torch.Tensor, frame: GridFrame, empty_radius: int) -> torch.Tensor:
    """Step 2: (B, Gh, Gw) float32 z-buffer (inf = empty; modified: cells outside the image are emptied) ->
    the per-cell depth threshold. empty_radius: how far (cells) an empty cell makes a texel fail: 1 for the
    raster grid; 2 for the splat grid, whose covered cells reach up to a cell past the true silhouette (a texel
    covers a cell whose centre pixel may lie off the surface)."""
    gh, gw = frame.shape
    for b in range(zbuf.shape[0]):
        (c0, r0), (c1, r1) = frame.origin[b].tolist(), frame.image_cells[b].tolist()
        zbuf[b, :, :max(0, min(gw, 1 - c0))] = math.inf
        zbuf[b, :, max(0, c1 - c0):] = math.inf
        zbuf[b, :max(0, min(gh, 1 - r0))] = math.inf
        zbuf[b, max(0, r1 - r0):] = math.inf
    zmin = -_box_max(-zbuf, 1)
    return zmin.masked_fill_(_box_max(zbuf, empty_radius) == math.inf, -math.inf)


def _box_max(grid: torch.Tensor, radius: int) -> torch.Tensor:
    """(B, Gh, Gw) maximum over each cell's (2 radius + 1)^2 neighbourhood, edges replicated (separable, by
    shifted slices: cheaper than max_pool2d on these small grids)."""
    out = grid.clone()
    for axis in (1, 2):
        src = out.clone()
        n = src.shape[axis]
        for d in range(1, radius + 1):
            lo, hi = out.narrow(axis, d, n - d), out.narrow(axis, 0, n - d)
            torch.maximum(lo, src.narrow(axis, 0, n - d), out=lo)
            torch.maximum(hi, src.narrow(axis, d, n - d), out=hi)
    return out


def grazing_weight(cos: torch.Tensor, cos_min: torch.Tensor | float) -> torch.Tensor:
    """Same shape as cos, float32 in [0, 1]: 0 at cos <= cos_min, rising linearly to 1 face-on (cos = 1)."""
    return ((cos - cos_min) / (1.0 - cos_min)).clamp(0.0, 1.0)


def view_weights(thr: torch.Tensor, flat: torch.Tensor, z_m: torch.Tensor, cos: torch.Tensor,
                 slope_per_m: torch.Tensor, cos_min: torch.Tensor, depth_tol_m: torch.Tensor,
                 max_tan: torch.Tensor) -> torch.Tensor:
    """Steps 3-4: (B, N) float32 weight in [0, 1] of each texel in each view (0 = not seen).
    thr: (B * Gh * Gw,) flat thresholds; flat (B, N) cell indices; slope_per_m (B, 1) = 1.5 cell_px / f;
    cos_min, depth_tol_m, max_tan: 0-d tensors."""
    c = cos.clamp(min=1e-3)
    tan = ((1.0 - c * c).clamp(min=0.0).sqrt() / c).clamp(max=max_tan)
    passes = z_m - thr.take(flat) <= depth_tol_m + z_m * slope_per_m * tan  # step 3
    return grazing_weight(cos, cos_min) * passes
