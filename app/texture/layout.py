"""The hand model's UV layout as the texture stage uses it, computed once per (model, texture size).

The texture's covered texels (centres inside a UV chart, models/hand_model/uv.py) are numbered 0..N-1 ("slots").
Every per-frame array of the stage is per slot, (N,) or (N, 3), not (S, S, 3), so work scales with the hand's
surface, not the texture's empty corners. ``to_image`` / ``from_image`` are the only conversions between slots
and (S, S, ...) texture arrays (row 0 = top = UV v 1).

Slots are grouped by mesh face (row-major within a face), so ``front_slots`` can keep, per frame, the slots of
the faces that can face a camera (a bit over half the hand) as a handful of vectorised range operations; the
per-texel work then runs on those.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from models.hand_model.uv import nearest_covered_index, texel_geometry

# Texel spacing percentile used to size the depth grid: the sparsest 5 % of the surface may still leave a gap.
_SPACING_PERCENTILE = 95.0
# Outside-chart texels this close (texels) to a chart are refreshed with every texture (mip levels 0-2 read them).
BAND_TEXELS = 4.0


@dataclass(frozen=True)
class TexelLayout:
    """size: S. index: (N,) int64 flat texel index (row * S + col) of each slot. face: (N,) int64 mesh face of
    each slot. interp: (N, V) float32 sparse CSR tensor of the barycentric weights (3 per row): the texel's
    surface point is interp @ verts; interp_t (V, N) its transpose (CSR). gather_src: (S * S,) int64 slot whose
    value each texel of an output image shows (itself when covered, the nearest covered texel outside the
    charts). faces: (F, 3) int64;
    vt (T, 2) float32 / ft (F, 3) int64 the UV layout; texel_m: a high percentile of the rest-pose surface
    distance between neighbouring texels, metres; band: (K,) int64 flat indices of the texels outside the charts
    within BAND_TEXELS of one (the ones bilinear lookups and the first mip-map levels read); face_start (F + 1,)
    int64: face f holds slots face_start[f] .. face_start[f + 1] - 1."""

    size: int
    index: np.ndarray
    face: np.ndarray
    interp: torch.Tensor
    interp_t: torch.Tensor
    gather_src: np.ndarray
    faces: np.ndarray
    vt: np.ndarray
    ft: np.ndarray
    texel_m: float
    band: np.ndarray
    face_start: np.ndarray

    @property
    def outside(self) -> np.ndarray:
        """(M,) int64 flat indices of the texels outside every chart."""
        return np.flatnonzero(~self.covered.ravel())

    @property
    def n_slots(self) -> int:
        return len(self.index)

    @property
    def n_verts(self) -> int:
        return int(self.interp.shape[1])

    @property
    def covered(self) -> np.ndarray:
        """(S, S) bool: texels inside a UV chart."""
        out = np.zeros(self.size * self.size, bool)
        out[self.index] = True
        return out.reshape(self.size, self.size)


def _interp_matrix(face_corners: np.ndarray, bary: np.ndarray, n_verts: int) -> torch.Tensor:
    """(N, V) CSR of bary (N, 3) weights on the corner vertices (N, 3)."""
    n = len(face_corners)
    order = np.argsort(face_corners, axis=1)  # CSR wants sorted column indices per row
    crow = torch.arange(0, 3 * n + 1, 3, dtype=torch.int64)
    col = torch.from_numpy(np.take_along_axis(np.asarray(face_corners, np.int64), order, 1).ravel())
    val = torch.from_numpy(np.take_along_axis(np.asarray(bary, np.float32), order, 1).ravel())
    with quiet_sparse():
        return torch.sparse_csr_tensor(crow, col, val, (n, n_verts), check_invariants=True)


@contextlib.contextmanager
def quiet_sparse():
    """Silence torch's "sparse CSR support is in beta" notices (the few operations used here are stable)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        yield


def texel_spacing_m(rest_verts_m: np.ndarray, faces: np.ndarray, vt: np.ndarray, ft: np.ndarray, size: int) -> float:
    """Surface distance between neighbouring texel centres (metres), the given percentile over faces: per face
    sqrt(3D area / UV area in texels^2)."""
    tri = np.asarray(rest_verts_m, np.float64)[faces]
    area3 = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    uv = np.asarray(vt, np.float64)[ft] * size
    e1, e2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
    area_uv = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    ok = area_uv > 1e-9
    return float(np.percentile(np.sqrt(area3[ok] / area_uv[ok]), _SPACING_PERCENTILE))


def build_texel_layout(vt: np.ndarray, ft: np.ndarray, faces: np.ndarray, rest_verts_m: np.ndarray,
                       size: int) -> TexelLayout:
    """Layout of a UV unwrap vt (T, 2) / ft (F, 3) of a mesh faces (F, 3) with rest vertices (V, 3) metres."""
    vt, ft = np.asarray(vt, np.float32), np.asarray(ft, np.int64)
    faces = np.asarray(faces, np.int64)
    if ft.shape != faces.shape:
        raise ValueError(f"UV faces ft {ft.shape} do not match the mesh faces {faces.shape}: the UV layout "
                         "belongs to another hand model")
    geom = texel_geometry(vt, ft, size)
    index = np.flatnonzero(geom.covered.ravel())
    index = index[np.argsort(geom.face_id.ravel()[index], kind="stable")]
    face = geom.face_id.ravel()[index].astype(np.int64)
    bary = geom.bary.reshape(-1, 3)[index]
    slot_of = np.full(size * size, -1, np.int64)
    slot_of[index] = np.arange(len(index))
    iy, ix = nearest_covered_index(geom.covered)
    gather_src = slot_of[(iy * size + ix).ravel()]
    yy, xx = np.divmod(np.arange(size * size), size)
    dist2 = (yy - iy.ravel()) ** 2 + (xx - ix.ravel()) ** 2
    band = np.flatnonzero((dist2 > 0) & (dist2 <= BAND_TEXELS ** 2))
    interp = _interp_matrix(faces[face], bary, len(rest_verts_m))
    with quiet_sparse():
        interp_t = interp.to_sparse_coo().t().coalesce().to_sparse_csr()
    face_start = np.searchsorted(face, np.arange(len(faces) + 1)).astype(np.int64)
    return TexelLayout(size, index, face, interp, interp_t, gather_src, faces, vt, ft,
                       texel_spacing_m(rest_verts_m, faces, vt, ft, size), band, face_start)


def layout_for_model(hand_model, size: int) -> TexelLayout:
    """The layout of a models.hand_model.layer.HandModel (needs its UV unwrap)."""
    if hand_model.uv is None:
        raise ValueError(f"hand model {hand_model.name!r} has no UV layout (vt/ft): texturing needs one; use "
                         "the embedded open model or a MANO file with a UV unwrap")
    vt, ft = (t.detach().cpu().numpy() for t in hand_model.uv)
    rest = hand_model.mano.v_template.detach().cpu().numpy()
    return build_texel_layout(vt, ft, hand_model.faces.cpu().numpy(), rest, size)


@dataclass(frozen=True)
class SlotSubset:
    """Some of a layout's slots: slots (M,) int64 slot indices; interp (M, V) their rows of layout.interp."""

    slots: torch.Tensor
    interp: torch.Tensor


def front_slots(layout: TexelLayout, cos_v: torch.Tensor) -> SlotSubset | None:
    """The slots of every face with a vertex facing some view (cos_v (B, V) view cosines > 0), None when that is
    all of them. A slot's view cosine interpolates its face's vertex cosines, so the slots left out face away
    from every view: they are never sampled nor needed as occluders (on a closed surface what faces away lies
    behind what faces the camera)."""
    facing = (cos_v[:, torch.from_numpy(layout.faces)].amax(dim=2) > 0).any(dim=0)
    if bool(facing.all()):
        return None
    bounds = torch.from_numpy(layout.face_start)
    starts, counts = bounds[:-1][facing], (bounds[1:] - bounds[:-1])[facing]
    # Slot ranges [start, start + count) of the facing faces, concatenated without a Python loop.
    slots = torch.arange(int(counts.sum())) + torch.repeat_interleave(starts - (torch.cumsum(counts, 0) - counts),
                                                                      counts)
    cols = layout.interp.col_indices().view(-1, 3).index_select(0, slots).reshape(-1)
    vals = layout.interp.values().view(-1, 3).index_select(0, slots).reshape(-1)
    crow = torch.arange(0, 3 * len(slots) + 1, 3, dtype=torch.int64)
    with quiet_sparse():
        return SlotSubset(slots, torch.sparse_csr_tensor(crow, cols, vals, (len(slots), layout.n_verts)))


def to_image(layout: TexelLayout, slots: np.ndarray, fill: float | None = None) -> np.ndarray:
    """Slot values (N, ...) -> texture image (S, S, ...) row 0 = top. fill=None: texels outside the charts
    take their nearest covered texel's value (layout.gather_src); else they are set to ``fill``."""
    slots = np.asarray(slots)
    s = layout.size
    if fill is None:
        return np.take(slots, layout.gather_src, axis=0).reshape((s, s) + slots.shape[1:])
    out = np.full((s * s,) + slots.shape[1:], fill, slots.dtype)
    out[layout.index] = slots
    return out.reshape((s, s) + slots.shape[1:])


def from_image(layout: TexelLayout, image: np.ndarray) -> np.ndarray:
    """Texture image (S, S, ...) -> slot values (N, ...)."""
    image = np.asarray(image)
    if image.shape[:2] != (layout.size, layout.size):
        raise ValueError(f"texture image is {image.shape[:2]}, the layout is {layout.size} x {layout.size}")
    return image.reshape((layout.size * layout.size,) + image.shape[2:])[layout.index]
