"""Procedural skin textures painted through the hand model's UV layout.

Each texel knows where it lies on the rest-pose hand (models/hand_model/uv.py), so skin detail is painted in 3D
and lands on the surface wherever the UV charts put it: a tone from light to deep, albedo variation at two
scales, a lighter palm, flexion creases at the finger joints and across the palm, knuckle wrinkles on the back,
nails. Pure numpy; deterministic from the generator passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.hand_model.anatomy import MANO_PARENTS
from models.hand_model.uv import interpolate_on_texels, nearest_covered_index, texel_geometry
from models.synth.appearance import sample_skin_tone, smooth_noise

# MANO joint ids per finger (thumb, index, middle, ring, pinky) from knuckle to the last joint.
FINGER_JOINTS = ((13, 14, 15), (1, 2, 3), (4, 5, 6), (10, 11, 12), (7, 8, 9))


@dataclass(frozen=True)
class SkinTexture:
    """image: (S, S, 3) uint8 sRGB albedo, row 0 = top (UV v = 1); vt: (T, 2) float32 UVs, (0, 0) bottom-left;
    ft: (F, 3) int64 UV faces, one per mesh face; tone: (3,) float sRGB base skin tone (for the arm)."""

    image: np.ndarray
    vt: np.ndarray
    ft: np.ndarray
    tone: np.ndarray


def _vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    fn = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    vn = np.zeros_like(verts)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class TexelSurface:
    """Per covered texel (N of them): pos_m (N, 3) rest-pose position; normal (N, 3); yx (N, 2) int texel
    row/column; part (N,) int (-1 palm, 0..4 thumb..pinky); weights (N, 16) interpolated skinning weights
    (smooth across part borders, unlike part)."""

    pos_m: np.ndarray
    normal: np.ndarray
    yx: np.ndarray
    part: np.ndarray
    covered: np.ndarray
    weights: np.ndarray


def texel_surface(data: dict, size: int) -> TexelSurface:
    """Rest-pose surface samples of every covered texel of the model's UV layout."""
    verts, faces = np.asarray(data["v_template"], np.float64), np.asarray(data["f"], np.int64)
    geom = texel_geometry(np.asarray(data["vt"]), np.asarray(data["ft"]), size)
    values = np.concatenate([verts, _vertex_normals(verts, faces), np.asarray(data["weights"])], axis=1)
    per_texel = interpolate_on_texels(geom, faces, values)
    ys, xs = np.nonzero(geom.covered)
    part_face = np.asarray(data["vertex_part"])[faces].max(1)  # a face touching a finger paints as finger
    normal = per_texel[ys, xs, 3:6]
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    return TexelSurface(per_texel[ys, xs, :3].astype(np.float64), normal, np.stack([ys, xs], 1),
                        part_face[geom.face_id[ys, xs]], geom.covered, per_texel[ys, xs, 6:].astype(np.float64))


class SkinPainter:
    """Paints random skin textures for one hand model (right or left: the layout and rest shape decide)."""

    def __init__(self, data: dict, size: int = 512):
        self.size = size
        self.surf = texel_surface(data, size)
        verts = np.asarray(data["v_template"], np.float64)
        self.joints_m = np.asarray(data["J_regressor"]) @ verts
        self.tips_m = verts[np.asarray(data["tip_vertex_ids"])]
        # Rows of joint_frames: (flexion, abduction, twist); the abduction axis points to the finger pad.
        self.pad_dir = np.asarray(data["joint_frames"])[:, 1]
        self.vt = np.asarray(data["vt"], np.float32)
        self.ft = np.asarray(data["ft"], np.int64)
        # Static per-texel maps, computed once; paint() only draws random tones, strengths and noise.
        self.pad = self._pad_side()
        self.creases = self._creases(np.random.default_rng(0))
        self.knuckle = np.exp(-(np.min(np.linalg.norm(self.surf.pos_m[:, None] - self.joints_m[None, 1:], axis=2),
                                       1) / 0.008) ** 2)
        self.nail_w, self.nail_edge = self._nail_maps()
        self.fill_index = nearest_covered_index(self.surf.covered)

    def paint(self, rng: np.random.Generator, tone: np.ndarray | None = None) -> SkinTexture:
        """A random skin of the given (or a random) sRGB tone."""
        tone = sample_skin_tone(rng) if tone is None else np.asarray(tone, np.float64)
        s = self.surf
        col = self._albedo(tone, rng)
        col *= (1.0 - rng.uniform(0.08, 0.18) * self.creases)[:, None]
        col = self._nails(col, tone)
        img = np.zeros((self.size, self.size, 3), np.float32)
        img[s.yx[:, 0], s.yx[:, 1]] = col
        img = img[self.fill_index]
        return SkinTexture(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8), self.vt, self.ft, tone)

    def _albedo(self, tone: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(N, 3): tone, lighter and pinker palm side, blotches, fine mottling, redder knuckles."""
        s, pad = self.surf, self.pad
        col = np.repeat(tone[None], len(s.pos_m), 0)
        lift = 0.10 + 0.25 * (1.0 - tone.mean())  # deep skin has a much lighter palm
        col = col + pad[:, None] * lift * (np.array([1.0, 0.86, 0.80]) - col) * 0.6
        col *= (1.0 + 0.05 * smooth_noise(s.pos_m, rng, 0.04, n_waves=16, spread=(0.6, 1.4)))[:, None]
        col *= (1.0 + 0.012 * smooth_noise(s.pos_m, rng, 0.008, n_waves=16, spread=(0.6, 1.4)))[:, None]
        return col + (self.knuckle * (1 - pad))[:, None] * np.array([0.05, -0.02, -0.02]) * tone

    def _pad_side(self) -> np.ndarray:
        """(N,) in [0, 1]: 1 on the palm and finger pads, 0 on the back of the hand."""
        s = self.surf
        # Per joint the direction its pad faces (the palm's for the root), blended by the skinning weights so
        # the palm/back split has no seams where parts meet.
        dirs = np.concatenate([[[0.0, -1.0, 0.0]], self.pad_dir], axis=0)
        d = s.weights @ dirs
        d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
        return np.clip(0.5 + 1.5 * np.sum(s.normal * d, axis=1), 0, 1)

    def _creases(self, rng: np.random.Generator) -> np.ndarray:
        """(N,) crease darkness in [0, 1]: double flexion lines at each finger joint on the pad side, wrinkle
        bands on the back of the knuckles, and three palm lines."""
        s, pad = self.surf, self.pad
        out = np.zeros(len(s.pos_m))
        for chain in FINGER_JOINTS:
            on = np.clip(s.weights[:, list(chain)].sum(1) * 1.5, 0, 1)
            for j in chain[1:]:
                axis = self._bone_axis(j)
                t = (s.pos_m - self.joints_m[j]) @ axis
                lines = np.exp(-((np.abs(t) - 0.0012) / 0.0005) ** 2)
                wrinkles = np.exp(-(t / 0.003) ** 2) * (0.5 + 0.5 * np.sin(t * 2 * np.pi / 0.0013))
                out = np.maximum(out, on * (pad * lines + 0.45 * (1 - pad) * wrinkles))
        return np.clip(out + s.weights[:, 0] * pad * self._palm_lines(rng), 0, 1)

    def _bone_axis(self, j: int) -> np.ndarray:
        """Unit direction of the bone leaving joint j (towards its child joint or the fingertip)."""
        children = np.nonzero(np.asarray(MANO_PARENTS) == j)[0]
        end = self.joints_m[children[0]] if len(children) else self.tips_m[_tip_index(j)]
        d = end - self.joints_m[j]
        return d / np.linalg.norm(d)

    def _palm_lines(self, rng: np.random.Generator) -> np.ndarray:
        """(N,) darkness of the heart, head and life lines, quadratic curves between palm landmarks (MANO
        joints: 0 wrist, 1 index MCP, 4 middle MCP, 7 pinky MCP, 10 ring MCP, 13 thumb CMC)."""
        J = self.joints_m
        jit = rng.normal(0, 0.002, (3, 3, 3))
        curves = (
            (0.25 * J[0] + 0.75 * J[7], 0.3 * J[0] + 0.7 * J[10], 0.2 * J[0] + 0.8 * J[4] * 0.5 + 0.4 * J[1]),
            (0.45 * J[0] + 0.55 * J[1] + 0.2 * (J[13] - J[1]), 0.5 * J[0] + 0.5 * J[4], 0.5 * J[0] + 0.5 * J[7]),
            (0.45 * J[0] + 0.55 * J[1] + 0.2 * (J[13] - J[1]), 0.65 * J[0] + 0.35 * J[13] + 0.1 * (J[4] - J[0]),
             0.9 * J[0] + 0.1 * J[13]),
        )
        out = np.zeros(len(self.surf.pos_m))
        for c, jj in zip(curves, jit, strict=True):
            out = np.maximum(out, np.exp(-(_distance_to_curve(self.surf.pos_m, np.asarray(c) + jj) / 0.0006) ** 2))
        return out

    def _nail_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """(N,) nail coverage on the back of each distal phalanx and (N,) position towards the free edge."""
        s = self.surf
        cover, edge = np.zeros(len(s.pos_m)), np.zeros(len(s.pos_m))
        for f, chain in enumerate(FINGER_JOINTS):
            last = chain[-1]
            axis, length = self._bone_axis(last), np.linalg.norm(self.tips_m[f] - self.joints_m[last])
            t = (s.pos_m - self.joints_m[last]) @ axis / length  # 0 at the DIP, 1 at the tip
            width = np.linalg.norm(s.pos_m - self.joints_m[last] - np.outer(t * length, axis), axis=1)
            inside = (s.part == f) & (t > 0.45) & (self.pad < 0.15) & (t < 1.02)
            w = inside * np.clip((t - 0.45) / 0.08, 0, 1) * np.clip(1.2 - width / 0.0085, 0, 1)
            cover = np.maximum(cover, w)
            edge = np.where(inside, np.clip((t - 0.9) / 0.1, 0, 1), edge)
        return cover, edge

    def _nails(self, col: np.ndarray, tone: np.ndarray) -> np.ndarray:
        """Blend nails (pinkish over the bed, lighter at the free edge) onto the albedo."""
        nail_rgb = np.clip(0.55 * tone + np.array([0.40, 0.30, 0.30]), 0, 1)
        e = self.nail_edge[:, None]
        c = nail_rgb * (1 - e) + np.array([0.95, 0.92, 0.88]) * e
        w = self.nail_w[:, None]
        return col * (1 - w) + c * w


def _tip_index(j: int) -> int:
    return next(f for f, chain in enumerate(FINGER_JOINTS) if chain[-1] == j)


def _distance_to_curve(points: np.ndarray, ctrl: np.ndarray, n: int = 24) -> np.ndarray:
    """(N,) distance from points (N, 3) to a quadratic Bezier curve with control points ctrl (3, 3)."""
    t = np.linspace(0, 1, n)[:, None]
    curve = (1 - t) ** 2 * ctrl[0] + 2 * t * (1 - t) * ctrl[1] + t ** 2 * ctrl[2]
    return np.min(np.linalg.norm(points[:, None] - curve[None], axis=2), axis=1)
