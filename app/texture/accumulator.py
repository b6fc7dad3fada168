"""The texture stage: a personal hand texture accumulated over stereo frames (METHOD.md step 8, thesis 4.2.5).

Per update (one HandMesh fitted to one StereoFrame):
1. place every covered texel of the faces that can face a view on the posed mesh and project it into both
   views (layout.py, projection.py);
2. weigh what each view sees: depth test against a per-view depth grid, grazing weight (visibility.py);
3. sample both images bilinearly, drop slots whose two views disagree in colour, fuse the views by weight ->
   Pi, Phi (projection.py);
4. apply the thesis 4.2.5 update to T and count the observation (update.py);
5. every ``fill_every`` updates, colour the texels never seen from the nearest seen surface (fill.py).
Two implementations of steps 1-4 and of the published image (TextureConfig.kernels): 'numba' (default) runs the
per-texel work in a few compiled loops that also write the published image where the update changed it
(fused.py, jit.py); 'torch' is the tensor reference (four kernels, kernels.py, torch.compile-d when
TextureConfig.compile is on). Both give the same texture (tests/app/texture/test_fused.py).
``texture()`` gives the TextureMap of app/types.py: rgb (S, S, 3) float32 sRGB in [0, 1], row 0 = top (UV v = 1),
every texel filled; weight (S, S) float32 = how many updates wrote the texel (0 = never seen, filled).

One accumulator per hand model (side): the UV layout belongs to the model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch

from app.texture.config import TextureConfig
from app.texture.fill import fill_unseen, vertex_adjacency
from app.texture.kernels import build_kernels
from app.texture.layout import TexelLayout, from_image, front_slots, layout_for_model, quiet_sparse
from app.texture.projection import fuse_views, sample_views, vertex_columns, vertex_face_incidence
from app.texture.update import TexelState
from app.texture.visibility import (
    NEIGHBOURHOOD_CELLS,
    auto_cell_px,
    grid_frame,
    raster_zbuffer,
    splat_zbuffer,
    threshold,
    view_weights,
)
from app.types import HandMesh, HandState, StereoCalibration, StereoFrame, TextureMap

ZNEAR_M = 0.01  # a view with a vertex closer than this (metres) is not sampled


def _fused_module(kernels: str) -> ModuleType | None:
    """app.texture.fused when the compiled kernels are asked for and numba imports, else None (torch path)."""
    if kernels != "numba":
        return None
    try:
        from app.texture import fused
    except ImportError as exc:  # numba missing or broken: the reference path still works
        warnings.warn(f"texture: numba is unavailable ({exc}); using the slower torch kernels", stacklevel=3)
        return None
    return fused


class TextureMismatchError(ValueError):
    """A mesh, frame or saved texture does not fit this accumulator; the message names the fix."""


@dataclass(frozen=True)
class Projection:
    """One stereo update's projection. pi: (N, 3) float32 Pi per slot in [0, 1] (0 where not written);
    phi: (N,) bool Phi (slot written); total: (N,) float32 summed view weights."""

    pi: torch.Tensor
    phi: torch.Tensor
    total: torch.Tensor


@dataclass(frozen=True)
class FrameGeometry:
    """The slots that can face a view, in every usable view of one frame (B views, M slots).

    x_px, y_px: (B, M) float32 image pixels; z_m: (B, M) float32 metres along each view's optical axis; cos:
    (B, M) float32 view cosines; flat: (B, M) int64 depth-grid cells; thr: (B * Gh * Gw,) float32 depth
    thresholds (metres, visibility.threshold); slope_per_m: (B, 1) float32 = 1.5 cell_px / f; images: the B
    views' (H, W, 3) uint8 tensors; verts_px: (B, V, 2) float32 projected vertices; views: indices (0 left,
    1 right) of the usable views; slots: (M,) int64 layout slots of the columns (layout.front_slots), None = all
    N slots in order."""

    x_px: torch.Tensor
    y_px: torch.Tensor
    z_m: torch.Tensor
    cos: torch.Tensor
    flat: torch.Tensor
    thr: torch.Tensor
    slope_per_m: torch.Tensor
    images: tuple[torch.Tensor, ...]
    verts_px: torch.Tensor
    views: tuple[int, ...]
    slots: torch.Tensor | None


def stereo_views(calib: StereoCalibration) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """T_cam_left (2, 4, 4) float32, K (2, 3, 3) float32 and image (width, height) (2, 2) of the left and
    right views."""
    views = (calib.left, calib.right)
    for name, v in zip(("left", "right"), views, strict=True):
        if np.any(v.dist != 0):
            raise TextureMismatchError(f"calibration {calib.name!r}: the {name} view has distortion coefficients; "
                                       "the texture projects through a pinhole: rectify the source first")
    T = torch.tensor(np.stack([v.T_cam_left for v in views]), dtype=torch.float32)
    K = torch.tensor(np.stack([v.K for v in views]), dtype=torch.float32)
    return T, K, torch.tensor([v.size_wh for v in views])


def _shared_tensor(image: np.ndarray) -> torch.Tensor:
    """A tensor sharing the array's memory (never written, so read-only frames and meshes are fine)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.ascontiguousarray(image))


class TextureAccumulator:
    """Accumulates the texture of one hand model from (HandMesh, StereoFrame) pairs; see the module docstring."""

    def __init__(self, cfg: TextureConfig, hand_model):
        self.cfg = cfg
        self.layout: TexelLayout = layout_for_model(hand_model, cfg.size)
        self.is_left = bool(hand_model.is_left)
        self.model_name = str(hand_model.name)
        self.kernels = build_kernels(cfg.compile)
        self._faces = torch.from_numpy(self.layout.faces)
        self._incidence = vertex_face_incidence(self.layout.faces, self.layout.n_verts)
        self._adjacency = vertex_adjacency(self.layout.faces, self.layout.n_verts)
        lay = self.layout
        self._band = (lay.band, lay.gather_src[lay.band])
        self._outside = (lay.outside, lay.gather_src[lay.outside])
        self._scalars = (torch.tensor(cfg.cos_min), torch.tensor(cfg.depth_tol_m), torch.tensor(cfg.max_tan))
        self._stereo_tol = torch.tensor(cfg.stereo_tol)
        self._rest_m = hand_model.mano.v_template.detach().cpu().numpy().astype(np.float32)
        self._fused = _fused_module(cfg.kernels)
        self._topology = None if self._fused is None else self._fused.slot_topology(lay)
        self._buffers = None if self._fused is None else self._fused.slot_buffers(lay.n_slots)
        self._params = tuple(np.float32(v) for v in (cfg.cos_min, cfg.depth_tol_m, cfg.max_tan))
        self._cameras: tuple | None = None  # (calibration, fused.CameraSet) of the last frame
        self.reset()

    @property
    def kernels_used(self) -> str:
        """'numba' or 'torch': the implementation ``update`` runs (TextureConfig.kernels, or torch when numba is
        unavailable)."""
        return "torch" if self._fused is None else "numba"

    def reset(self) -> None:
        """Forget everything seen (a new person, a new session)."""
        self._state = TexelState.empty(self.layout.n_slots)
        self._fill = torch.zeros(3, self.layout.n_slots)
        self._n_updates = 0
        self._filled_at: tuple[int, int] | None = None  # (update, seen slots) of the last fill
        self._n_seen = 0  # slots with count > 0 (kept up to date by the numba path)
        s = self.layout.size
        self._image, self._weight = np.zeros((s * s, 3), np.float32), np.zeros(s * s, np.float32)  # published
        self._outside_stale = True  # texels outside the charts to be refreshed in full on the next publish
        self._changed: torch.Tensor | None = None  # slots written since the last publish (None: any)

    @property
    def state(self) -> TexelState:
        """A copy of the per-slot state (rgb, pi_old (3, N), count (N,))."""
        return self._state.copy()

    @property
    def n_updates(self) -> int:
        return self._n_updates

    def update(self, mesh: HandMesh, frame: StereoFrame) -> TextureMap:
        """Fold one stereo frame into the texture; returns the current TextureMap."""
        if self._fused is not None:
            return self._update_fused(mesh, frame)
        g = self.geometry(mesh, frame)
        if g is not None:
            weights = self.kernels.weights(g.thr, g.flat, g.z_m, g.cos, g.slope_per_m, *self._scalars)
            colours = sample_views(g.images, g.x_px, g.y_px, g.verts_px)
            self._update_slots(g.slots, colours, weights)
            self._changed = None if g.slots is None else g.slots
        self._n_updates += 1
        self._refill_if_due()
        return self.texture()

    def _update_fused(self, mesh: HandMesh, frame: StereoFrame) -> TextureMap:
        """update() through the compiled loops (fused.py): the state and the published image change in place."""
        geo = self.fused_geometry(mesh, frame)
        if geo is not None:
            thr = self._fused.depth_grid(self._topology, geo, self.cfg.visibility, ZNEAR_M)
            self._fused_write(geo, thr, frame)
        self._n_updates += 1
        self._refill_if_due()
        return self.texture()

    def fused_geometry(self, mesh: HandMesh, frame: StereoFrame):
        """Steps 1-2 of the numba path (fused.place): a fused.FusedGeometry, or None (no usable view or slot)."""
        self._check_mesh(mesh)
        calib = frame.calibration
        if self._cameras is None or self._cameras[0] is not calib:
            T, K, sizes = stereo_views(calib)
            self._cameras = (calib, self._fused.camera_set(T.numpy(), K.numpy(), sizes.numpy()))
        cell = 1 if self.cfg.visibility == "raster" else self.cfg.cell_px
        return self._fused.place(self._topology, mesh.verts_m, self._cameras[1], ZNEAR_M, cell, self.layout.texel_m,
                                 self._buffers)

    def _fused_write(self, geo, thr: np.ndarray, frame: StereoFrame) -> None:
        """Step 3-4 of the numba path (fused.write) on this frame's geometry and depth thresholds."""
        if self._outside_stale:  # bring the image up to date first: the write below changes it texel by texel
            self._publish_all()
        st = self._state
        self._n_seen += self._fused.write(self._topology, geo, thr, (frame.left, frame.right), self._params,
                                          np.float32(self.cfg.stereo_tol),
                                          (st.rgb.numpy(), st.pi_old.numpy(), st.count.numpy()), self._image,
                                          self._weight)

    def _publish_all(self) -> None:
        """The whole published image from the state (numba path: after a fill, reset or load)."""
        st = self._state
        self._fused.publish_all(self._topology, st.rgb.numpy(), self._fill.numpy(), st.count.numpy(), self._image,
                                self._weight)
        self._outside_stale, self._changed = False, torch.zeros(0, dtype=torch.int64)

    def _update_slots(self, slots: torch.Tensor | None, colours: torch.Tensor, weights: torch.Tensor) -> None:
        """Step 4 on the slots of this frame (all of them when ``slots`` is None)."""
        s = self._state
        if slots is None:
            self._state = TexelState(*self.kernels.fuse_update(colours, weights, self._stereo_tol, s.rgb, s.pi_old,
                                                               s.count))
            return
        old = (s.rgb.index_select(1, slots), s.pi_old.index_select(1, slots), s.count.index_select(0, slots))
        new = self.kernels.fuse_update(colours, weights, self._stereo_tol, *old)
        s.rgb.index_copy_(1, slots, new[0])
        s.pi_old.index_copy_(1, slots, new[1])
        s.count.index_copy_(0, slots, new[2])

    def warm_up(self, calibration: StereoCalibration) -> None:
        """Run the kernels once on a made-up frame (the rest-pose hand 0.4 m in front of grey images), so that
        their first-call cost (numba: loading the on-disk cache, ~0.3 s, or compiling in the first process on a
        machine; torch.compile: compiling) is paid now rather than on the first live frame; then reset."""
        verts = self._rest_m - self._rest_m.mean(axis=0) + np.array([0.0, 0.0, 0.4], np.float32)
        state = HandState(np.zeros(48, np.float32), np.zeros(10, np.float32), np.zeros(3, np.float32), self.is_left)
        mesh = HandMesh(0, 0, verts, self.layout.faces, np.zeros((21, 3), np.float32), state)
        images = [np.full((v.size_wh[1], v.size_wh[0], 3), 128, np.uint8) for v in (calibration.left,
                                                                                     calibration.right)]
        frame = StereoFrame(0, 0, images[0], images[1], calibration)
        for _ in range(2):
            self.update(mesh, frame)
        self.reset()

    def project(self, mesh: HandMesh, frame: StereoFrame) -> Projection:
        """Steps 1-3 for one frame (no state change): the fused projection Pi / Phi of every slot."""
        n = self.layout.n_slots
        pi, total = torch.zeros(n, 3), torch.zeros(n)
        g = self.geometry(mesh, frame)
        if g is not None:
            weights = view_weights(g.thr, g.flat, g.z_m, g.cos, g.slope_per_m, *self._scalars)
            colours = sample_views(g.images, g.x_px, g.y_px, g.verts_px)
            got_pi, got_total = fuse_views(colours, weights, self._stereo_tol)
            slots = torch.arange(n) if g.slots is None else g.slots
            pi[slots], total[slots] = got_pi.T, got_total
        return Projection(pi, total > 0, total)

    def view_weights(self, mesh: HandMesh, frame: StereoFrame) -> torch.Tensor:
        """(2, N) float32 weight of every slot in the left and right view (0 = not seen), for inspection."""
        out = torch.zeros(2, self.layout.n_slots)
        g = self.geometry(mesh, frame)
        if g is not None:
            weights = view_weights(g.thr, g.flat, g.z_m, g.cos, g.slope_per_m, *self._scalars)
            slots = torch.arange(self.layout.n_slots) if g.slots is None else g.slots
            for row, b in enumerate(g.views):
                out[b, slots] = weights[row]
        return out

    def geometry(self, mesh: HandMesh, frame: StereoFrame) -> FrameGeometry | None:
        """Steps 1-2 up to the depth thresholds, for the views with every vertex in front and the slots that can
        face them (None: no such view or slot, or a non-finite vertex)."""
        self._check_mesh(mesh)
        T, K, sizes = stereo_views(frame.calibration)
        if not np.isfinite(mesh.verts_m).all():
            return None
        verts = _shared_tensor(mesh.verts_m)
        z_near = (verts @ T[:, 2, :3].T + T[:, 2, 3]).amin(dim=0)
        views = [int(b) for b in torch.nonzero(z_near > ZNEAR_M).flatten()]
        if not views:
            return None
        T, K, sizes, z_near = T[views], K[views], sizes[views], z_near[views]
        cols, verts_cam, verts_px = vertex_columns(verts, self._faces, T, K, self._incidence)
        subset = front_slots(self.layout, cols[:, 3::4].T)
        interp = self.layout.interp if subset is None else subset.interp
        if interp.shape[0] == 0:
            return None
        cell = self._cell_px(float(z_near.min()), float(K[:, 0, 0].max()))
        grid = grid_frame(verts_px, sizes, cell)
        with quiet_sparse():
            per_texel = torch.sparse.mm(interp, cols)
        x, y, z, cos, flat = self.kernels.project(per_texel, len(views), *grid.index_args())
        if self.cfg.visibility == "raster":
            zbuf, empty_radius = raster_zbuffer(grid, verts_cam, self._faces, K, ZNEAR_M), 1
        else:
            zbuf, empty_radius = splat_zbuffer(flat, z, grid), 2
        images = tuple(_shared_tensor((frame.left, frame.right)[b]) for b in views)
        slope = (NEIGHBOURHOOD_CELLS * cell / K[:, 0, 0])[:, None]
        thr = threshold(zbuf, grid, empty_radius).reshape(-1)
        return FrameGeometry(x, y, z, cos, flat, thr, slope, images, verts_px, tuple(views),
                             None if subset is None else subset.slots)

    def _cell_px(self, z_near_m: float, fx_px: float) -> int:
        if self.cfg.visibility == "raster":
            return 1
        return self.cfg.cell_px or auto_cell_px(self.layout.texel_m, fx_px, z_near_m)

    def _check_mesh(self, mesh: HandMesh) -> None:
        lay = self.layout
        if mesh.state.is_left != self.is_left:
            side = "left" if mesh.state.is_left else "right"
            raise TextureMismatchError(f"a {side} hand mesh was given to the texture of the "
                                       f"{'left' if self.is_left else 'right'} hand: use one accumulator per side")
        if mesh.verts_m.shape[0] != lay.n_verts or not np.array_equal(mesh.faces, lay.faces):
            raise TextureMismatchError(
                f"mesh has {mesh.verts_m.shape[0]} vertices / {len(mesh.faces)} faces, the texture's hand model "
                f"{self.model_name!r} has {lay.n_verts} / {len(lay.faces)} (or other faces): build the accumulator "
                "with the hand model the fitter uses")

    def _refill_if_due(self) -> None:
        """Step 5, when fill_every updates have passed and more slots are seen than at the last fill."""
        n_seen = self._n_seen if self._fused is not None else int((self._state.count > 0).sum())
        last = self._filled_at
        if n_seen == 0 or (last is not None and (self._n_updates - last[0] < self.cfg.fill_every
                                                 or n_seen == last[1])):
            return
        st = self._state
        if self._fused is not None:
            self._fill = torch.from_numpy(self._fused.fill_unseen(self._topology, st.rgb.numpy(), st.count.numpy(),
                                                                  self.cfg.fill_iterations))
        else:
            self._fill = fill_unseen(self.layout.interp, self.layout.interp_t, self._adjacency, st.rgb,
                                     st.count > 0, self.cfg.fill_iterations)
        self._filled_at = (self._n_updates, n_seen)
        self._outside_stale = True

    def texture(self) -> TextureMap:
        """The current texture: seen texels as accumulated, the others filled (see the module docstring).

        The image is kept between calls and only rewritten where it can have changed: the texels of the slots the
        last update could write (all covered texels after a fill, reset or load), and the texels outside the
        charts within layout.BAND_TEXELS of one (all of them after a fill, reset or load). The returned arrays
        are copies, never written again (the numba path writes the image during the update and publishes it here)."""
        s = self.layout.size
        if self._fused is not None:
            if self._outside_stale:
                self._publish_all()
            return TextureMap(self._image.reshape(s, s, 3).copy(), self._weight.reshape(s, s).copy(), self._n_updates)
        full = self._outside_stale or self._changed is None
        slots = None if full else self._changed
        shown = self._shown(slots)
        image = self._image.view("V12").ravel()  # whole RGB triples as 12-byte items: one copy per texel
        dst = self.layout.index if slots is None else self.layout.index[slots.numpy()]
        count = self._state.count if slots is None else self._state.count.index_select(0, slots)
        np.put(image, dst, shown.view("V12").ravel())
        np.put(self._weight, dst, count.numpy())
        dst, src = self._outside if self._outside_stale else self._band
        np.put(image, dst, self._shown(torch.from_numpy(src)).view("V12").ravel())
        self._outside_stale, self._changed = False, torch.zeros(0, dtype=torch.int64)
        return TextureMap(self._image.reshape(s, s, 3).copy(), self._weight.reshape(s, s).copy(), self._n_updates)

    def _shown(self, slots: torch.Tensor | None) -> np.ndarray:
        """(M, 3) float32 C-contiguous colour the texture shows for these slots (all when None)."""
        st = self._state
        if slots is None:
            return np.ascontiguousarray(self.kernels.slots(st.rgb, self._fill, st.count).T.numpy())
        picked = (st.rgb.index_select(1, slots), self._fill.index_select(1, slots), st.count.index_select(0, slots))
        return np.ascontiguousarray(self.kernels.slots(*picked).T.numpy())

    def load(self, texture: TextureMap) -> None:
        """Resume from a saved TextureMap of this layout (weight = count; Pi_old = the saved colour)."""
        if texture.rgb.shape[:2] != (self.layout.size, self.layout.size):
            raise TextureMismatchError(f"saved texture is {texture.rgb.shape[1]} x {texture.rgb.shape[0]}, this "
                                       f"accumulator uses {self.layout.size}: set TextureConfig.size to match")
        self.reset()
        rgb = torch.from_numpy(np.ascontiguousarray(from_image(self.layout, texture.rgb).astype(np.float32).T))
        count = torch.from_numpy(from_image(self.layout, texture.weight).astype(np.float32))
        self._state = TexelState(rgb.clone(), rgb.clone(), count)
        self._n_seen = int((count > 0).sum())
        self._n_updates = int(texture.n_updates)
        self._refill_if_due()


def build_texture_accumulator(cfg: TextureConfig, hand_model) -> TextureAccumulator:
    """The texture stage for one hand model."""
    return TextureAccumulator(cfg, hand_model)
