"""The texture stage's one config (frozen; merged from YAML / CLI at the entry point like every other config)."""

from __future__ import annotations

from dataclasses import dataclass

VISIBILITY_BACKENDS = ("splat", "raster")
KERNEL_BACKENDS = ("numba", "torch")


@dataclass(frozen=True)
class TextureConfig:
    """How the personal hand texture is accumulated (docs/TEXTURE.md).

    size: texture side S in texels (S x S; UV layout of the hand model).
    cos_min: texels whose surface faces a view at a cosine (normal . direction to the camera) below this are
        not sampled from that view; the grazing weight rises linearly from 0 at cos_min to 1 face-on.
    visibility: 'splat' (default: depth grid from the texels' own projections, fast) or 'raster' (depth grid
        from app.render.hard_raster per pixel: exact, slower; the reference the splat is tested against).
    cell_px: depth-grid cell size in pixels for 'splat'; 0 = automatic from the projected texel spacing.
    depth_tol_m: slack (metres) of the depth test on top of the slope term: a visible texel lies at most this
        far (plus the slope term) behind the nearest surface in its 3 x 3 cell neighbourhood.
    max_tan: cap of the slope term's tan(angle to the view) (visibility.py step 3).
    stereo_tol: a slot seen by both views is written only when its two colours agree within this (any channel,
        colours in [0, 1]); larger disagreement means the mesh is off the surface (projection.fuse_views).
    fill_every: texels never seen are re-filled from their surroundings every this many updates (and on the
        first one); between refills they keep the previous fill (they were not seen, so nothing is lost).
    fill_iterations: rounds of neighbour propagation over the mesh graph when filling unseen vertices.
    kernels: 'numba' (default: the per-texel work in a few compiled loops, jit.py / fused.py; compiled once per
        machine and cached on disk) or 'torch' (the tensor reference, kernels.py: the same numbers, ~4x slower;
        also used when numba cannot be imported). ``update`` and ``texture`` follow this; ``project`` and
        ``view_weights`` (inspection) always run the torch reference.
    compile: with kernels='torch', run its per-texel kernels through torch.compile (kernels.py). Off by default:
        on the project's 2-core CPU the stage is memory-bound and compiled kernels measured barely faster
        (docs/PERFORMANCE.md), while the first update compiles for tens of seconds.
    """

    size: int = 512
    cos_min: float = 0.2
    visibility: str = "splat"
    cell_px: int = 0
    depth_tol_m: float = 0.003
    max_tan: float = 1.5
    stereo_tol: float = 0.12
    fill_every: int = 10
    fill_iterations: int = 64
    kernels: str = "numba"
    compile: bool = False

    def __post_init__(self):
        if not 8 <= self.size <= 8192:
            raise ValueError(f"TextureConfig.size must be in [8, 8192] texels, got {self.size}")
        if not 0.0 <= self.cos_min < 1.0:
            raise ValueError(f"TextureConfig.cos_min must be in [0, 1), got {self.cos_min}")
        if self.visibility not in VISIBILITY_BACKENDS:
            raise ValueError(f"TextureConfig.visibility must be one of {VISIBILITY_BACKENDS}, got "
                             f"{self.visibility!r}")
        if self.kernels not in KERNEL_BACKENDS:
            raise ValueError(f"TextureConfig.kernels must be one of {KERNEL_BACKENDS}, got {self.kernels!r}")
        if self.cell_px < 0 or self.depth_tol_m <= 0 or self.max_tan <= 0 or self.stereo_tol <= 0:
            raise ValueError("TextureConfig: cell_px must be >= 0 (0 = auto); depth_tol_m, max_tan, stereo_tol > 0")
        if self.fill_every < 1 or self.fill_iterations < 0:
            raise ValueError("TextureConfig: fill_every must be >= 1 and fill_iterations >= 0")
