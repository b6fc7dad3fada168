"""The session textures on disk, one per hand side: ``texture_right.png`` / ``texture_left.png`` (uint8 sRGB,
row 0 = top = UV v 1, as the texture stage filled it) and ``texture_right_weight.npy`` / ``..._left...``
(float32 (S, S), how often each texel was observed; 0 = filled from its surroundings). Written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from app.types import TextureMap

SKIN_RGB = np.array([0.80, 0.62, 0.52], np.float32)  # sRGB albedo of surfaces without a texture


def texture_stem(is_left: bool) -> str:
    return "texture_left" if is_left else "texture_right"


def texture_rgb8(texture: TextureMap) -> np.ndarray:
    """(S, S, 3) uint8 sRGB image of a TextureMap's rgb (float [0, 1])."""
    return (np.clip(texture.rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_texture(session_dir: str | Path, texture: TextureMap, is_left: bool) -> Path:
    import imageio.v2 as imageio

    d, stem = Path(session_dir), texture_stem(is_left)
    tmp = d / f"{stem}.tmp.png"
    imageio.imwrite(tmp, texture_rgb8(texture))
    os.replace(tmp, d / f"{stem}.png")
    tmp_w = d / f"{stem}_weight.tmp.npy"
    np.save(tmp_w, texture.weight)
    os.replace(tmp_w, d / f"{stem}_weight.npy")
    return d / f"{stem}.png"


def load_textures(session_dir: str | Path) -> dict:
    """is_left -> saved (S, S, 3) uint8 texture, for the sides the session has one of."""
    import imageio.v2 as imageio

    out = {}
    for is_left in (False, True):
        path = Path(session_dir) / f"{texture_stem(is_left)}.png"
        if path.is_file():
            out[is_left] = np.asarray(imageio.imread(path))[..., :3]
    return out
