"""The hand model's UV layout as texel geometry: which face and where on it each texel lies.

Convention (written once here): UV (0, 0) is the texture's bottom-left, as OBJ/glTF viewers expect of the stored
``vt``; texture arrays are stored top row first, so texel row r, column c has its centre at
u = (c + 0.5) / S, v = 1 - (r + 0.5) / S. ``uv_to_pixel`` / ``pixel_to_uv`` are the only conversions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def uv_to_pixel(uv: np.ndarray, size: int) -> np.ndarray:
    """(..., 2) UV in [0, 1] -> (..., 2) continuous texel coordinates (x = column, y = row), pixel centres at
    integers, row 0 at the top (v = 1)."""
    uv = np.asarray(uv, np.float64)
    return np.stack([uv[..., 0] * size - 0.5, (1.0 - uv[..., 1]) * size - 0.5], axis=-1)


def pixel_to_uv(xy: np.ndarray, size: int) -> np.ndarray:
    """Inverse of uv_to_pixel."""
    xy = np.asarray(xy, np.float64)
    return np.stack([(xy[..., 0] + 0.5) / size, 1.0 - (xy[..., 1] + 0.5) / size], axis=-1)


@dataclass(frozen=True)
class TexelGeometry:
    """face_id: (S, S) int32, the face whose UV triangle covers each texel centre, -1 outside every chart;
    bary: (S, S, 3) float32 barycentric weights of the texel centre on that face's UV triangle (0 outside)."""

    face_id: np.ndarray
    bary: np.ndarray

    @property
    def covered(self) -> np.ndarray:
        """(S, S) bool: texels inside some chart."""
        return self.face_id >= 0


def _barycentric(tri_xy: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Barycentric weights (N, 3) of points px (N, 2) on triangles tri_xy (N, 3, 2)."""
    a, b, c = tri_xy[:, 0], tri_xy[:, 1], tri_xy[:, 2]
    v0, v1, v2 = b - a, c - a, px - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    w1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    w2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    return np.stack([1.0 - w1 - w2, w1, w2], axis=1)


def _cover(tri_xy: np.ndarray, size: int) -> np.ndarray:
    """(S, S) int32 face ids by scanning each triangle's texel box (faces later in the list win overlaps)."""
    face_id = np.full((size, size), -1, np.int32)
    lo = np.clip(np.floor(tri_xy.min(1)).astype(int), 0, size - 1)
    hi = np.clip(np.ceil(tri_xy.max(1)).astype(int), 0, size - 1)
    for f in range(len(tri_xy)):
        ys, xs = np.mgrid[lo[f, 1]:hi[f, 1] + 1, lo[f, 0]:hi[f, 0] + 1]
        pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
        w = _barycentric(np.repeat(tri_xy[f:f + 1], len(pts), 0), pts)
        inside = (w >= -1e-9).all(1)
        face_id[ys.ravel()[inside], xs.ravel()[inside]] = f
    return face_id


def texel_geometry(vt: np.ndarray, ft: np.ndarray, size: int) -> TexelGeometry:
    """Texel -> (face, barycentrics) for a UV layout vt (T, 2), ft (F, 3) at an S x S texture."""
    tri_xy = uv_to_pixel(np.asarray(vt)[np.asarray(ft)], size)
    face_id = _cover(tri_xy, size)
    ys, xs = np.nonzero(face_id >= 0)
    bary = np.zeros((size, size, 3), np.float32)
    fid = face_id[ys, xs]
    bary[ys, xs] = _barycentric(tri_xy[fid], np.stack([xs, ys], 1).astype(np.float64)).clip(0, 1)
    return TexelGeometry(face_id, bary)


def interpolate_on_texels(geom: TexelGeometry, faces: np.ndarray, vertex_values: np.ndarray) -> np.ndarray:
    """(S, S, C) float32 per-texel interpolation of per-vertex values (V, C) (zeros outside the charts)."""
    out = np.zeros(geom.face_id.shape + (vertex_values.shape[1],), np.float32)
    ys, xs = np.nonzero(geom.covered)
    corner = np.asarray(vertex_values)[np.asarray(faces)[geom.face_id[ys, xs]]]  # (N, 3, C)
    out[ys, xs] = np.einsum("nk,nkc->nc", geom.bary[ys, xs], corner)
    return out


def nearest_covered_index(covered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows (S, S), cols (S, S)) int index of each texel's nearest covered texel (itself when covered):
    ``image[index]`` fills everything outside the charts so bilinear lookups and mip-maps near seams never
    blend in background."""
    from scipy.ndimage import distance_transform_edt

    if not covered.any():
        raise ValueError("no covered texels: the UV layout does not cover the texture")
    _, (iy, ix) = distance_transform_edt(~covered, return_indices=True)
    return iy, ix



@dataclass(frozen=True)
class Unwelded:
    """A mesh split along UV seams so every render vertex has one UV: vertex_index (V',) into the model's
    vertices, uv_index (V',) into vt, faces (F, 3) int64 into the V' render vertices (same face order)."""

    vertex_index: np.ndarray
    uv_index: np.ndarray
    faces: np.ndarray


def unweld(faces: np.ndarray, ft: np.ndarray) -> Unwelded:
    """Render vertices = the unique (vertex, uv) corner pairs of (faces, ft)."""
    pairs = np.stack([np.asarray(faces).ravel(), np.asarray(ft).ravel()], 1)
    uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
    return Unwelded(uniq[:, 0].astype(np.int64), uniq[:, 1].astype(np.int64),
                    inverse.reshape(-1, 3).astype(np.int64))
