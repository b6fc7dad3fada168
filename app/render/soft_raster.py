"""Differentiable soft silhouette renderer (SoftRas / PyTorch3D SoftSilhouetteShader) in pure PyTorch.

Used by the test-time refinement (METHOD.md step 7): L_sil = || S_mesh - S_target ||^2 on the hand crops.

Formula, per view and pixel p (pixel centres at integer coordinates, app/types.py):
    S(p) = 1 - prod_f (1 - D_f(p)),   D_f(p) = sigmoid(sign_f(p) * d_f(p)^2 / sigma_px2)
d_f(p) is the 2D distance in pixels from the pixel centre to the projected triangle f (to its nearest edge),
sign_f = +1 inside the triangle, -1 outside. Both sides of a face count (no backface culling).
Like PyTorch3D, faces farther than the blur radius r outside a pixel are left out (D_f := 0 there), with
    r_px = sqrt(sigma_px2 * ln((1 - eps) / eps)),   i.e. sigmoid(-r^2 / sigma) = eps.
The default sigma_px2 = 0.25 px^2 with eps = 1e-4 gives r = 1.52 px. (PyTorch3D's sigma is in NDC^2: one pixel
is 2 / min(H, W) NDC units, so sigma_ndc = sigma_px2 * (2 / min(H, W))^2.)

The product is evaluated as 1 - exp(sum_f log(1 - D_f)) with log(1 - D) = -softplus(sign d^2 / sigma), which
is exact and needs no clamp of D. Only the (pixel, face) pairs inside each face's pixel box grown by r are
evaluated (see _soft_pairs.py); a dense pixels x faces reference lives in tests/app/render.

Faces with a vertex at z <= znear_m are dropped (counted per view in the fragments). When the candidate pair
count exceeds max_pairs the rasterizer raises PairLimitError (no silent coarser fallback: a hand crop never
needs that many, so it signals bad input).
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from dataclasses import dataclass

import torch

from app.render import _soft_pairs as sp
from app.render._soft_pairs import PairLimitError  # noqa: F401 - re-exported

BACKENDS = ("torch", "pytorch3d", "auto")


@dataclass(frozen=True)
class SoftRasterConfig:
    """Soft silhouette renderer settings.

    image_size: (H, W) pixels. sigma_px2: sigmoid temperature in px^2. eps: D below which a face is left out
    (sets the blur radius). max_pairs: cap on candidate (pixel, face) pairs per call, all views together.
    znear_m: faces with a vertex at z <= znear_m (metres, camera frame) are dropped. backend: 'torch',
    'pytorch3d' (needs pytorch3d) or 'auto' (pytorch3d when importable and CUDA is available, else torch).
    compile: run the per-pair kernels through torch.compile (dynamic shapes; ~5x faster on CPU). The first call
    compiles (~15-25 s on a busy 2-core CPU, cached on disk by inductor for later processes, so warm the
    renderer up before the live loop); any compile failure falls back to eager with one warning.
    pytorch3d_faces_per_pixel: PyTorch3D backend only, faces kept per pixel.
    """

    image_size: tuple[int, int] = (224, 224)
    sigma_px2: float = 0.25
    eps: float = 1e-4
    max_pairs: int = 2_000_000
    znear_m: float = 0.01
    backend: str = "torch"
    compile: bool = True
    pytorch3d_faces_per_pixel: int = 50

    def __post_init__(self):
        if len(self.image_size) != 2 or min(self.image_size) <= 0:
            raise ValueError(f"SoftRasterConfig.image_size: expected (H, W) > 0, got {self.image_size}")
        if not self.sigma_px2 > 0:
            raise ValueError(f"SoftRasterConfig.sigma_px2 must be > 0 (px^2), got {self.sigma_px2}")
        if not 0 < self.eps < 0.5:
            raise ValueError(f"SoftRasterConfig.eps must lie in (0, 0.5), got {self.eps}")
        if self.max_pairs <= 0 or self.znear_m <= 0:
            raise ValueError("SoftRasterConfig.max_pairs and znear_m must be > 0")
        if self.backend not in BACKENDS:
            raise ValueError(f"SoftRasterConfig.backend: expected one of {BACKENDS}, got {self.backend!r}")

    @property
    def blur_radius_px(self) -> float:
        """r with sigmoid(-r^2 / sigma_px2) = eps."""
        return math.sqrt(self.blur_radius2_px2)

    @property
    def blur_radius2_px2(self) -> float:
        return self.sigma_px2 * math.log((1.0 - self.eps) / self.eps)


@dataclass(frozen=True)
class SoftPairFragments:
    """Rasterizer output: one entry per candidate (pixel, face) pair.

    signed_dist2_px2: (P,) float, px^2: +d^2 inside the face, -d^2 outside, -inf outside the blur radius
    (such pairs add nothing); differentiable w.r.t. the vertices.
    pixel_index: (P,) int64, flat b*H*W + y*W + x.
    n_faces_dropped: (B,) int64, faces with a vertex at z <= znear_m.
    """

    signed_dist2_px2: torch.Tensor
    pixel_index: torch.Tensor
    n_faces_dropped: torch.Tensor
    batch_size: int
    image_size: tuple[int, int]


def check_mesh_inputs(verts_cam_m, faces, K):
    """Validate (B, V, 3) verts, (F, 3) faces and (B, 3, 3) or (3, 3) K; returns faces int64, K (B, 3, 3)."""
    if not (torch.is_tensor(verts_cam_m) and verts_cam_m.ndim == 3 and verts_cam_m.shape[-1] == 3):
        raise ValueError(f"verts_cam_m: expected a (B, V, 3) tensor, got {_shape(verts_cam_m)}")
    if not verts_cam_m.is_floating_point():
        raise ValueError(f"verts_cam_m: expected a float tensor, got {verts_cam_m.dtype}")
    if not (torch.is_tensor(faces) and faces.ndim == 2 and faces.shape[1] == 3) or faces.is_floating_point():
        raise ValueError(f"faces: expected an integer (F, 3) tensor, got {_shape(faces)}")
    n_verts = verts_cam_m.shape[1]
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= n_verts):
        raise ValueError(f"faces: vertex indices must lie in [0, {n_verts}), the mesh has {n_verts} vertices")
    K = torch.as_tensor(K, dtype=verts_cam_m.dtype, device=verts_cam_m.device)
    if K.shape == (3, 3):
        K = K.expand(verts_cam_m.shape[0], 3, 3)
    if K.shape != (verts_cam_m.shape[0], 3, 3):
        raise ValueError(f"K: expected (B, 3, 3) or (3, 3) with B = {verts_cam_m.shape[0]}, got {tuple(K.shape)}")
    if not bool(torch.isfinite(verts_cam_m).all()):
        raise ValueError("verts_cam_m: contains NaN or inf; check the hand model output before rendering")
    return faces.long().to(verts_cam_m.device), K


def _shape(x) -> str:
    return str(tuple(x.shape)) if torch.is_tensor(x) else type(x).__name__


class SoftRasterizer:
    """(B, V, 3) vertices + (F, 3) faces + (B, 3, 3) K -> SoftPairFragments (steps 1-5 of _soft_pairs)."""

    def __init__(self, cfg: SoftRasterConfig, kernels=None):
        self.cfg = cfg
        self.kernels = kernels if kernels is not None else EAGER_KERNELS

    def __call__(self, verts_cam_m: torch.Tensor, faces: torch.Tensor, K: torch.Tensor) -> SoftPairFragments:
        """verts_cam_m: (B, V, 3) float, metres, camera frame; faces: (F, 3) int64; K: (B, 3, 3) pixels."""
        faces, K = check_mesh_inputs(verts_cam_m, faces, K)
        n_views, height, width = verts_cam_m.shape[0], *self.cfg.image_size
        _check_exact_indices(verts_cam_m.dtype, n_views * height * width, self.cfg.max_pairs)
        uv_px, in_front = sp.project_vertices(verts_cam_m, K, self.cfg.znear_m)
        tri_uv_px = uv_px[:, faces].flatten(0, 1)
        face_ok = in_front[:, faces].all(dim=-1)
        view_index = torch.arange(n_views, device=uv_px.device, dtype=uv_px.dtype).repeat_interleave(len(faces))
        signed, pix = sp.PairSignedDist2.apply(
            tri_uv_px, face_ok.flatten(), view_index, self.cfg.blur_radius_px, self.cfg.blur_radius2_px2,
            height, width, self.cfg.max_pairs, self.kernels,
        )
        return SoftPairFragments(signed, pix, (~face_ok).sum(dim=1), n_views, (height, width))


def _check_exact_indices(dtype, n_pixels: int, max_pairs: int):
    """Pixel indices and pair ranks are computed in the vertices' float dtype; float32 is exact below 2^24."""
    if dtype != torch.float64 and max(n_pixels, max_pairs) >= sp.MAX_EXACT_INDEX:
        raise ValueError(
            f"soft rasterizer: {n_pixels} pixels or max_pairs={max_pairs} reach 2^24, beyond exact float32 "
            "indices; lower SoftRasterConfig.image_size / max_pairs or pass float64 vertices"
        )


class SoftSilhouetteShader:
    """SoftPairFragments -> (B, H, W) silhouette in [0, 1]: 1 - exp(sum over pairs of log(1 - D))."""

    def __init__(self, cfg: SoftRasterConfig, kernels=None):
        self.cfg = cfg
        self.kernels = kernels if kernels is not None else EAGER_SHADER_KERNELS

    def __call__(self, fragments: SoftPairFragments) -> torch.Tensor:
        height, width = fragments.image_size
        n_pixels = fragments.batch_size * height * width
        total = sp.LogMissSum.apply(
            fragments.signed_dist2_px2, fragments.pixel_index, n_pixels, self.cfg.sigma_px2, self.kernels
        )
        return (-torch.expm1(total)).view(fragments.batch_size, height, width)


class SoftSilhouetteRenderer:
    """Rasterizer + shader: (B, V, 3) verts, (F, 3) faces, (B, 3, 3) K -> (B, H, W) silhouette in [0, 1].

    The output dtype follows verts_cam_m (float32 in the app; float64 works for checks).
    """

    def __init__(self, rasterizer: SoftRasterizer, shader: SoftSilhouetteShader):
        self.rasterizer = rasterizer
        self.shader = shader

    def __call__(self, verts_cam_m: torch.Tensor, faces: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        return self.shader(self.rasterizer(verts_cam_m, faces, K))


EAGER_KERNELS = (sp.face_table, sp.pair_forward, sp.pair_backward)
EAGER_SHADER_KERNELS = (sp.shade_forward, sp.shade_backward)


class _CompiledOrEager:
    """torch.compile(fn) that falls back to fn for good (with one warning) if compiling or running fails."""

    def __init__(self, fn):
        self.fn = fn
        self.compiled = torch.compile(fn, dynamic=True)
        self.failed = False

    def __call__(self, *args):
        if not self.failed:
            try:
                return self.compiled(*args)
            except Exception as exc:  # noqa: BLE001 - any compiler failure: eager gives the same numbers
                self.failed = True
                warnings.warn(f"torch.compile of {self.fn.__name__} failed ({exc!r:.200}); using eager", stacklevel=2)
        return self.fn(*args)


def compiled_kernels(kernels):
    """Kernels wrapped in torch.compile (dynamic shapes), each falling back to eager on failure."""
    return tuple(_CompiledOrEager(fn) for fn in kernels)


def pytorch3d_available() -> bool:
    return importlib.util.find_spec("pytorch3d") is not None


def build_soft_silhouette_renderer(cfg: SoftRasterConfig):
    """Factory: the pure-PyTorch renderer, or the PyTorch3D one ('pytorch3d', or 'auto' with pytorch3d + CUDA)."""
    backend = cfg.backend
    if backend == "auto":
        backend = "pytorch3d" if pytorch3d_available() and torch.cuda.is_available() else "torch"
    if backend == "pytorch3d":
        if not pytorch3d_available():
            raise ValueError("SoftRasterConfig.backend='pytorch3d' but pytorch3d is not importable; use 'torch'")
        from app.render.pytorch3d_backend import Pytorch3dSilhouetteRenderer

        return Pytorch3dSilhouetteRenderer(cfg)
    raster_kernels, shader_kernels = EAGER_KERNELS, EAGER_SHADER_KERNELS
    if cfg.compile:
        raster_kernels, shader_kernels = compiled_kernels(raster_kernels), compiled_kernels(shader_kernels)
    return SoftSilhouetteRenderer(SoftRasterizer(cfg, raster_kernels), SoftSilhouetteShader(cfg, shader_kernels))
