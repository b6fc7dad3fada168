"""Finding the texture (and hand shape) of a recorded session, for ``python -m app.texture export``.

A session directory holds, per hand side, ``texture_right.npz`` / ``texture_left.npz`` in the format of
io.py (texture + shape + side + layout: everything an export needs). Sessions written before that file existed
hold ``texture_<side>.png`` (uint8 sRGB, row 0 = top) and ``texture_<side>_weight.npy``; for those the shape is
taken from the last frame of that side in ``hands.bin`` (app/session/hand_log.py) and the layout is not checked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.texture.io import TextureFile, TextureFileError, load_texture_file
from app.types import N_SHAPE, TextureMap

SIDES = ("right", "left")


def texture_name(is_left: bool) -> str:
    """The texture file of a hand side in a session directory."""
    return f"texture_{'left' if is_left else 'right'}.npz"


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            image = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise TextureFileError(f"{path}: not a readable PNG ({exc}); re-export the session's texture") from None
    if image.shape[0] != image.shape[1]:
        raise TextureFileError(f"{path}: a texture is square, this image is {image.shape[1]} x {image.shape[0]}")
    return image


def png_texture(path: str | Path, is_left: bool, shape: np.ndarray | None = None) -> TextureFile:
    """A TextureFile from a bare PNG: weight 1 everywhere, shape zeros unless given, layout unknown."""
    rgb = _read_png(Path(path)).astype(np.float32) / 255.0
    weight = np.ones(rgb.shape[:2], np.float32)
    betas = np.zeros(N_SHAPE, np.float32) if shape is None else np.asarray(shape, np.float32)
    return TextureFile(TextureMap(rgb, weight), betas, is_left, "", "")


def texture_from_file(path: str | Path, is_left: bool = False) -> TextureFile:
    """--texture: a .npz texture file, or a PNG (then the side is ``is_left`` and the shape the mean hand)."""
    path = Path(path)
    if path.suffix.lower() == ".png":
        return png_texture(path, is_left)
    return load_texture_file(path)


def _last_shape(session: Path, is_left: bool) -> np.ndarray | None:
    """Betas of the last logged frame of that side in hands.bin, None when there is no log or no such frame."""
    try:
        from app.session.hand_log import HandLogReader

        reader = HandLogReader(session)
    except (ImportError, FileNotFoundError, OSError):
        return None
    for i in range(len(reader) - 1, -1, -1):
        for hand in reader[i].hands:
            if hand.state.is_left == is_left:
                return hand.state.shape
    return None


def _legacy_texture(session: Path, is_left: bool) -> TextureFile | None:
    side = "left" if is_left else "right"
    png = session / f"texture_{side}.png"
    if not png.is_file():
        return None
    tex = png_texture(png, is_left, _last_shape(session, is_left))
    weight_path = session / f"texture_{side}_weight.npy"
    if weight_path.is_file():
        weight = np.load(weight_path).astype(np.float32)
        if weight.shape == tex.texture.weight.shape:
            tex = TextureFile(TextureMap(tex.texture.rgb, weight), tex.shape, is_left, "", "")
    return tex


def session_texture(session_dir: str | Path, side: str | None = None) -> tuple[TextureFile, Path]:
    """The texture of one hand of a session (``side`` or the only one / the right one) and the file it came from."""
    session = Path(session_dir)
    if not session.is_dir():
        raise TextureFileError(f"--session {session}: no such directory; pass a session recorded by the app")
    for s in ([side] if side else SIDES):
        is_left = s == "left"
        path = session / texture_name(is_left)
        if path.is_file():
            return load_texture_file(path), path
        legacy = _legacy_texture(session, is_left)
        if legacy is not None:
            return legacy, session / f"texture_{s}.png"
    wanted = texture_name(side == "left") if side else " or ".join(texture_name(s == "left") for s in SIDES)
    raise TextureFileError(f"--session {session}: no texture found ({wanted}); the session was recorded without "
                           "the texture stage, or pass --texture FILE")
