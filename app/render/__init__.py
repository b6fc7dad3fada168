"""Rendering: differentiable soft silhouettes (refinement) and a hard z-buffer rasterizer (texture)."""

from app.render._soft_pairs import PairLimitError
from app.render.hard_raster import HardFragments, HardRasterConfig, hard_rasterize
from app.render.soft_raster import (
    NumbaSilhouetteRenderer,
    SoftPairFragments,
    SoftRasterConfig,
    SoftRasterizer,
    SoftSilhouetteRenderer,
    SoftSilhouetteShader,
    build_soft_silhouette_renderer,
)

__all__ = [
    "HardFragments",
    "HardRasterConfig",
    "NumbaSilhouetteRenderer",
    "PairLimitError",
    "SoftPairFragments",
    "SoftRasterConfig",
    "SoftRasterizer",
    "SoftSilhouetteRenderer",
    "SoftSilhouetteShader",
    "build_soft_silhouette_renderer",
    "hard_rasterize",
]
