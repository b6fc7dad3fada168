"""Recording on and off while the pipeline runs (the R key): at most one active SessionRecorder; the
pipeline's hooks forward to it. A session being switched off closes on a background thread (flushing
thousands of frames can take seconds) that ``close()`` waits for, so nothing is left half-written."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from app.session.recorder import SessionRecorder

DEFAULT_BASE = "recordings"


def next_session_dir(record_dir: str, used: int) -> Path:
    """The directory of the ``used``-th session of this run: record_dir, then record_dir-2, -3, ...; without
    record_dir, recordings/session-YYYYmmdd-HHMMSS."""
    if not record_dir:
        return Path(DEFAULT_BASE) / time.strftime("session-%Y%m%d-%H%M%S")
    return Path(record_dir) if used == 0 else Path(f"{record_dir}-{used + 1}")


class SessionSwitch:
    """make_recorder(dir) opens a SessionRecorder (errors propagate to the caller of start/toggle)."""

    def __init__(self, make_recorder: Callable[[Path], SessionRecorder], record_dir: str = "",
                 report: Callable[[str], None] = print):
        self._make, self._record_dir, self._report = make_recorder, record_dir, report
        self._lock = threading.Lock()
        self._active: SessionRecorder | None = None
        self._closing: list[threading.Thread] = []
        self._lines: list[str] = []
        self.sessions = 0

    @property
    def active(self) -> SessionRecorder | None:
        return self._active

    def start(self) -> SessionRecorder:
        with self._lock:
            if self._active is None:
                self._active = self._make(next_session_dir(self._record_dir, self.sessions))
                self.sessions += 1
            return self._active

    def toggle(self) -> None:
        """Start a new session, or close the active one in the background."""
        with self._lock:
            active, self._active = self._active, None
        if active is None:
            try:
                self._report(f"recording to {self.start().dir}")
            except Exception as exc:  # a key press must not take the app down; say why instead
                self._report(f"cannot start recording: {exc}")
            return
        self._report(f"recording stopped; closing {active.dir}")
        t = threading.Thread(target=lambda: self._lines.extend(active.close()), name="session-close")
        t.start()
        self._closing.append(t)

    def on_frame(self, frame) -> None:
        if (s := self._active) is not None:
            s.on_frame(frame)

    def on_hands(self, packet) -> None:
        if (s := self._active) is not None:
            s.on_hands(packet.frame_id, packet.frame.t_capture_ns, packet.meshes)

    def on_texture(self, packet) -> None:
        if (s := self._active) is not None:
            for mesh, texture in zip(packet.meshes, packet.textures, strict=False):
                s.on_texture(mesh.state.is_left, texture)

    def close(self) -> list[str]:
        """Close the active session and wait for background closes; returns what was written."""
        with self._lock:
            active, self._active = self._active, None
        for t in self._closing:
            t.join()
        if active is not None:
            self._lines.extend(active.close())
        return self._lines
