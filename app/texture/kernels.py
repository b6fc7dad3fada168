"""The texture stage's per-texel work as four pure kernels, compiled into fused loops or run eagerly.

These are the torch reference (TextureConfig.kernels = 'torch'); the default path runs the same steps as numba
loops (jit.py, fused.py), ~4x faster on the project's CPU (docs/PERFORMANCE.md).

Each kernel chains the documented steps of projection.py / visibility.py / update.py over the slots of a frame
(10^5 at 512^2). Run eagerly, every step is a pass over memory; through torch.compile (dynamic shapes, as the
soft rasterizer does) each kernel becomes one or two loops. A kernel that fails to compile falls back to eager
for good with one warning (app.render.soft_raster.compiled_kernels); both give the same numbers. The first
compiled call of each kernel costs seconds (cached on disk by inductor for later processes): warm the stage up
before a live loop (``TextureAccumulator.warm_up``). Compilation is off by default (TextureConfig.compile): on
the project's 2-core CPU the stage is bound by memory traffic, and the compiled kernels measured no faster.

Arrays: as in projection.py and visibility.py; slots N, views B.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

from app.texture.projection import fuse_views, texel_pixels
from app.texture.update import update_texels
from app.texture.visibility import cell_index, view_weights


def project_kernel(per_texel: torch.Tensor, n_views: int, *grid_args: torch.Tensor):
    """Projection step 2 and the depth-grid cells: per_texel (N, 4B) -> x_px, y_px, z_m, cos (B, N) float32
    and flat (B, N) int64 cell indices; grid_args = GridFrame.index_args()."""
    x, y, z, cos = texel_pixels(per_texel, n_views)
    return x, y, z, cos, cell_index(x, y, *grid_args)


def fuse_update_kernel(colours: torch.Tensor, weights: torch.Tensor, stereo_tol: torch.Tensor, rgb: torch.Tensor,
                       pi_old: torch.Tensor, count: torch.Tensor):
    """Projection step 4 and the thesis 4.2.5 update: colours (B, 3, N), weights (B, N), stereo_tol (0-d), state
    (rgb, pi_old, count) -> the new state."""
    pi, total = fuse_views(colours, weights, stereo_tol)
    return update_texels(rgb, pi_old, count, pi, total)


def slots_kernel(rgb: torch.Tensor, fill: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """(3, N) colour each slot shows in the TextureMap: rgb (3, N) where seen (count (N,) > 0), else the fill
    (3, N), clamped to [0, 1]."""
    seen = (count > 0).to(rgb.dtype)
    return (rgb - fill).mul_(seen).add_(fill).clamp_(0.0, 1.0)


@dataclass(frozen=True)
class TextureKernels:
    """The four kernels (eager functions or their compiled wrappers)."""

    project: Callable
    weights: Callable
    fuse_update: Callable
    slots: Callable


EAGER = TextureKernels(project_kernel, view_weights, fuse_update_kernel, slots_kernel)


def build_kernels(compile: bool) -> TextureKernels:
    """Eager kernels, or the same wrapped in torch.compile with an eager fallback."""
    if not compile:
        return EAGER
    from app.render.soft_raster import compiled_kernels

    return TextureKernels(*compiled_kernels([getattr(EAGER, f.name) for f in fields(EAGER)]))
