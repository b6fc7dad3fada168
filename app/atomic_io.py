"""Files written so that a crash never leaves half a file: write a temporary sibling, fsync, then rename over the
target (os.replace is atomic on one filesystem). Used for recordings' metadata, sessions, textures and exports."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via ``path.tmp`` + fsync + rename; returns the path."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def write_json_atomic(path: str | Path, data: dict) -> Path:
    """``data`` as indented JSON, written atomically."""
    return write_bytes_atomic(path, json.dumps(data, indent=1).encode())


def png_bytes(image: np.ndarray) -> bytes:
    """(H, W, 3 or 4) uint8 image -> PNG file bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
