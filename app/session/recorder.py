"""Recording of a textured-hand session into one directory, playable as ``recording:DIR``:

| file | what | written |
|---|---|---|
| meta.json, frames.bin, summary.json | every captured raw stereo frame (app/capture/recording.py) | per frame |
| hands.bin, faces_{right,left}.npy | per-frame hand states and meshes (app/session/hand_log.py) | per frame |
| uv_layout.npz | the hand models' UV layouts (vt_right, ft_right, vt_left, ft_left; absent keys = none) | at start |
| texture_{right,left}.png, ..._weight.npy | each side's texture (app/session/texture_file.py) | every few s, close |
| session.json | source, times, counts, export paths; ``"closed": false`` until close() | start and close |
| hand.glb, sequence.glb | exports (app/session/export.py) | at close, or ``python -m app.session export DIR`` |

Everything per frame is appended crash-safely; files written whole go through a temp file and a rename.
The callbacks are called from the pipeline's threads (capture, reconstruction, texture) and the key handler;
a lock keeps them off a session that is closing.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

from app.atomic_io import write_json_atomic
from app.capture.errors import CaptureError
from app.capture.recording import RecordingWriter
from app.config import SessionConfig
from app.session.hand_log import HandLogWriter
from app.session.texture_file import save_texture
from app.types import StereoCalibration, StereoFrame, TextureMap


class SessionError(RuntimeError):
    """A session cannot be recorded or exported; the message names the directory and the fix."""





def save_uv_layouts(session_dir: Path, uv_layouts: dict) -> None:
    """uv_layouts: is_left -> (vt (T, 2), ft (F, 3)) or None."""
    arrays = {}
    for is_left, layout in uv_layouts.items():
        if layout is not None:
            side = "left" if is_left else "right"
            arrays[f"vt_{side}"], arrays[f"ft_{side}"] = np.asarray(layout[0]), np.asarray(layout[1])
    tmp = session_dir / "uv_layout.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, session_dir / "uv_layout.npz")


def load_uv_layouts(session_dir: str | Path) -> dict:
    path = Path(session_dir) / "uv_layout.npz"
    if not path.is_file():
        return {}
    z = np.load(path)
    return {is_left: (z[f"vt_{s}"], z[f"ft_{s}"]) for is_left, s in ((False, "right"), (True, "left"))
            if f"vt_{s}" in z}


def prepare_dir(out_dir: Path) -> None:
    """Create the session directory; SessionError naming it and the fix when that fails or it holds a
    recording already (recordings are never overwritten)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SessionError(f"--record {out_dir}: cannot create the directory ({exc.strerror or exc}); "
                           "choose a directory you can write to") from exc
    if not os.access(out_dir, os.W_OK):
        raise SessionError(f"--record {out_dir}: the directory is not writable; choose a directory you can "
                           "write to")
    if (out_dir / "frames.bin").exists() or (out_dir / "hands.bin").exists():
        raise SessionError(f"--record {out_dir}: already holds a recording; choose a new directory")


class SessionRecorder:
    """Records one session into ``out_dir`` (see module doc). Every frame the pipeline reads is recorded: when
    the writer falls behind (a slow disk, or PNG encoding on a saturated CPU), reading waits for it, so a live
    camera skips frames instead (counted as the capture stage's drops, never taken from a recording).
    ``is_live`` is kept for the session's metadata."""

    def __init__(self, out_dir: str | Path, calibration: StereoCalibration, cfg: SessionConfig, *,
                 nominal_fps: float, source: str, uv_layouts: dict, is_live: bool):
        self.dir, self.cfg, self.is_live = Path(out_dir), cfg, is_live
        self._lock = threading.Lock()
        self._closed = False
        self._textures: dict[bool, TextureMap] = {}
        self._texture_saved_s = time.monotonic()
        self.started_unix_s = time.time()
        prepare_dir(self.dir)
        self.raw = RecordingWriter(self.dir, calibration, cfg.codec, nominal_fps, source)
        try:
            save_uv_layouts(self.dir, uv_layouts)
            self.hands = HandLogWriter(self.dir)
            self._meta = {"source": source, "started_unix_s": self.started_unix_s, "closed": False}
            write_json_atomic(self.dir / "session.json", self._meta)
        except OSError as exc:
            self.raw.close()
            raise SessionError(f"recording {self.dir}: cannot write ({exc.strerror or exc}); "
                               "choose a writable directory") from exc

    @property
    def frames_written(self) -> int:
        return self.raw.frames_written

    def on_frame(self, frame: StereoFrame) -> None:
        with self._lock:
            if not self._closed:
                self.raw.write(frame, block=True)

    def on_hands(self, frame_id: int, t_capture_ns: int, meshes: tuple) -> None:
        with self._lock:
            if not self._closed:
                self.hands.append(frame_id, t_capture_ns, meshes)

    def on_texture(self, is_left: bool, texture: TextureMap | None) -> None:
        """The latest texture of one side; saved every texture_save_interval_s (and at close)."""
        if texture is None:
            return
        with self._lock:
            self._textures[is_left] = texture
            if not self._closed and time.monotonic() - self._texture_saved_s >= self.cfg.texture_save_interval_s:
                for side, tex in self._textures.items():
                    save_texture(self.dir, tex, side)
                self._texture_saved_s = time.monotonic()

    def close(self) -> list[str]:
        """Flush and close everything, save the texture, export; returns lines saying what was written."""
        with self._lock:
            if self._closed:
                return []
            self._closed = True
        lines, error = [], None
        try:
            raw = self.raw.close()
            lines.append(f"recording {self.dir}: {raw['frames_written']} raw frames "
                         f"({raw['frames_dropped']} dropped), playable as recording:{self.dir}")
        except CaptureError as exc:
            error = str(exc)
            lines.append(f"recording {self.dir}: {exc}")
        self.hands.close()
        lines.append(f"hand states: {self.hands.records} frames in {self.dir / 'hands.bin'}")
        for side, tex in self._textures.items():
            lines.append(f"texture: {save_texture(self.dir, tex, side)}")
        lines += self._export()
        self._meta |= {"closed": True, "closed_unix_s": time.time(), "raw_frames": self.raw.frames_written,
                       "hand_records": self.hands.records, "error": error}
        write_json_atomic(self.dir / "session.json", self._meta)
        return lines

    def _export(self) -> list[str]:
        if not self.cfg.export or self.hands.records == 0:
            return []
        from app.session.export import export_session

        try:
            return [f"export: {p}" for p in export_session(self.dir)]
        except Exception as exc:  # an export problem must not lose the recording: it can be redone later
            return [f"export of {self.dir} failed ({exc}); retry with `python -m app.session export {self.dir}`"]
