"""A fast lossless PNG encoder for recorded camera frames: every row with the 'Up' filter (PNG spec, filter
type 2: each byte minus the byte above it), one zlib stream at level 1 with the run-length strategy (Z_RLE:
matches only at distance 1, i.e. runs, which is most of what an Up-filtered image offers).

Why: OpenCV's encoder (level 1) took ~14 ms of CPU per 640x360 view of the synthetic source, this one ~5.7 ms
(zlib's default strategy at level 1: ~8.9 ms), with files ~12 % smaller (347 vs 392 kB); a live recording
encodes every frame at the camera's rate (30 fps: ~0.9 of a core with OpenCV's). The output is a standard
8-bit RGB PNG: OpenCV, Pillow and any viewer read it; the recordings' format is unchanged.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FILTER_UP = 2


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def up_filtered_rows(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, 1 + 3 W) uint8 scanlines: the filter byte, then row - row above (mod 256; the first
    row is taken as is, its 'above' being zero)."""
    h, w, _ = rgb.shape
    rows = rgb.reshape(h, 3 * w)
    out = np.empty((h, 1 + 3 * w), np.uint8)
    out[:, 0] = _FILTER_UP
    out[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])  # uint8 arithmetic wraps mod 256, as the filter wants
    return out


def encode_png_rgb(rgb: np.ndarray, level: int = 1, strategy: int = zlib.Z_RLE) -> bytes:
    """(H, W, 3) uint8 RGB -> PNG file bytes (8-bit truecolour, no interlace)."""
    rgb = np.ascontiguousarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"encode_png_rgb: expected (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    h, w, _ = rgb.shape
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # bit depth 8, colour type 2 (RGB)
    packer = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
    data = packer.compress(up_filtered_rows(rgb).tobytes()) + packer.flush()
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
