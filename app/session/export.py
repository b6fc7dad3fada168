"""Export of a recorded session for Blender / Unity: ``hand.glb`` (the final hands, textured, via trimesh) and
``sequence.glb`` (every recorded frame as a morph target of one mesh per hand side, with a stepped animation of
the morph weights and of the node scale, 0 while that hand was not seen).

Both files use glTF's axes (y up, z towards the viewer): points in the OpenCV left-camera frame are converted
with ``app.geometry.gl.CV_TO_GL``, so the scene appears as the left camera saw it. Meshes are split along
their UV seams (``models.hand_model.uv.unweld``) so each vertex has one UV.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.atomic_io import png_bytes, write_bytes_atomic
from app.geometry.gl import CV_TO_GL
from app.session.gltf import GlbBuilder
from app.types import HandMesh

SKIN_RGBA = (0.80, 0.62, 0.52, 1.0)
MAX_TARGETS = 600


def to_gltf_axes(points_cv: np.ndarray) -> np.ndarray:
    """(N, 3) OpenCV camera-frame points -> glTF axes, float32."""
    return (np.asarray(points_cv, np.float64) @ CV_TO_GL[:3, :3].T).astype(np.float32)


@dataclass(frozen=True)
class SplitMesh:
    """A hand mesh split for export. vertex_index (N,) into the hand model's vertices; uv (N, 2) float32
    ((0, 0) bottom-left) or None without a UV layout; faces (F, 3) int64 into the N vertices."""

    vertex_index: np.ndarray
    uv: np.ndarray | None
    faces: np.ndarray


def split_mesh(faces: np.ndarray, uv_layout) -> SplitMesh:
    """Split along UV seams when ``uv_layout`` = (vt, ft) fits the faces, else keep the mesh as it is."""
    if uv_layout is None or len(uv_layout[1]) != len(faces):
        return SplitMesh(np.arange(int(faces.max()) + 1), None, np.asarray(faces, np.int64))
    from models.hand_model.uv import unweld

    vt, ft = uv_layout
    u = unweld(faces, ft)
    return SplitMesh(u.vertex_index, np.asarray(vt, np.float32)[u.uv_index], u.faces)


def _trimesh_hand(mesh: HandMesh, uv_layout, texture: np.ndarray | None):
    import trimesh
    from PIL import Image

    split = split_mesh(mesh.faces, uv_layout if texture is not None else None)
    verts = to_gltf_axes(mesh.verts_m[split.vertex_index])
    faces = split.faces  # CV_TO_GL is a rotation (det +1): the winding stays outward
    if split.uv is None:
        colours = np.tile((np.array(SKIN_RGBA) * 255).astype(np.uint8), (len(verts), 1))
        return trimesh.Trimesh(verts, faces, vertex_colors=colours, process=False)
    visual = trimesh.visual.TextureVisuals(uv=split.uv, image=Image.fromarray(texture))
    return trimesh.Trimesh(verts, faces, visual=visual, process=False)


def export_final_glb(path: str | Path, meshes: tuple[HandMesh, ...], uv_layouts: dict, textures: dict) -> Path:
    """The given hands as one textured .glb (trimesh). uv_layouts: is_left -> (vt, ft) or None;
    textures: is_left -> (S, S, 3) uint8 sRGB, row 0 = top (a side without one is skin-coloured)."""
    import trimesh

    scene = trimesh.Scene()
    for m in meshes:
        name = "left_hand" if m.state.is_left else "right_hand"
        side = m.state.is_left
        scene.add_geometry(_trimesh_hand(m, uv_layouts.get(side), textures.get(side)), node_name=name,
                           geom_name=name)
    return write_bytes_atomic(Path(path), scene.export(file_type="glb"))


def _key_times_s(t_ns: list[int]) -> np.ndarray:
    """Animation key times in seconds from the first frame, made strictly increasing (glTF requires it)."""
    t = (np.asarray(t_ns, np.int64) - t_ns[0]) / 1e9
    for i in range(1, len(t)):
        t[i] = max(t[i], t[i - 1] + 1e-3)
    return t.astype(np.float32)


def _normals(verts_m: np.ndarray, faces: np.ndarray) -> np.ndarray:
    import trimesh

    return np.asarray(trimesh.Trimesh(verts_m, faces, process=False).vertex_normals, np.float32)


def _side_track(records, is_left: bool, max_targets: int) -> tuple[list[HandMesh], np.ndarray]:
    """The meshes of one side used as morph targets (at most max_targets, evenly picked) and, per record,
    the index of the target shown (-1 while the side was not seen yet or is absent)."""
    present = [(i, h) for i, r in enumerate(records) for h in r.hands if h.state.is_left == is_left]
    keep = np.unique(np.linspace(0, len(present) - 1, min(max_targets, len(present))).round().astype(int))
    targets = [present[k] for k in keep]
    shown = np.full(len(records), -1)
    seen = {i for i, _ in present}
    t = -1
    for i in range(len(records)):
        while t + 1 < len(targets) and targets[t + 1][0] <= i:
            t += 1
        shown[i] = t if i in seen else -1
    return [h for _, h in targets], shown


def _add_morph_mesh(b: GlbBuilder, targets: list[HandMesh], split: SplitMesh, material: int) -> int:
    """One mesh whose base is the first target and whose morph targets are all the targets."""
    welded = [_normals(m.verts_m, m.faces) for m in targets]
    pos = [to_gltf_axes(m.verts_m)[split.vertex_index] for m in targets]
    nrm = [to_gltf_axes(n)[split.vertex_index] for n in welded]
    prim = {"attributes": {"POSITION": b.floats(pos[0]), "NORMAL": b.floats(nrm[0])},
            "indices": b.indices(split.faces), "material": material,
            "targets": [{"POSITION": b.floats(p - pos[0]), "NORMAL": b.floats(n - nrm[0])}
                        for p, n in zip(pos, nrm, strict=True)]}
    if split.uv is not None:
        prim["attributes"]["TEXCOORD_0"] = b.floats(np.stack([split.uv[:, 0], 1.0 - split.uv[:, 1]], 1))
    return b.add("meshes", {"primitives": [prim], "weights": [0.0] * len(targets),
                            "extras": {"targetNames": [f"frame_{m.frame_id}" for m in targets]}})


def _animate(b: GlbBuilder, node: int, times: int, shown: np.ndarray, n_targets: int, anim: dict) -> None:
    weights = np.zeros((len(shown), n_targets), np.float32)
    rows = np.nonzero(shown >= 0)[0]
    weights[rows, shown[rows]] = 1.0
    scale = np.repeat((shown >= 0).astype(np.float32)[:, None], 3, 1)
    for path, values in (("weights", weights.reshape(-1)), ("scale", scale)):
        sampler = len(anim["samplers"])
        anim["samplers"].append({"input": times, "output": b.floats(values, target=None),
                                 "interpolation": "STEP"})
        anim["channels"].append({"sampler": sampler, "target": {"node": node, "path": path}})


def export_sequence_glb(path: str | Path, records, uv_layouts: dict, textures: dict,
                        max_targets: int = MAX_TARGETS) -> Path | None:
    """Every record's hands as a morph-target animation (see module doc); None when no record has a hand.
    textures: is_left -> (S, S, 3) uint8 (a side without one is skin-coloured)."""
    if not any(r.hands for r in records):
        return None
    b = GlbBuilder()
    times = b.floats(_key_times_s([r.t_capture_ns for r in records]), target=None)
    anim = {"name": "capture", "samplers": [], "channels": []}
    for is_left in (False, True):
        targets, shown = _side_track(records, is_left, max_targets)
        if not targets:
            continue
        texture = textures.get(is_left)
        split = split_mesh(targets[0].faces, uv_layouts.get(is_left) if texture is not None else None)
        material = b.colour_material(SKIN_RGBA) if split.uv is None else b.png_material(png_bytes(texture))
        mesh = _add_morph_mesh(b, targets, split, material)
        node = b.add("nodes", {"name": "left_hand" if is_left else "right_hand", "mesh": mesh})
        b.json["scenes"][0]["nodes"].append(node)
        _animate(b, node, times, shown, len(targets), anim)
    b.add("animations", anim)
    return write_bytes_atomic(Path(path), b.to_bytes())


def export_session(session_dir: str | Path) -> list[Path]:
    """hand.glb (the last frame with hands) and sequence.glb (all frames) of a recorded session directory."""
    from app.session.hand_log import HandLogReader
    from app.session.recorder import load_uv_layouts
    from app.session.texture_file import load_textures

    d = Path(session_dir)
    records = list(HandLogReader(d))
    layouts, textures = load_uv_layouts(d), load_textures(d)
    with_hands = [r for r in records if r.hands]
    if not with_hands:
        return []
    out = [export_final_glb(d / "hand.glb", with_hands[-1].hands, layouts, textures)]
    seq = export_sequence_glb(d / "sequence.glb", records, layouts, textures)
    return out + ([seq] if seq is not None else [])
