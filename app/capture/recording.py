"""Session recording and playback (``recording:DIR``): append-only, crash-safe.

Layout of DIR (docs/CAPTURE.md):
- ``meta.json``: format/version, codec, the calibration (calibration file format), nominal fps, source URI;
  written atomically before the first frame.
- ``frames.bin``: records appended one ``write()`` each: a 36-byte little-endian header
  (magic ``RHF1``, frame_id u64, t_ns i64, left_len u32, right_len u32, payload CRC32, header CRC32 of the
  preceding 32 bytes) followed by the encoded left then right image (PNG, JPEG or raw RGB).
- ``summary.json``: written by ``close()`` (frames written and dropped); its absence means the writer died.

Crash safety: a record is one unbuffered ``write`` to the OS, so after ``kill -9`` every record whose write
returned is in the file; ``fsync`` runs every ``fsync_interval_s`` (default 1 s) and at close, bounding what a
power loss can take. Readers stop at the first truncated or corrupt record and report it (``tail_problem``).
Recording never blocks capture: frames go through a bounded queue to a writer thread; when it is full the
frame is dropped and counted.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from app.atomic_io import write_json_atomic
from app.capture.base import ClosingMixin, pacer_for
from app.capture.errors import CaptureError
from app.capture.png_fast import encode_png_rgb
from app.capture.uri import SourceURI
from app.types import StereoCalibration, StereoFrame
from calibration.errors import CalibrationError
from calibration.fileio import calibration_from_dict, calibration_to_dict

FORMAT_NAME = "realhands-recording"
FORMAT_VERSION = 1
MAGIC = b"RHF1"
HEAD = struct.Struct("<4sQqIII")  # magic, frame_id, t_ns, left_len, right_len, payload_crc
HEADER_SIZE = HEAD.size + 4  # + CRC32 of the packed HEAD
CODECS = ("png", "raw", "jpeg")
MAX_IMAGE_BYTES = 1 << 30


@dataclass(frozen=True)
class Codec:
    """How images are stored: ``png`` / ``raw`` (lossless) or ``jpeg`` with ``quality`` 1-100."""

    name: str
    quality: int = 95

    @staticmethod
    def parse(text: str, origin: str = "--codec") -> Codec:
        name, _, q = (text or "png").lower().partition(":")
        if name not in CODECS:
            raise CaptureError(
                f"{origin} {text!r}: unknown codec; use png (lossless, default), raw (lossless, "
                "large) or jpeg[:QUALITY]"
            )
        if q and (name != "jpeg" or not q.isdigit() or not 1 <= int(q) <= 100):
            raise CaptureError(f"{origin} {text!r}: only jpeg takes a quality, 1-100 (e.g. jpeg:95)")
        return Codec(name, int(q) if q else 95)

    def encode(self, rgb: np.ndarray) -> bytes:
        """(H, W, 3) uint8 RGB -> bytes."""
        if self.name == "raw":
            return np.ascontiguousarray(rgb).tobytes()
        if self.name == "png":
            return encode_png_rgb(rgb)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise CaptureError(f"encoding a frame as {self.name} failed")
        return buf.tobytes()

    def decode(self, data: bytes, size_wh: tuple[int, int]) -> np.ndarray | None:
        """bytes -> (H, W, 3) uint8 RGB of ``size_wh``, or None when the bytes do not decode to that."""
        w, h = size_wh
        if self.name == "raw":
            if len(data) != w * h * 3:
                return None
            return np.frombuffer(data, np.uint8).reshape(h, w, 3).copy()
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None or img.shape != (h, w, 3):
            return None
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def pack_record(frame_id: int, t_ns: int, left: bytes, right: bytes) -> bytes:
    """One frames.bin record: header (with both CRCs) + left + right."""
    crc = zlib.crc32(right, zlib.crc32(left))
    head = HEAD.pack(MAGIC, frame_id, t_ns, len(left), len(right), crc)
    return head + struct.pack("<I", zlib.crc32(head)) + left + right





def _os_error_message(exc: OSError, out_dir: Path, frames: int) -> str:
    if exc.errno == errno.ENOSPC:
        return (
            f"recording {out_dir}: disk full after {frames} frames; free space or record to another disk "
            "(the frames written so far stay readable)"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"recording {out_dir}: not writable ({exc.strerror}); choose a directory you can write to"
    return f"recording {out_dir}: write failed after {frames} frames ({exc.strerror or exc}); check the disk"


class RecordingWriter(ClosingMixin):
    """Appends StereoFrames to ``out_dir`` from a writer thread.

    ``write()`` never blocks: it returns False and counts the frame in ``frames_dropped`` when the queue
    (``queue_size`` frames) is full. Frames must not be mutated after ``write``. ``on_written(frame_id)`` runs
    in the writer thread after each record is written.
    """

    def __init__(
        self,
        out_dir: str | Path,
        calibration: StereoCalibration,
        codec: str = "png",
        nominal_fps: float = 30.0,
        source: str = "",
        queue_size: int = 64,
        fsync_interval_s: float = 1.0,
        on_written: Callable[[int], None] | None = None,
    ):
        self.out_dir, self.codec, self.calibration = Path(out_dir), Codec.parse(codec), calibration
        self._fsync_interval_s, self._on_written = fsync_interval_s, on_written
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self.frames_written = self.frames_dropped = 0
        self._error: str | None = None
        self._file = self._create(nominal_fps, source)
        self._last_sync = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="recording-writer", daemon=True)
        self._thread.start()

    def _create(self, nominal_fps: float, source: str):
        """Make DIR, write meta.json, open frames.bin for appending; CaptureError with the fix on failure."""
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if (self.out_dir / "frames.bin").exists():
                raise CaptureError(
                    f"recording {self.out_dir}: already holds a recording (frames.bin); "
                    "choose a new directory"
                )
            meta = {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "codec": self.codec.name,
                "jpeg_quality": self.codec.quality if self.codec.name == "jpeg" else None,
                "nominal_fps": float(nominal_fps),
                "source": source,
                "created_unix_s": time.time(),
                "calibration": calibration_to_dict(self.calibration),
            }
            write_json_atomic(self.out_dir / "meta.json", meta)
            return open(self.out_dir / "frames.bin", "ab", buffering=0)
        except OSError as exc:
            raise CaptureError(_os_error_message(exc, self.out_dir, 0)) from exc

    def write(self, frame: StereoFrame, block: bool = False) -> bool:
        """Queue ``frame``; False (and counted as dropped) when the writer is behind, unless ``block`` (for
        file sources, which can wait). CaptureError once the writer has failed (disk full, I/O error)."""
        if self._error:
            raise CaptureError(self._error)
        try:
            self._queue.put(frame, block=block)
            return True
        except queue.Full:
            self.frames_dropped += 1
            return False

    def _run(self) -> None:
        while (frame := self._queue.get()) is not None:
            if self._error:
                self.frames_dropped += 1
                continue
            try:
                self._append(frame)
            except OSError as exc:
                self._error = _os_error_message(exc, self.out_dir, self.frames_written)
            except Exception as exc:  # keep draining so close() never hangs; the error surfaces there
                self._error = f"recording {self.out_dir}: writing frame {frame.frame_id} failed ({exc})"

    def _append(self, frame: StereoFrame) -> None:
        record = pack_record(
            frame.frame_id, frame.t_capture_ns, self._encode(frame.left), self._encode(frame.right)
        )
        view = memoryview(record)
        while view:  # a raw file may accept part of a write (e.g. a nearly full disk)
            view = view[self._file.write(view) :]
        self.frames_written += 1
        if time.monotonic() - self._last_sync >= self._fsync_interval_s:
            os.fsync(self._file.fileno())
            self._last_sync = time.monotonic()
        if self._on_written is not None:
            self._on_written(frame.frame_id)

    def _encode(self, rgb: np.ndarray) -> bytes:
        return self.codec.encode(rgb)

    def close(self) -> dict:
        """Drain the queue, fsync, write summary.json. Returns the summary; CaptureError if writing failed."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        summary = {
            "frames_written": self.frames_written,
            "frames_dropped": self.frames_dropped,
            "error": self._error,
        }
        if not self._file.closed:
            try:
                os.fsync(self._file.fileno())
                self._file.close()
                write_json_atomic(self.out_dir / "summary.json", summary)
            except OSError as exc:
                self._error = self._error or _os_error_message(exc, self.out_dir, self.frames_written)
        if self._error:
            raise CaptureError(self._error)
        return summary


@dataclass(frozen=True)
class RecordEntry:
    """Where one record lies in frames.bin (byte offset of its payload) and its header fields."""

    payload_offset: int
    frame_id: int
    t_ns: int
    left_len: int
    right_len: int
    crc: int


class RecordingReader:
    """Random access to a recording. ``entries``: the complete records; ``tail_problem``: why reading stopped
    before the end of frames.bin (truncated or corrupt tail), None if the file ended cleanly."""

    def __init__(self, rec_dir: str | Path):
        self.dir = Path(rec_dir)
        meta = _read_meta(self.dir)
        self.codec = Codec.parse(f"{meta['codec']}", f"{self.dir / 'meta.json'}: field 'codec'")
        self.nominal_fps = _meta_fps(meta, self.dir)
        self.summary = _read_summary(self.dir)
        try:
            self.calibration = calibration_from_dict(
                meta.get("calibration"), f"{self.dir / 'meta.json'}" ": field 'calibration'"
            ).calibration
        except CalibrationError as exc:
            raise CaptureError(
                f"{exc} (the recording's meta.json is damaged; restore it or re-record)"
            ) from exc
        path = self.dir / "frames.bin"
        if not path.is_file():
            raise CaptureError(f"recording {self.dir}: frames.bin is missing; the recording holds no frames")
        self._file = open(path, "rb")
        self.entries, self.tail_problem = scan_records(self._file, path)

    def __len__(self) -> int:
        return len(self.entries)

    def frame(self, index: int, frame_id: int | None = None) -> StereoFrame:
        """Record ``index`` as a StereoFrame (frame_id = ``frame_id`` or the recorded id)."""
        e = self.entries[index]
        self._file.seek(e.payload_offset)
        data = self._file.read(e.left_len + e.right_len)
        where = f"recording {self.dir}: frame {index} (byte {e.payload_offset - HEADER_SIZE} of frames.bin)"
        if zlib.crc32(data) != e.crc:
            raise CaptureError(f"{where} is corrupt (CRC mismatch); the file was damaged after recording")
        left = self.codec.decode(data[: e.left_len], self.calibration.left.size_wh)
        right = self.codec.decode(data[e.left_len :], self.calibration.right.size_wh)
        if left is None or right is None:
            raise CaptureError(
                f"{where} does not decode as {self.codec.name} images of the calibration's size; "
                "meta.json does not match frames.bin"
            )
        fid = e.frame_id if frame_id is None else frame_id
        return StereoFrame(fid, e.t_ns, left, right, self.calibration)

    def close(self) -> None:
        self._file.close()


def _read_meta(rec_dir: Path) -> dict:
    path = rec_dir / "meta.json"
    if not path.is_file():
        raise CaptureError(
            f"recording {rec_dir}: meta.json not found; this is not a recording directory "
            "(make one with `python -m app.capture record SOURCE DIR`)"
        )
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CaptureError(f"{path}: not valid JSON ({exc}); restore the file or re-record") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise CaptureError(
            f"{path}: field 'format' must be {FORMAT_NAME!r}; this is not a recording's meta.json"
        )
    if meta.get("version") != FORMAT_VERSION:
        raise CaptureError(
            f"{path}: field 'version' is {meta.get('version')!r}; this program reads version "
            f"{FORMAT_VERSION}; use a matching program version"
        )
    return meta


def _meta_fps(meta: dict, rec_dir: Path) -> float:
    fps = meta.get("nominal_fps", 30.0)
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not 0 < fps < 10000:
        raise CaptureError(
            f"{rec_dir / 'meta.json'}: field 'nominal_fps' must be a number > 0, got {fps!r}; fix it"
        )
    return float(fps)


def _read_summary(rec_dir: Path) -> dict | None:
    try:
        data = json.loads((rec_dir / "summary.json").read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def scan_records(f, path: Path) -> tuple[list[RecordEntry], str | None]:
    """Walk the record headers of frames.bin; stop at the first incomplete or corrupt record and say why.
    The last complete record's payload CRC is checked too (a crash can leave a zero-filled tail)."""
    size = os.fstat(f.fileno()).st_size
    entries: list[RecordEntry] = []
    offset, problem = 0, None
    while offset < size:
        f.seek(offset)
        raw = f.read(HEADER_SIZE)
        problem = _header_problem(raw, offset, size)
        if problem:
            break
        _, fid, t_ns, nl, nr, crc = HEAD.unpack(raw[: HEAD.size])
        entries.append(RecordEntry(offset + HEADER_SIZE, fid, t_ns, nl, nr, crc))
        offset += HEADER_SIZE + nl + nr
    if entries and problem is None and not _payload_ok(f, entries[-1]):
        entries.pop()
        problem = "the last record is corrupt (CRC mismatch)"
    if problem:
        problem = (
            f"{path}: {problem} at byte {offset} of {size}; {len(entries)} complete frames are readable "
            "(the recording was probably interrupted)"
        )
    return entries, problem


def _header_problem(raw: bytes, offset: int, size: int) -> str | None:
    if len(raw) < HEADER_SIZE:
        return "truncated record header"
    if raw[:4] != MAGIC or zlib.crc32(raw[: HEAD.size]) != struct.unpack("<I", raw[HEAD.size :])[0]:
        return "corrupt record header"
    _, _, _, nl, nr, _ = HEAD.unpack(raw[: HEAD.size])
    if nl > MAX_IMAGE_BYTES or nr > MAX_IMAGE_BYTES:
        return "corrupt record header (image size)"
    if offset + HEADER_SIZE + nl + nr > size:
        return "truncated record (images cut off)"
    return None


def _payload_ok(f, e: RecordEntry) -> bool:
    f.seek(e.payload_offset)
    return zlib.crc32(f.read(e.left_len + e.right_len)) == e.crc


class RecordingSource(ClosingMixin):
    """``recording:DIR[?pace=fast|recorded]``: replays a recording. frame_id counts from 0 over the stored
    frames; t_capture_ns is the recorded capture time. ``warnings``: bad tail, missing summary, drops."""

    is_live = False
    dropped_frames = 0

    def __init__(self, uri: SourceURI):
        uri.check_params(("pace",))
        if not uri.target:
            raise CaptureError(f"source {uri.text!r}: give the recording directory, e.g. recording:session1")
        self._pacer = pacer_for(uri)
        self.reader = RecordingReader(uri.target)
        self.calibration = self.reader.calibration
        self.frames_total = len(self.reader)
        self.nominal_fps = self.reader.nominal_fps
        self.warnings = [w for w in (self.reader.tail_problem, self._summary_warning()) if w]
        self._index = 0

    def _summary_warning(self) -> str | None:
        if self.reader.summary is None:
            return f"recording {self.reader.dir}: no summary.json, the writer did not close cleanly"
        dropped = self.reader.summary.get("frames_dropped", 0)
        return (
            f"recording {self.reader.dir}: {dropped} frames were dropped while recording" if dropped else None
        )

    def read(self) -> StereoFrame | None:
        if self._index >= self.frames_total:
            return None
        frame = self.reader.frame(self._index, frame_id=self._index)
        self._index += 1
        self._pacer.wait(frame.t_capture_ns)
        return frame

    def close(self) -> None:
        self.reader.close()


def open_recording(uri: SourceURI) -> RecordingSource:
    return RecordingSource(uri)


def record_source(uri: str, out_dir: str | Path, codec: str = "png", max_frames: int | None = None) -> dict:
    """Record ``uri`` into ``out_dir`` until the source ends, ``max_frames`` or Ctrl-C."""
    from app.capture import open_source

    with open_source(uri) as src:
        writer = RecordingWriter(out_dir, src.calibration, codec, src.nominal_fps, uri)
        try:
            while max_frames is None or writer.frames_written + writer.frames_dropped < max_frames:
                frame = src.read()
                if frame is None:
                    break
                writer.write(frame, block=not src.is_live)
        except KeyboardInterrupt:
            pass
        finally:
            summary = writer.close()
        return {**summary, "source_dropped_frames": src.dropped_frames}
