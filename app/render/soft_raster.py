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

Backends (SoftRasterConfig.backend): 'numba' (NumbaSilhouetteRenderer, the default on the CPU): the same
pairs and formula in two fused numba kernels per view (_soft_numba.py: forward, and a hand-written backward
that recomputes each pair), ~10x faster than the eager torch kernels; 'torch' (SoftSilhouetteRenderer): the
per-pair tensor kernels of _soft_pairs.py (any device; torch.compile optional); 'pytorch3d'.

Faces with a vertex at z <= znear_m are dropped (counted per view in the fragments). When the candidate pair
count exceeds max_pairs the rasterizer raises PairLimitError (no silent coarser fallback: a hand crop never
needs that many, so it signals bad input).
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from app.render import _soft_pairs as sp
from app.render._soft_pairs import PairLimitError  # noqa: F401 - re-exported

BACKENDS = ("numba", "torch", "pytorch3d", "auto")


@dataclass(frozen=True)
class SoftRasterConfig:
    """Soft silhouette renderer settings.

    image_size: (H, W) pixels. sigma_px2: sigmoid temperature in px^2. eps: D below which a face is left out
    (sets the blur radius). max_pairs: cap on candidate (pixel, face) pairs per call, all views together.
    znear_m: faces with a vertex at z <= znear_m (metres, camera frame) are dropped. backend: 'numba' (the CPU
    fast path, _soft_numba.py: fused kernels, float64 inside, tensors moved to the CPU and back), 'torch' (the
    per-pair tensor kernels of _soft_pairs.py, any device), 'pytorch3d' (needs pytorch3d) or 'auto' (pytorch3d
    when importable and CUDA is available, else numba when importable, else torch).
    compile: torch backend only: run the per-pair kernels through torch.compile (dynamic shapes; ~5x faster
    on CPU). The first call compiles (~15-25 s on a busy 2-core CPU, cached on disk by inductor for later
    processes, so warm the renderer up before the live loop); any compile failure falls back to eager with
    one warning. (The numba kernels compile once per machine, ~10 s, cached on disk in __pycache__.)
    pytorch3d_faces_per_pixel: PyTorch3D backend only, faces kept per pixel.
    """

    image_size: tuple[int, int] = (224, 224)
    sigma_px2: float = 0.25
    eps: float = 1e-4
    max_pairs: int = 2_000_000
    znear_m: float = 0.01
    backend: str = "auto"
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
    _check_verts(verts_cam_m)
    faces = check_faces(faces, verts_cam_m.shape[1])
    K = check_intrinsics(K, verts_cam_m)
    _check_finite(verts_cam_m)
    return faces.to(verts_cam_m.device), K


def _check_verts(verts_cam_m) -> None:
    if not (torch.is_tensor(verts_cam_m) and verts_cam_m.ndim == 3 and verts_cam_m.shape[-1] == 3):
        raise ValueError(f"verts_cam_m: expected a (B, V, 3) tensor, got {_shape(verts_cam_m)}")
    if not verts_cam_m.is_floating_point():
        raise ValueError(f"verts_cam_m: expected a float tensor, got {verts_cam_m.dtype}")


def _check_finite(verts_cam_m) -> None:
    if not bool(torch.isfinite(verts_cam_m).all()):
        raise ValueError("verts_cam_m: contains NaN or inf; check the hand model output before rendering")


def check_faces(faces, n_verts: int) -> torch.Tensor:
    """(F, 3) integer faces with indices in [0, n_verts) -> int64 tensor (same device)."""
    if not (torch.is_tensor(faces) and faces.ndim == 2 and faces.shape[1] == 3) or faces.is_floating_point():
        raise ValueError(f"faces: expected an integer (F, 3) tensor, got {_shape(faces)}")
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= n_verts):
        raise ValueError(f"faces: vertex indices must lie in [0, {n_verts}), the mesh has {n_verts} vertices")
    return faces.long()


def check_intrinsics(K, verts_cam_m: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) or (3, 3) K -> (B, 3, 3) in the vertices' dtype and device (B = verts_cam_m.shape[0])."""
    K = torch.as_tensor(K, dtype=verts_cam_m.dtype, device=verts_cam_m.device)
    if K.shape == (3, 3):
        K = K.expand(verts_cam_m.shape[0], 3, 3)
    if K.shape != (verts_cam_m.shape[0], 3, 3):
        raise ValueError(f"K: expected (B, 3, 3) or (3, 3) with B = {verts_cam_m.shape[0]}, got {tuple(K.shape)}")
    return K


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

    @property
    def cfg(self) -> SoftRasterConfig:
        return self.rasterizer.cfg

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


class NumbaSilhouette(torch.autograd.Function):
    """(B, V, 3) camera-frame vertices -> (B, H, W) silhouette through the fused numba kernels (_soft_numba.py).

    Non-differentiable inputs: faces (F, 3) int64 ndarray, K (B, 3, 3) float64 ndarray, cfg. The kernels run
    on the CPU, the per-pair loops in float32 for float32 vertices, else float64; the result and the gradient
    come back in the vertices' dtype and device.
    """

    @staticmethod
    def forward(ctx, verts_cam_m, faces_np, K_np, cfg: SoftRasterConfig):
        from app.render import _soft_numba as sn

        verts = verts_cam_m.detach().to(device="cpu", dtype=torch.float64).numpy()
        proto = np.zeros(0, dtype=np.float32 if verts_cam_m.dtype == torch.float32 else np.float64)
        sil, miss, geom, valid, _, n_pairs = sn.silhouette_forward(
            verts, faces_np, K_np, cfg.sigma_px2, cfg.blur_radius_px, cfg.blur_radius2_px2, *cfg.image_size,
            cfg.znear_m, cfg.max_pairs, proto)
        if miss.shape[0] == 0:
            raise sp.PairLimitError(int(n_pairs), cfg.max_pairs)
        ctx.saved = (verts, faces_np, K_np, geom, valid)
        ctx.cfg, ctx.miss, ctx.dtype = cfg, miss, proto.dtype
        return torch.from_numpy(sil).to(device=verts_cam_m.device, dtype=verts_cam_m.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_sil):
        from app.render import _soft_numba as sn

        cfg = ctx.cfg
        grad = np.ascontiguousarray(grad_sil.detach().cpu().numpy(), dtype=ctx.dtype)
        grad = sn.silhouette_backward(*ctx.saved, cfg.sigma_px2, cfg.blur_radius2_px2, cfg.znear_m, grad, ctx.miss)
        return torch.from_numpy(grad).to(device=grad_sil.device, dtype=grad_sil.dtype), None, None, None


class NumbaSilhouetteRenderer:
    """The numba backend: (B, V, 3) verts (metres, camera frame), (F, 3) faces, (B, 3, 3) or (3, 3) K (pixels)
    -> (B, H, W) silhouette in [0, 1], differentiable w.r.t. the vertices. Same formula and truncation as
    SoftSilhouetteRenderer (the same numbers to float rounding); raises PairLimitError like it."""

    def __init__(self, cfg: SoftRasterConfig):
        self.cfg = cfg
        self._faces_key, self._faces_np = None, None

    def __call__(self, verts_cam_m: torch.Tensor, faces: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """Same inputs and checks as SoftSilhouetteRenderer (faces are checked once per faces tensor)."""
        _check_verts(verts_cam_m)
        faces_np = self._checked_faces(faces, verts_cam_m.shape[1])
        K = check_intrinsics(K, verts_cam_m)
        _check_finite(verts_cam_m)
        K_np = np.ascontiguousarray(K.detach().to(device="cpu", dtype=torch.float64).numpy())
        return NumbaSilhouette.apply(verts_cam_m, faces_np, K_np, self.cfg)

    def _checked_faces(self, faces, n_verts: int) -> np.ndarray:
        """faces checked and converted to a contiguous int64 ndarray, once per faces tensor and vertex count."""
        key = (faces.data_ptr(), tuple(faces.shape), faces.dtype, faces._version, n_verts) \
            if torch.is_tensor(faces) else None
        if key is None or key != self._faces_key:
            faces = check_faces(faces, n_verts)
            self._faces_key, self._faces_np = key, np.ascontiguousarray(faces.cpu().numpy(), dtype=np.int64)
        return self._faces_np


def pytorch3d_available() -> bool:
    return importlib.util.find_spec("pytorch3d") is not None


def numba_available() -> bool:
    return importlib.util.find_spec("numba") is not None


def resolved_backend(backend: str) -> str:
    """'auto' -> 'pytorch3d' (importable, with CUDA), else 'numba' (importable), else 'torch'; others as given."""
    if backend != "auto":
        return backend
    if pytorch3d_available() and torch.cuda.is_available():
        return "pytorch3d"
    return "numba" if numba_available() else "torch"


def build_soft_silhouette_renderer(cfg: SoftRasterConfig):
    """Factory: the renderer of cfg.backend (resolved_backend): numba, pure PyTorch or PyTorch3D."""
    backend = resolved_backend(cfg.backend)
    if backend == "pytorch3d":
        if not pytorch3d_available():
            raise ValueError("SoftRasterConfig.backend='pytorch3d' but pytorch3d is not importable; use 'torch'")
        from app.render.pytorch3d_backend import Pytorch3dSilhouetteRenderer

        return Pytorch3dSilhouetteRenderer(cfg)
    if backend == "numba":
        if not numba_available():
            raise ValueError("SoftRasterConfig.backend='numba' but numba is not importable; install "
                             "requirements.txt or use 'torch'")
        return NumbaSilhouetteRenderer(cfg)
    raster_kernels, shader_kernels = EAGER_KERNELS, EAGER_SHADER_KERNELS
    if cfg.compile:
        raster_kernels, shader_kernels = compiled_kernels(raster_kernels), compiled_kernels(shader_kernels)
    return SoftSilhouetteRenderer(SoftRasterizer(cfg, raster_kernels), SoftSilhouetteShader(cfg, shader_kernels))
