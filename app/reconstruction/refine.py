"""Test-time refinement of a hand mesh against per-view segmentation masks (METHOD.md step 7; paper sec. 3.2).

The mesh at step t + 1 is (paper eq. 1)
    H_{t+1} = M(p + dp_t, s + ds_t, transl + dc_t) + r + dv_t
with M the hand model (app HandModel), p (48) axis-angle pose, s (10) shape, r the fixed residual between the
initialiser's vertices and M(p, s, transl) (zero when the initialiser's mesh is the model's own output; it
makes zero offsets reproduce the input exactly). All offsets start at zero each frame.

Camera offset dc: the paper refines a weak-perspective camera c per view (c_{t+1} = c + dc_t). With a
calibrated stereo rig every view's camera is known, so the one free camera quantity left is the hand's metric
translation: dc (3,) is an offset of ``HandState.transl_m`` in metres, left-camera frame, shared by both views
(it keeps the views geometrically consistent, which the paper's eq. 7 had to average in).

Loss (paper eq. 5, every term mean-reduced, lengths in metres):
    L = w_sil L_sil + w_offset L_v + w_normal L_n + w_laplacian L_lap + w_edge L_edge
    L_sil = mean over views and pixels of (S_mesh - S_target)^2   (stereo: the mean over both views, eq. 8)
with paper weights 1, 1, 1, 1, 0.1 (the thesis drops L_v: w_offset = 0). S_mesh is the soft silhouette of
app/render/soft_raster.py in each view's crop camera. Offsets are updated by SGD with momentum (lr 0.002,
momentum 0.9 in the paper).

Presets (refine_preset; measured in docs/PERFORMANCE.md, "Refinement and segmentation target"):
- 'paper' (the default RefineConfig): the literal settings. In metres they do not work: dc's gradient sums
  over the whole silhouette and overshoots (a step of ~1 cm), dp and ds barely move (steps of ~1e-4), and L_n's
  gradient grows as 1 / face height, so the few near-degenerate faces of a posed hand model (heights down to
  0.02 mm at flexed joints) move by centimetres in the first step: the divergence guard fires on every tested
  synthetic hand and the input mesh comes back. Without L_n the mesh moves but the IoU falls.
- 'scaled': the same loss, optimiser, lr and momentum with per-offset lr multipliers (pose x30, shape x3000,
  vertices x0.005, translation x0.05; chosen on 8 synthetic stereo hands, checked on others): 3 iterations
  raise the silhouette IoU from 0.77 to 0.84 and lower the vertex error from 11.8 to 9.5 mm.

IoU (before / after) is the mean over views of |S_mesh > 0.5 and S_target > 0.5| / |S_mesh > 0.5 or S_target
> 0.5| at the render size (1 for a view where both are empty).

Speed (CPU, one torch thread; docs/PERFORMANCE.md): inside the loop the hand is posed by LeanSkinning (numba,
hand-written backward) instead of smplx's autograd graph, the silhouettes come from the numba renderer
(SoftRasterConfig backend 'auto'), L_n + L_lap + L_edge from one fused kernel (mesh_regularisers) and the step
from MomentumSGD: the same numbers as the plain torch path to float rounding. The numba kernels compile once
per machine (cached on disk); Refiner.warm_up() triggers that (or the cache load) before a live loop.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from app.reconstruction.mesh_losses import (
    MeshTopology,
    build_mesh_topology,
    mesh_regularisers,
    vertex_offset_loss,
)
from app.render import PairLimitError, SoftRasterConfig, build_soft_silhouette_renderer
from app.types import HandMesh, HandState, check_array

# MediaPipe rows of the five fingertips (thumb, index, middle, ring, pinky), i.e. HandModel.tip_vertex_ids order.
_TIP_KEYPOINT_ROWS = (4, 8, 12, 16, 20)


@dataclass(frozen=True)
class RefineConfig:
    """Test-time refinement settings.

    iterations: SGD steps (paper figures: 3; 10 and 15 also reported). render_size_px: the soft silhouettes
    are rendered at render_size_px^2 (112 or 224); target masks of another size are resampled to it.
    lr, momentum: SGD (torch.optim.SGD's update, MomentumSGD). lr_pose, lr_shape, lr_verts, lr_transl:
    per-offset multipliers of lr (all 1 in the paper). w_*: loss weights (paper: 1, 1, 1, 1, 0.1; thesis: w_offset = 0).
    sigma_px2: soft rasterizer temperature (px^2 at render size). backend: the soft rasterizer's
    (SoftRasterConfig.backend: 'auto' = numba on the CPU when importable). compile: torch.compile the
    renderer's kernels when it runs the torch backend (first call slow; see app/render/soft_raster.py; the
    numba backend ignores it). lean_skinning: inside the loop, pose the hand through LeanSkinning (the
    same vertices, ~10x faster on the CPU) when it applies; the returned mesh always comes from the hand model.
    Divergence guard: a step is rejected (the input mesh comes back, RefineResult.diverged = True) when the
    loss or any gradient is not finite, the mesh has NaN/inf, any vertex moved more than max_move_m from the
    input, the loss rose above max_loss_ratio x its first value, or the silhouettes need more than max_pairs
    rasterizer pairs. max_state_mismatch_m: largest allowed |input vertices - M(state)|; more means the mesh
    was made by another hand model (see Refiner.refine).
    """

    iterations: int = 3
    render_size_px: int = 112
    lr: float = 0.002
    momentum: float = 0.9
    lr_pose: float = 1.0
    lr_shape: float = 1.0
    lr_verts: float = 1.0
    lr_transl: float = 1.0
    w_sil: float = 1.0
    w_offset: float = 1.0
    w_normal: float = 1.0
    w_laplacian: float = 1.0
    w_edge: float = 0.1
    sigma_px2: float = 0.25
    backend: str = "auto"
    compile: bool = True
    lean_skinning: bool = True
    max_pairs: int = 2_000_000
    max_move_m: float = 0.05
    max_loss_ratio: float = 10.0
    max_state_mismatch_m: float = 0.002

    def __post_init__(self):
        if self.iterations < 0:
            raise ValueError(f"RefineConfig.iterations must be >= 0, got {self.iterations}")
        if self.render_size_px < 8:
            raise ValueError(f"RefineConfig.render_size_px must be >= 8 (112 or 224), got {self.render_size_px}")
        if not (self.lr > 0 and 0 <= self.momentum < 1):
            raise ValueError(f"RefineConfig: need lr > 0 and momentum in [0, 1), got {self.lr}, {self.momentum}")
        if min(self.lr_pose, self.lr_shape, self.lr_verts, self.lr_transl) < 0:
            raise ValueError("RefineConfig.lr_* multipliers must be >= 0 (0 freezes that offset)")
        if min(self.w_sil, self.w_offset, self.w_normal, self.w_laplacian, self.w_edge) < 0:
            raise ValueError("RefineConfig.w_* loss weights must be >= 0")

    @property
    def raster(self) -> SoftRasterConfig:
        size = (self.render_size_px, self.render_size_px)
        return SoftRasterConfig(image_size=size, sigma_px2=self.sigma_px2, backend=self.backend,
                                compile=self.compile, max_pairs=self.max_pairs)


PRESETS = ("paper", "scaled")


# Per-offset lr multipliers of the 'scaled' preset (module docstring).
SCALED_MULTIPLIERS = {"lr_pose": 30.0, "lr_shape": 3000.0, "lr_verts": 0.005, "lr_transl": 0.05}


def refine_preset(name: str = "paper", **overrides) -> RefineConfig:
    """'paper': the literal settings (lr 0.002, momentum 0.9, weights 1, 1, 1, 1, 0.1, mean-reduced losses in
    metres) = RefineConfig(). 'scaled': the same with SCALED_MULTIPLIERS (module docstring says why).
    ``overrides`` replace single fields."""
    if name not in PRESETS:
        raise ValueError(f"refine_preset: unknown preset {name!r}; choose one of {PRESETS}")
    base = RefineConfig()
    if name == "scaled":
        base = dataclasses.replace(base, **SCALED_MULTIPLIERS)
    return dataclasses.replace(base, **overrides)


@dataclass(frozen=True)
class ViewTarget:
    """One view's refinement target.

    mask: (S, S) float32 in [0, 1], the target silhouette (1 = hand) in the view's crop.
    K: (3, 3) float64, pixels of the mask: the crop camera (app/detection/crop.py crop_intrinsics).
    T_cam_left: (4, 4) float64, metres: maps left-camera-frame points into this view's camera frame.
    """

    mask: np.ndarray
    K: np.ndarray
    T_cam_left: np.ndarray

    def __post_init__(self):
        check_array("ViewTarget.mask", self.mask, (None, None), np.float32)
        if self.mask.shape[0] != self.mask.shape[1] or self.mask.shape[0] < 8:
            raise ValueError(f"ViewTarget.mask: expected a square (S, S) crop mask, S >= 8, got {self.mask.shape}")
        if not (np.isfinite(self.mask).all() and self.mask.min() >= 0 and self.mask.max() <= 1):
            raise ValueError("ViewTarget.mask: values must be finite and in [0, 1] (1 = hand)")
        check_array("ViewTarget.K", self.K, (3, 3), np.float64)
        check_array("ViewTarget.T_cam_left", self.T_cam_left, (4, 4), np.float64)
        R = self.T_cam_left[:3, :3]
        if not (np.allclose(R.T @ R, np.eye(3), atol=1e-6) and np.allclose(self.T_cam_left[3], [0, 0, 0, 1])):
            raise ValueError("ViewTarget.T_cam_left: expected a rigid (4, 4) transform (rotation, translation in "
                             "metres, last row 0 0 0 1); take it from StereoCalibration.<view>.T_cam_left")


@dataclass(frozen=True)
class RefineResult:
    """mesh: the refined HandMesh (the input mesh when diverged); iou_before / iou_after: silhouette IoU with
    the targets (mean over views) before the first and after the last step; diverged: the guard fired and the
    input mesh came back (iou_after = iou_before then); iterations: SGD steps applied (when diverged, the
    steps applied before the guard fired, whose result was discarded); losses: the total loss before each
    step; message: why the guard fired ('' otherwise)."""

    mesh: HandMesh
    iou_before: float
    iou_after: float
    diverged: bool
    iterations: int
    losses: tuple[float, ...] = ()
    message: str = ""


@dataclass(frozen=True)
class _Views:
    """Targets as tensors at the render size: mask (B, S, S), K (B, 3, 3), R (B, 3, 3), t (B, 3), float32."""

    mask: torch.Tensor
    K: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor


@dataclass(frozen=True)
class _Start:
    """The input state as (1, n) tensors, the input vertices (V, 3) and the fixed residual r (V, 3) between them
    and M(state) (see module docstring); float32, metres, left-camera frame."""

    verts_in: torch.Tensor
    pose: torch.Tensor
    shape: torch.Tensor
    transl: torch.Tensor
    residual: torch.Tensor
    shaped: tuple = ()  # LeanSkinning.shaped(shape) when the refiner has a lean skinning


class LeanSkinning:
    """The hand model's posed vertices for the refinement loop, through the numba kernels of _refine_kernels.py
    (forward and hand-written backward; ~0.2 ms against ~2 ms for smplx's autograd graph on the CPU).

    Same function as the HandModel (smplx.MANO, pose2rot, pose_mean added) without the translation:
    shaped(shape) precomputes the template shaped by a fixed (1, 10) shape once per refine() call, then
    __call__(shaped, pose (1, 48), dshape (1, 10)) -> (V, 3) vertices in pose's dtype, metres, differentiable
    w.r.t. pose and dshape (the shape is shape + dshape). float64 inside."""

    def __init__(self, mano):
        def f64(t):
            return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float64)

        shapedirs = f64(mano.shapedirs)  # (V, 3, S)
        self.template, self.J_regressor = f64(mano.v_template), f64(mano.J_regressor)
        self.SD = np.ascontiguousarray(shapedirs.reshape(-1, shapedirs.shape[-1]))
        joint_dirs = np.einsum("jv,vks->jks", self.J_regressor, shapedirs)  # (J, 3, S)
        self.JD = np.ascontiguousarray(joint_dirs.reshape(-1, shapedirs.shape[-1]))
        self.posedirs, self.pose_mean = f64(mano.posedirs), f64(mano.pose_mean)
        weights = f64(mano.lbs_weights)
        rows, cols = np.nonzero(weights)
        self.w_ptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=len(weights))))).astype(np.int64)
        self.w_idx, self.w_val = cols.astype(np.int64), np.ascontiguousarray(weights[rows, cols])
        self.parents = mano.parents.detach().cpu().numpy().astype(np.int64)

    @classmethod
    def of(cls, hand_model) -> LeanSkinning | None:
        """The lean skinning of a HandModel (models/hand_model/layer.py), or None where it does not apply: numba
        missing, a model on another device, no smplx MANO inside, joints not in parent-first order, or
        vertices that differ from the model's (checked once, on a bent pose)."""
        mano = getattr(hand_model, "mano", None)
        needed = ("v_template", "shapedirs", "posedirs", "J_regressor", "lbs_weights", "parents", "pose_mean")
        if importlib.util.find_spec("numba") is None or mano is None or not all(hasattr(mano, n) for n in needed):
            return None
        if hand_model.faces.device.type != "cpu" or getattr(mano, "use_pca", False):
            return None
        parents = mano.parents.tolist()
        if parents[0] != -1 or any(not 0 <= p < j for j, p in enumerate(parents) if j):
            return None
        skin = cls(mano)
        return skin if skin.matches(hand_model) else None

    def matches(self, hand_model, tol_m: float = 1e-5) -> bool:
        """Whether the vertices agree with hand_model's within tol_m on a fixed bent pose and shape."""
        g = torch.Generator().manual_seed(0)
        pose, shape = 0.3 * torch.randn(1, 48, generator=g), torch.randn(1, 10, generator=g)
        with torch.no_grad():
            ref = hand_model(pose, shape).verts_m[0]
            ours = self(self.shaped(shape * 0.5), pose, shape * 0.5)
        return bool((ref - ours).abs().max() <= tol_m)

    def shaped(self, shape: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """shape (1, 10) -> (v_shaped0 (V, 3), J0 (J, 3)) float64: the template and its joints for that shape."""
        betas = shape.detach().cpu().numpy().astype(np.float64).reshape(-1)
        v_shaped = self.template + (self.SD @ betas).reshape(-1, 3)
        return np.ascontiguousarray(v_shaped), np.ascontiguousarray(self.J_regressor @ v_shaped)

    def __call__(self, shaped: tuple, pose: torch.Tensor, dshape: torch.Tensor) -> torch.Tensor:
        return _LeanSkinningFn.apply(pose, dshape, shaped, self)


class _LeanSkinningFn(torch.autograd.Function):
    """pose (1, 48), dshape (1, 10) -> (V, 3) vertices (LeanSkinning); non-differentiable: shaped, skinning."""

    @staticmethod
    def forward(ctx, pose, dshape, shaped, skin: LeanSkinning):
        from app.reconstruction import _refine_kernels as rk

        full = pose.detach().cpu().numpy().astype(np.float64).reshape(-1) + skin.pose_mean
        ds = dshape.detach().cpu().numpy().astype(np.float64).reshape(-1)
        verts, *saved = rk.lbs_forward(full, ds, *shaped, skin.SD, skin.JD, skin.posedirs, skin.w_ptr,
                                       skin.w_idx, skin.w_val, skin.parents)
        ctx.full, ctx.saved, ctx.skin = full, saved, skin
        return torch.from_numpy(verts).to(dtype=pose.dtype, device=pose.device)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_verts):
        from app.reconstruction import _refine_kernels as rk

        skin = ctx.skin
        g = np.ascontiguousarray(grad_verts.detach().cpu().numpy(), dtype=np.float64)
        g_pose, g_shape = rk.lbs_backward(g, ctx.full, *ctx.saved, skin.SD, skin.JD, skin.posedirs, skin.w_ptr,
                                          skin.w_idx, skin.w_val, skin.parents)
        out = (torch.from_numpy(x)[None].to(dtype=grad_verts.dtype, device=grad_verts.device)
               for x in (g_pose, g_shape))
        return *out, None, None


@dataclass
class _Progress:
    """One refinement's bookkeeping: the loss before each step, accepted steps, the IoU before the first."""

    losses: list = dataclasses.field(default_factory=list)
    steps: int = 0
    iou_before: float = float("nan")


class _Diverged(Exception):
    """The guard fired; the message says why."""


class Refiner:
    """Refines HandMeshes of one hand side with one hand model and one soft silhouette renderer."""

    def __init__(self, cfg: RefineConfig, hand_model, renderer):
        self.cfg = cfg
        self.model = hand_model
        self.renderer = renderer
        self.topo: MeshTopology = build_mesh_topology(hand_model.faces, hand_model.num_verts)
        self.device = hand_model.faces.device
        self._faces_np = hand_model.faces.cpu().numpy()
        self.skin = LeanSkinning.of(hand_model) if cfg.lean_skinning else None

    def refine(self, mesh: HandMesh, targets) -> RefineResult:
        """mesh: the initialiser's HandMesh (verts in metres, left-camera frame) whose state made it with this
        refiner's hand model (verts_m within max_state_mismatch_m of M(state); same side, same topology);
        targets: one ViewTarget per view (1 or 2). Returns a RefineResult; bad inputs raise ValueError."""
        views = self._views(mesh, targets)
        start = self._start(mesh)
        offsets = _zero_offsets(self.model.num_verts, self.device)
        run = _Progress()
        try:
            self._descend(start, offsets, views, run)
            with torch.no_grad():
                verts, keypoints, sil = self._render(start, offsets, views)
        except (_Diverged, PairLimitError) as exc:
            # The guard fired: the initialiser's mesh comes back unchanged, with the reason.
            return RefineResult(mesh, run.iou_before, run.iou_before, True, run.steps, tuple(run.losses),
                                f"diverged, input mesh kept: {exc}")
        iou_after = silhouette_iou(sil, views.mask)
        iou_before = iou_after if run.steps == 0 else run.iou_before
        out = _refined_mesh(mesh, start, offsets, verts, keypoints, self.model.tip_vertex_ids)
        return RefineResult(out, iou_before, iou_after, False, run.steps, tuple(run.losses))

    def warm_up(self) -> float:
        """Runs one stereo refinement step on the hand model's own mesh so that the numba kernels are compiled
        (first run on a machine: ~20 s on the loaded 2-core CPU, then cached on disk) or loaded from the cache
        (~0.5 s) now rather than on the first live frame. Returns the seconds it took (wall)."""
        t0 = time.perf_counter()
        state = HandState(np.zeros(48, np.float32), np.zeros(10, np.float32), np.array([0.0, 0.0, 0.4], np.float32),
                          self.model.is_left)
        with torch.no_grad():
            out = self.model(*(torch.from_numpy(a)[None].to(self.device) for a in (state.pose, state.shape,
                                                                                    state.transl_m)))
        mesh = HandMesh(0, 0, _np(out.verts_m), self._faces_np.astype(np.int64), _np(out.keypoints_m), state)
        size = self.cfg.render_size_px
        K = np.array([[2.0 * size, 0.0, size / 2], [0.0, 2.0 * size, size / 2], [0.0, 0.0, 1.0]])
        right = np.eye(4)
        right[0, 3] = -0.12
        mask = np.zeros((size, size), np.float32)
        mask[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1.0
        once = Refiner(dataclasses.replace(self.cfg, iterations=1), self.model, self.renderer)
        once.refine(mesh, [ViewTarget(mask, K, np.eye(4)), ViewTarget(mask, K, right)])
        return time.perf_counter() - t0

    def _descend(self, start: _Start, offsets: dict, views: _Views, run: _Progress) -> None:
        """cfg.iterations SGD steps on the offsets (in place), recorded in run. Raises _Diverged when the guard
        fires."""
        optimiser = MomentumSGD(self._groups(offsets), momentum=self.cfg.momentum)
        for step in range(self.cfg.iterations):
            loss, sil = self._loss(start, offsets, views)
            if step == 0:
                run.iou_before = silhouette_iou(sil, views.mask)
            run.losses.append(float(loss.detach()))
            self._check_loss(run.losses)
            optimiser.zero_grad()
            loss.backward()
            _check_grads(offsets)
            optimiser.step()
            run.steps += 1

    # -- inputs -------------------------------------------------------------------------------------------

    def _views(self, mesh: HandMesh, targets) -> _Views:
        if not isinstance(mesh, HandMesh):
            raise ValueError(f"Refiner.refine: mesh must be an app.types.HandMesh, got {type(mesh).__name__}")
        targets = tuple(targets) if isinstance(targets, list | tuple) else (targets,)
        if not 1 <= len(targets) <= 2 or not all(isinstance(t, ViewTarget) for t in targets):
            raise ValueError("Refiner.refine: targets must be one or two ViewTarget (mask, crop K, T_cam_left)")
        return views_at_size(targets, self.cfg.render_size_px, self.device)

    def _start(self, mesh: HandMesh) -> _Start:
        if mesh.state.is_left != self.model.is_left:
            side = "left" if mesh.state.is_left else "right"
            raise ValueError(f"Refiner.refine: a {side}-hand mesh given to a refiner built for the other side; "
                             "build one refiner per side (build_refiner(cfg, build_hand_model(cfg, side)))")
        if mesh.verts_m.shape[0] != self.model.num_verts or not np.array_equal(mesh.faces, self._faces_np):
            raise ValueError(f"Refiner.refine: the mesh ({mesh.verts_m.shape[0]} vertices) does not have the "
                             f"hand model's topology ({self.model.num_verts} vertices); use the same model")
        state = mesh.state
        pose, shape, transl = (torch.from_numpy(a)[None].to(self.device)
                               for a in (state.pose, state.shape, state.transl_m))
        with torch.no_grad():
            verts0 = self.model(pose, shape, transl).verts_m[0]
        verts_in = torch.from_numpy(mesh.verts_m).to(self.device)
        residual = verts_in - verts0
        worst = float(residual.abs().max()) if bool(torch.isfinite(residual).all()) else float("inf")
        if worst > self.cfg.max_state_mismatch_m:
            raise ValueError(f"Refiner.refine: mesh.verts_m is {worst * 1000:.1f} mm from the hand model's output "
                             "for mesh.state; the mesh must come from the same hand model (MANO vs open model?) "
                             "with its state, or raise RefineConfig.max_state_mismatch_m")
        return _Start(verts_in, pose, shape, transl, residual, self.skin.shaped(shape) if self.skin else ())

    def _groups(self, offsets: dict) -> list[dict]:
        c = self.cfg
        scale = {"dp": c.lr_pose, "ds": c.lr_shape, "dv": c.lr_verts, "dc": c.lr_transl}
        return [{"params": [offsets[k]], "lr": c.lr * scale[k]} for k in offsets if scale[k] > 0]

    # -- loss ---------------------------------------------------------------------------------------------

    def _render(self, start: _Start, offsets: dict, views: _Views):
        """Steps 1-3: H = M(p + dp, s + ds, transl + dc) + r + dv (V, 3); into each view; soft silhouettes."""
        out = self.model(start.pose + offsets["dp"], start.shape + offsets["ds"], start.transl + offsets["dc"])
        verts = out.verts_m[0] + start.residual + offsets["dv"]
        self._check_mesh(verts.detach(), start)
        return verts, out.keypoints_m[0], self.renderer(self._to_views(verts, views), self.model.faces, views.K)

    @staticmethod
    def _to_views(verts: torch.Tensor, views: _Views) -> torch.Tensor:
        """(V, 3) left-camera-frame vertices -> (B, V, 3) in each view's camera frame."""
        return verts[None] @ views.R.transpose(1, 2) + views.t[:, None, :]

    def _loss(self, start: _Start, offsets: dict, views: _Views):
        """Step 4: the weighted loss of paper eq. 5 (scalar) and the silhouettes (B, S, S)."""
        c = self.cfg
        verts, sil = self._posed_silhouettes(start, offsets, views)
        loss = c.w_sil * ((sil - views.mask) ** 2).mean()
        if c.w_offset > 0:
            loss = loss + c.w_offset * vertex_offset_loss(offsets["dv"])
        if max(c.w_normal, c.w_laplacian, c.w_edge) > 0:
            loss = loss + mesh_regularisers(verts, self.topo, c.w_normal, c.w_laplacian, c.w_edge)
        return loss, sil

    def _posed_silhouettes(self, start: _Start, offsets: dict, views: _Views):
        """The loop's H (V, 3) and silhouettes (B, S, S): as _render, through the lean skinning when available
        (same vertices; no keypoints)."""
        if self.skin is None:
            verts, _, sil = self._render(start, offsets, views)
            return verts, sil
        posed = self.skin(start.shaped, start.pose + offsets["dp"], offsets["ds"])
        verts = posed + (start.transl + offsets["dc"]) + start.residual + offsets["dv"]
        self._check_mesh(verts.detach(), start)
        return verts, self.renderer(self._to_views(verts, views), self.model.faces, views.K)

    # -- guard --------------------------------------------------------------------------------------------

    def _check_loss(self, losses: list) -> None:
        """losses: the loss before every step so far, the current one last."""
        value, step = losses[-1], len(losses) - 1
        if not np.isfinite(value):
            raise _Diverged(f"loss became {value} at step {step}")
        if step and value > self.cfg.max_loss_ratio * max(losses[0], 1e-12):
            raise _Diverged(f"loss rose from {losses[0]:.3g} to {value:.3g} at step {step}")

    def _check_mesh(self, verts: torch.Tensor, start: _Start) -> None:
        move = float((verts - start.verts_in).norm(dim=1).max())  # NaN / inf vertices give a NaN / inf move
        if not math.isfinite(move):
            raise _Diverged("the refined mesh has NaN/inf vertices")
        if move > self.cfg.max_move_m:
            raise _Diverged(f"a vertex moved {move * 1000:.1f} mm from the input (> max_move_m = "
                            f"{self.cfg.max_move_m * 1000:.0f} mm)")


class MomentumSGD:
    """torch.optim.SGD's update with momentum (no dampening, Nesterov or weight decay) for a few tensors,
    without torch.optim's per-step bookkeeping (~0.2 ms a step on the CPU): per tensor p with gradient g,
    b = g on its first step, then b = momentum b + g, and p -= lr b (momentum 0: p -= lr g).
    groups: [{"params": [tensors], "lr": float}, ...] as for torch.optim.SGD."""

    def __init__(self, groups: list[dict], momentum: float):
        self.items = [(p, float(g["lr"])) for g in groups for p in g["params"]]
        self.momentum = float(momentum)
        self.buffers: list[torch.Tensor | None] = [None] * len(self.items)

    def zero_grad(self) -> None:
        for p, _ in self.items:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for i, (p, lr) in enumerate(self.items):
            if p.grad is None:
                continue
            step = p.grad
            if self.momentum != 0:
                buf = self.buffers[i]
                if buf is None:
                    buf = self.buffers[i] = step.detach().clone()
                else:
                    buf.mul_(self.momentum).add_(step)
                step = buf
            p.add_(step, alpha=-lr)


def _zero_offsets(n_verts: int, device) -> dict:
    """dp (1, 48) rad, ds (1, 10), dv (V, 3) m, dc (1, 3) m; float32 zeros that require grad."""
    shapes = {"dp": (1, 48), "ds": (1, 10), "dv": (n_verts, 3), "dc": (1, 3)}
    return {k: torch.zeros(s, device=device, requires_grad=True) for k, s in shapes.items()}


def _check_grads(offsets: dict) -> None:
    for name, value in offsets.items():
        if value.grad is not None and not bool(torch.isfinite(value.grad).all()):
            raise _Diverged(f"the gradient of {name} has NaN/inf")


def silhouette_iou(sil: torch.Tensor, target: torch.Tensor) -> float:
    """sil, target: (B, S, S) in [0, 1] -> mean over views of the IoU of (> 0.5) masks; 1 where both empty."""
    a, b = sil.detach() > 0.5, target > 0.5
    inter = (a & b).flatten(1).sum(1).double()
    union = (a | b).flatten(1).sum(1).double()
    return float(torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union)).mean())


def _refined_mesh(mesh: HandMesh, start: _Start, offsets: dict, verts: torch.Tensor, keypoints: torch.Tensor,
                  tip_vertex_ids: torch.Tensor) -> HandMesh:
    """The HandMesh of the final offsets; fingertip keypoints follow their vertices' offsets r + dv."""
    with torch.no_grad():
        keypoints = keypoints.clone()
        keypoints[list(_TIP_KEYPOINT_ROWS)] += (start.residual + offsets["dv"])[tip_vertex_ids]
        state = HandState(_np(start.pose + offsets["dp"]), _np(start.shape + offsets["ds"]),
                          _np(start.transl + offsets["dc"]), mesh.state.is_left)
    return dataclasses.replace(mesh, verts_m=_np(verts[None]), joints_m=_np(keypoints[None]), state=state)


def _np(x: torch.Tensor) -> np.ndarray:
    """(1, ...) tensor -> (...) float32 ndarray (a copy)."""
    return x.detach()[0].to(device="cpu", dtype=torch.float32).numpy().copy()


def views_at_size(targets, size_px: int, device=None) -> _Views:
    """Stack ViewTargets as float32 tensors on device, the masks resampled to size_px^2 and K moved to match."""
    masks = [resample_mask(torch.from_numpy(t.mask), size_px) for t in targets]
    Ks = [torch.from_numpy(rescale_intrinsics(t.K, size_px / t.mask.shape[0])) for t in targets]
    T = torch.from_numpy(np.stack([t.T_cam_left for t in targets]))
    views = (torch.stack(masks), torch.stack(Ks), T[:, :3, :3], T[:, :3, 3])
    return _Views(*(x.to(device=device, dtype=torch.float32) for x in views))


def resample_mask(mask: torch.Tensor, size_px: int) -> torch.Tensor:
    """(S, S) float mask -> (size_px, size_px): area average for an integer shrink factor, else bilinear with
    pixel centres at integers (align_corners=False), which matches rescale_intrinsics."""
    if mask.shape[-1] == size_px:
        return mask
    factor = mask.shape[-1] / size_px
    area = factor > 1 and float(factor).is_integer()
    out = torch.nn.functional.interpolate(mask[None, None], size=(size_px, size_px),
                                          mode="area" if area else "bilinear", align_corners=None if area else False)
    return out[0, 0]


def rescale_intrinsics(K: np.ndarray, s: float) -> np.ndarray:
    """(3, 3) K of an image resized by s (pixel centres at integers: u' = (u + 0.5) s - 0.5) -> (3, 3)."""
    A = np.array([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5], [0.0, 0.0, 1.0]])
    return A @ np.asarray(K, dtype=np.float64)


def build_refiner(cfg: RefineConfig, hand_model) -> Refiner:
    """Factory: a Refiner for hand_model (models/hand_model/layer.py HandModel, one side) with its own soft
    silhouette renderer at cfg.render_size_px."""
    return Refiner(cfg, hand_model, build_soft_silhouette_renderer(cfg.raster))
