"""Export of a textured hand: Wavefront OBJ + MTL + PNG, and glTF binary (.glb) through trimesh.

UV convention at this boundary (the one place it changes): our UVs have (0, 0) at the texture's bottom-left
(models/hand_model/uv.py), as OBJ's ``vt`` does, so OBJ gets them unchanged. glTF puts TEXCOORD_0's origin at the
image's TOP-left, so the .glb holds (u, 1 - v); trimesh's glTF writer does that flip (and its reader flips
back), which tests/app/texture/test_export.py checks in the raw .glb bytes. The PNG is stored top row first in
both, the same array as TextureMap.rgb.

Geometry: the hand model with the session's shape in its rest (flat) pose, metres, in the model frame (x along
the fingers, y out of the back of the hand, z towards the little finger for the right hand), which glTF viewers
and Blender show as a hand lying palm down. Every file is written to a temporary name, then renamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.atomic_io import png_bytes, write_bytes_atomic
from models.hand_model.uv import unweld

EXPORT_SUFFIXES = (".glb", ".obj")


@dataclass(frozen=True)
class TexturedHand:
    """verts_m (V, 3) float32 metres; faces (F, 3) int64; vt (T, 2) float32 UVs ((0, 0) bottom-left); ft (F, 3)
    int64 UV faces; image (S, S, 3) uint8 sRGB, row 0 = top."""

    verts_m: np.ndarray
    faces: np.ndarray
    vt: np.ndarray
    ft: np.ndarray
    image: np.ndarray


def texture_rgb8(rgb: np.ndarray) -> np.ndarray:
    """(S, S, 3) float sRGB in [0, 1] -> uint8, rounded."""
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def rest_hand(hand_model, shape: np.ndarray, image: np.ndarray) -> TexturedHand:
    """The hand model with betas ``shape`` (10,) in its rest pose, wearing ``image`` (S, S, 3) uint8."""
    if hand_model.uv is None:
        raise ValueError(f"hand model {hand_model.name!r} has no UV layout: nothing to put the texture on")
    with torch.no_grad():
        out = hand_model(torch.zeros(1, 48), torch.as_tensor(shape, dtype=torch.float32)[None])
    vt, ft = (t.cpu().numpy() for t in hand_model.uv)
    return TexturedHand(out.verts_m[0].numpy().astype(np.float32), hand_model.faces.cpu().numpy(),
                        vt.astype(np.float32), ft.astype(np.int64), np.ascontiguousarray(image, np.uint8))


def trimesh_hand(hand: TexturedHand):
    """The hand as a trimesh.Trimesh split along UV seams (one UV per vertex), with a PBR material whose base
    colour is the texture (not metallic, fairly rough skin)."""
    import trimesh
    from PIL import Image

    u = unweld(hand.faces, hand.ft)
    material = trimesh.visual.material.PBRMaterial(name="hand_skin", baseColorTexture=Image.fromarray(hand.image),
                                                   baseColorFactor=[255, 255, 255, 255], metallicFactor=0.0,
                                                   roughnessFactor=0.65)
    visual = trimesh.visual.TextureVisuals(uv=hand.vt[u.uv_index], material=material)
    return trimesh.Trimesh(hand.verts_m[u.vertex_index], u.faces, visual=visual, process=False)


def export_glb(path: str | Path, hand: TexturedHand) -> Path:
    """Write the textured hand as a .glb (trimesh's glTF 2.0 writer; TEXCOORD_0 = (u, 1 - v))."""
    import trimesh

    return write_bytes_atomic(Path(path), trimesh.exchange.gltf.export_glb(trimesh_hand(hand)))


def obj_text(hand: TexturedHand, mtl_name: str) -> str:
    """OBJ with per-corner UVs (f v/vt/vn): positions, UVs as stored ((0, 0) bottom-left), vertex normals."""
    import trimesh

    normals = trimesh.Trimesh(hand.verts_m, hand.faces, process=False).vertex_normals
    lines = ["# RealisticHands Live textured hand (metres, hand model frame)", f"mtllib {mtl_name}", "o hand"]
    lines += [f"v {x:.7f} {y:.7f} {z:.7f}" for x, y, z in hand.verts_m]
    lines += [f"vt {u:.7f} {v:.7f}" for u, v in hand.vt]
    lines += [f"vn {x:.6f} {y:.6f} {z:.6f}" for x, y, z in normals]
    lines.append("usemtl hand_skin")
    lines += ["f " + " ".join(f"{a + 1}/{t + 1}/{a + 1}" for a, t in zip(f, ft, strict=True))
              for f, ft in zip(hand.faces, hand.ft, strict=True)]
    return "\n".join(lines) + "\n"


def mtl_text(png_name: str) -> str:
    """One diffuse-textured material (white Kd so viewers show the texture as it is)."""
    return ("# RealisticHands Live hand material\nnewmtl hand_skin\nKa 1.000 1.000 1.000\nKd 1.000 1.000 1.000\n"
            f"Ks 0.000 0.000 0.000\nd 1.0\nillum 1\nmap_Kd {png_name}\n")


def export_obj(path: str | Path, hand: TexturedHand) -> list[Path]:
    """Write NAME.obj, NAME.mtl and NAME.png side by side (the .obj refers to the others by file name)."""
    path = Path(path)
    mtl, png = path.with_suffix(".mtl"), path.with_suffix(".png")
    return [write_bytes_atomic(png, png_bytes(hand.image)), write_bytes_atomic(mtl, mtl_text(png.name).encode()),
            write_bytes_atomic(path, obj_text(hand, mtl.name).encode())]


def export_textured(path: str | Path, hand: TexturedHand) -> list[Path]:
    """Export by the file's suffix: .glb or .obj (+ .mtl + .png)."""
    path = Path(path)
    if path.suffix.lower() == ".glb":
        return [export_glb(path, hand)]
    if path.suffix.lower() == ".obj":
        return export_obj(path, hand)
    raise ValueError(f"{path}: cannot export to {path.suffix!r}; name the output FILE.glb or FILE.obj")
