"""The personal texture on disk: one ``.npz`` per hand side with the hand shape it belongs to (docs/TEXTURE.md).

Format ``realhands-texture`` version 1, an uncompressed-or-deflated numpy ``.npz`` with these keys:

| key | value |
|---|---|
| format | str ``realhands-texture`` |
| version | int64 1 |
| rgb | (S, S, 3) float32 sRGB in [0, 1], row 0 = top = UV v 1 (TextureMap.rgb; every texel filled) |
| weight | (S, S) float32 >= 0, updates that wrote each texel; 0 = never seen, filled (TextureMap.weight) |
| n_updates | int64 |
| shape | (10,) float32 betas of the session's hand (HandState.shape) |
| is_left | bool |
| model | str, the hand model's name (``open`` or ``mano``) |
| layout | str, ``layout_id`` of the UV layout (vt, ft) the texture was made in |

Writes go to ``<name>.tmp.npz`` first, then ``os.replace``: a crash never leaves a half-written texture under the
real name. Every problem on reading raises TextureFileError naming the file, what is wrong and what to do.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.types import N_SHAPE, TextureMap

FORMAT = "realhands-texture"
VERSION = 1
REQUIRED = ("format", "version", "rgb", "weight", "n_updates", "shape", "is_left", "model", "layout")


class TextureFileError(ValueError):
    """A texture file is missing, corrupt, from another format or version, or does not fit the hand model."""


@dataclass(frozen=True)
class TextureFile:
    """A saved texture: texture (TextureMap), shape (10,) float32 betas, is_left, model name, layout id."""

    texture: TextureMap
    shape: np.ndarray
    is_left: bool
    model: str
    layout: str


def layout_id(vt: np.ndarray, ft: np.ndarray) -> str:
    """Short fingerprint of a UV layout: vt (T, 2) float32 and ft (F, 3) int64 as the hand model holds them."""
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(vt, np.float32).tobytes())
    h.update(np.asarray(ft, np.int64).tobytes())
    return f"T{len(vt)}-F{len(ft)}-{h.hexdigest()[:12]}"


def save_texture_file(path: str | Path, tex: TextureFile) -> Path:
    """Write ``tex`` to ``path`` (.npz) atomically; returns the path."""
    path = Path(path)
    if path.suffix != ".npz":
        raise TextureFileError(f"{path}: texture files end in .npz; pick a name like texture_right.npz")
    tmp = path.with_name(path.stem + ".tmp.npz")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, format=np.array(FORMAT), version=np.int64(VERSION), rgb=tex.texture.rgb,
                            weight=tex.texture.weight, n_updates=np.int64(tex.texture.n_updates),
                            shape=np.asarray(tex.shape, np.float32), is_left=np.bool_(tex.is_left),
                            model=np.array(tex.model), layout=np.array(tex.layout))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def _read_arrays(path: Path) -> dict:
    if not path.is_file():
        raise TextureFileError(f"{path}: no such texture file; save one with app.texture.io.save_texture_file "
                               "or pass the .npz a session wrote (texture_right.npz / texture_left.npz)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        raise TextureFileError(f"{path}: not a readable texture file ({type(exc).__name__}: {exc}); the file is "
                               "corrupt or truncated: re-export it from the session, or delete it and capture "
                               "the texture again") from None


def _check_keys(path: Path, z: dict) -> None:
    missing = [k for k in REQUIRED if k not in z]
    if missing:
        raise TextureFileError(f"{path}: not a {FORMAT} file (missing {', '.join(missing)}); save textures with "
                               "app.texture.io.save_texture_file")
    if str(z["format"]) != FORMAT:
        raise TextureFileError(f"{path}: format {str(z['format'])!r}, expected {FORMAT!r}")
    if int(z["version"]) != VERSION:
        raise TextureFileError(f"{path}: {FORMAT} version {int(z['version'])}, this program reads version "
                               f"{VERSION}; use the program version that wrote it or re-export the texture")


def _check_arrays(path: Path, z: dict) -> None:
    rgb, weight, shape = z["rgb"], z["weight"], z["shape"]
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] != rgb.shape[1] or rgb.dtype != np.float32:
        raise TextureFileError(f"{path}: rgb must be a square (S, S, 3) float32 image, got {rgb.shape} {rgb.dtype}")
    if weight.shape != rgb.shape[:2] or weight.dtype != np.float32:
        raise TextureFileError(f"{path}: weight must be ({rgb.shape[0]}, {rgb.shape[1]}) float32 like rgb, got "
                               f"{weight.shape} {weight.dtype}")
    if shape.shape != (N_SHAPE,):
        raise TextureFileError(f"{path}: shape must hold {N_SHAPE} betas, got shape {shape.shape}")
    if not (np.isfinite(rgb).all() and np.isfinite(weight).all() and np.isfinite(shape).all()):
        raise TextureFileError(f"{path}: contains NaN or inf values; the file is damaged: re-export it")
    if rgb.min() < 0.0 or rgb.max() > 1.0 or weight.min() < 0.0:
        raise TextureFileError(f"{path}: rgb must lie in [0, 1] and weight be >= 0; the file is damaged")


def load_texture_file(path: str | Path) -> TextureFile:
    """Read and check a texture file (TextureFileError on any problem)."""
    path = Path(path)
    z = _read_arrays(path)
    _check_keys(path, z)
    _check_arrays(path, z)
    texture = TextureMap(z["rgb"], z["weight"], int(z["n_updates"]))
    return TextureFile(texture, z["shape"].astype(np.float32), bool(z["is_left"]), str(z["model"]), str(z["layout"]))


def check_fits(tex: TextureFile, path: str | Path, layout: str, is_left: bool) -> None:
    """Raise TextureFileError unless the texture was made in UV layout ``layout`` for the side ``is_left``."""
    side = "left" if tex.is_left else "right"
    if tex.is_left != is_left:
        raise TextureFileError(f"{path}: a {side} hand texture was given for the "
                               f"{'left' if is_left else 'right'} hand; pass the texture of that side")
    if tex.layout != layout:
        raise TextureFileError(f"{path}: made for UV layout {tex.layout} of hand model {tex.model!r}, the current "
                               f"model's layout is {layout}; use the same hand model (--mano-dir or not) as the "
                               "session that captured it")
