"""Crash-safe, append-only log of per-frame hand states (``hands.bin`` in a session directory).

Record layout (little-endian): a 16-byte header -- magic ``RHH1``, payload length u32, payload CRC32 u32,
CRC32 of the preceding 12 header bytes u32 -- then the payload: an uncompressed ``.npz`` holding

| key | value |
|---|---|
| frame_id, t_capture_ns, t_done_ns | int64 scalars (the source's frame id and clock; done = monotonic ns) |
| n_hands | int64 |
| h{i}_pose (48,), h{i}_shape (10,), h{i}_transl_m (3,) | float32 HandState (axis-angle, betas, metres) |
| h{i}_is_left | bool |
| h{i}_verts_m (V, 3), h{i}_joints_m (21, 3) | float32 metres, left-camera frame |
| h{i}_fit_residual | float64 |

Faces are not repeated per record: ``faces_left.npy`` / ``faces_right.npy`` are written (atomically) before
the first record of that side. Every record is one unbuffered ``write``, so after ``kill -9`` every record
whose write returned is complete; ``fsync`` runs every ``fsync_interval_s`` and at close (power loss).
Readers stop at the first truncated or corrupt record and say so in ``tail_problem``.
"""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.types import HandMesh, HandState

MAGIC = b"RHH1"
HEAD = struct.Struct("<4sII")
HEADER_SIZE = HEAD.size + 4
MAX_RECORD_BYTES = 1 << 28
LOG_NAME = "hands.bin"


def faces_path(session_dir: Path, is_left: bool) -> Path:
    return Path(session_dir) / f"faces_{'left' if is_left else 'right'}.npy"


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def encode_hands(frame_id: int, t_capture_ns: int, t_done_ns: int, meshes: tuple[HandMesh, ...]) -> bytes:
    """The npz payload of one record (see the module table)."""
    arrays = {"frame_id": np.int64(frame_id), "t_capture_ns": np.int64(t_capture_ns),
              "t_done_ns": np.int64(t_done_ns), "n_hands": np.int64(len(meshes))}
    for i, m in enumerate(meshes):
        arrays |= {f"h{i}_pose": m.state.pose, f"h{i}_shape": m.state.shape, f"h{i}_transl_m": m.state.transl_m,
                   f"h{i}_is_left": np.bool_(m.state.is_left), f"h{i}_verts_m": m.verts_m,
                   f"h{i}_joints_m": m.joints_m, f"h{i}_fit_residual": np.float64(m.fit_residual)}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def pack(payload: bytes) -> bytes:
    head = HEAD.pack(MAGIC, len(payload), zlib.crc32(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


class HandLogWriter:
    """Appends one record per reconstructed frame to ``session_dir/hands.bin`` (called from one thread)."""

    def __init__(self, session_dir: str | Path, fsync_interval_s: float = 1.0):
        self.dir = Path(session_dir)
        self.records = 0
        self._fsync_interval_s, self._last_sync = fsync_interval_s, time.monotonic()
        self._faces_written: set[bool] = set()
        self._file = open(self.dir / LOG_NAME, "ab", buffering=0)

    def append(self, frame_id: int, t_capture_ns: int, meshes: tuple[HandMesh, ...],
               t_done_ns: int | None = None) -> None:
        for m in meshes:
            self._ensure_faces(m)
        done = time.monotonic_ns() if t_done_ns is None else t_done_ns
        view = memoryview(pack(encode_hands(frame_id, t_capture_ns, done, meshes)))
        while view:  # a raw file may take part of a write (nearly full disk)
            view = view[self._file.write(view):]
        self.records += 1
        if time.monotonic() - self._last_sync >= self._fsync_interval_s:
            os.fsync(self._file.fileno())
            self._last_sync = time.monotonic()

    def _ensure_faces(self, mesh: HandMesh) -> None:
        side = bool(mesh.state.is_left)
        if side not in self._faces_written:
            save_npy_atomic(faces_path(self.dir, side), mesh.faces)
            self._faces_written.add(side)

    def close(self) -> None:
        if not self._file.closed:
            os.fsync(self._file.fileno())
            self._file.close()


@dataclass(frozen=True)
class HandRecord:
    """One logged frame: its ids/times and the hands (HandMesh with the faces of their side)."""

    frame_id: int
    t_capture_ns: int
    t_done_ns: int
    hands: tuple[HandMesh, ...]


def _header_problem(raw: bytes, offset: int, size: int) -> str | None:
    if len(raw) < HEADER_SIZE:
        return "truncated record header"
    if raw[:4] != MAGIC or zlib.crc32(raw[:HEAD.size]) != struct.unpack("<I", raw[HEAD.size:])[0]:
        return "corrupt record header"
    length = HEAD.unpack(raw[:HEAD.size])[1]
    if length > MAX_RECORD_BYTES or offset + HEADER_SIZE + length > size:
        return "truncated record (payload cut off)"
    return None


def scan_log(data: bytes) -> tuple[list[bytes], str | None]:
    """Split a hands.bin byte string into payloads; stop at the first bad record and say why."""
    payloads, offset = [], 0
    while offset < len(data):
        raw = data[offset:offset + HEADER_SIZE]
        problem = _header_problem(raw, offset, len(data))
        if problem is None:
            _, length, crc = HEAD.unpack(raw[:HEAD.size])
            payload = data[offset + HEADER_SIZE:offset + HEADER_SIZE + length]
            problem = None if zlib.crc32(payload) == crc else "corrupt record (CRC mismatch)"
        if problem:
            return payloads, f"{problem} at byte {offset} of {len(data)}; {len(payloads)} complete records"
        payloads.append(payload)
        offset += HEADER_SIZE + length
    return payloads, None


def _hand(z, i: int, faces: dict, frame_id: int, t_ns: int) -> HandMesh:
    is_left = bool(z[f"h{i}_is_left"])
    state = HandState(z[f"h{i}_pose"], z[f"h{i}_shape"], z[f"h{i}_transl_m"], is_left)
    return HandMesh(frame_id, t_ns, z[f"h{i}_verts_m"], faces[is_left], z[f"h{i}_joints_m"], state,
                    float(z[f"h{i}_fit_residual"]))


def decode_record(payload: bytes, faces: dict) -> HandRecord:
    z = np.load(io.BytesIO(payload))
    fid, t_ns = int(z["frame_id"]), int(z["t_capture_ns"])
    hands = tuple(_hand(z, i, faces, fid, t_ns) for i in range(int(z["n_hands"])))
    return HandRecord(fid, t_ns, int(z["t_done_ns"]), hands)


class HandLogReader:
    """All complete records of a session's hands.bin. ``tail_problem``: why reading stopped early (None when
    the file ended cleanly)."""

    def __init__(self, session_dir: str | Path):
        self.dir = Path(session_dir)
        path = self.dir / LOG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; this session recorded no hand states")
        self._payloads, problem = scan_log(path.read_bytes())
        self.tail_problem = None if problem is None else f"{path}: {problem}"
        self._faces = {side: np.load(p) for side in (False, True) if (p := faces_path(self.dir, side)).is_file()}

    def __len__(self) -> int:
        return len(self._payloads)

    def __getitem__(self, index: int) -> HandRecord:
        return decode_record(self._payloads[index], self._faces)

    def __iter__(self):
        return (self[i] for i in range(len(self)))
