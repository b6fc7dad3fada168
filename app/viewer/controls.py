"""User controls shared between the window's event thread and the render stage (thread-safe).

Keys: R record toggle, T texture reset, V view switch (split -> camera -> 3d), S screenshot. Mouse: drag to
orbit the 3D view, scroll to zoom.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable

from app.viewer.compose import ViewSettings
from app.viewer.layout import Orbit
from app.viewer.view import VIEW_MODES

KEY_HELP = "keys: R record, T texture reset, V view, S screenshot; drag to orbit, scroll to zoom"
DEG_PER_PX = 0.4
ZOOM_PER_CLICK = 0.9


class ViewControls:
    """View mode, orbit and one-shot requests (screenshot). ``on_record`` / ``on_texture_reset`` run in the
    thread that pressed the key and must be thread-safe themselves. ``swing_deg``: headless runs swing the
    orbit +-swing_deg about the camera axis (period 8 s of stream time) so the MP4 shows the mesh's depth."""

    def __init__(self, orbit: Orbit | None = None, on_record: Callable[[], None] | None = None,
                 on_texture_reset: Callable[[], None] | None = None, swing_deg: float = 0.0):
        self._lock = threading.Lock()
        self._settings = ViewSettings("split", orbit or Orbit())
        self._screenshot = False
        self.on_record, self.on_texture_reset, self.swing_deg = on_record, on_texture_reset, swing_deg

    def settings(self, t_s: float = 0.0) -> ViewSettings:
        """The current settings; with a swing, the yaw at stream time ``t_s``."""
        with self._lock:
            s = self._settings
        if not self.swing_deg:
            return s
        yaw = s.orbit.yaw_deg + self.swing_deg * math.sin(2 * math.pi * t_s / 8.0)
        return dataclasses.replace(s, orbit=dataclasses.replace(s.orbit, yaw_deg=yaw))

    def next_mode(self) -> str:
        with self._lock:
            mode = VIEW_MODES[(VIEW_MODES.index(self._settings.mode) + 1) % len(VIEW_MODES)]
            self._settings = dataclasses.replace(self._settings, mode=mode)
            return mode

    def drag(self, dx_px: float, dy_px: float) -> None:
        with self._lock:
            o = self._settings.orbit
            pitch = max(-89.0, min(89.0, o.pitch_deg - dy_px * DEG_PER_PX))
            orbit = dataclasses.replace(o, yaw_deg=o.yaw_deg + dx_px * DEG_PER_PX, pitch_deg=pitch)
            self._settings = dataclasses.replace(self._settings, orbit=orbit)

    def zoom(self, clicks: float) -> None:
        with self._lock:
            o = self._settings.orbit
            dist = max(0.05, min(5.0, o.distance_m * ZOOM_PER_CLICK**clicks))
            self._settings = dataclasses.replace(self._settings, orbit=dataclasses.replace(o, distance_m=dist))

    def request_screenshot(self) -> None:
        with self._lock:
            self._screenshot = True

    def take_screenshot_request(self) -> bool:
        """True once per request (the render stage saves the next composed frame)."""
        with self._lock:
            wanted, self._screenshot = self._screenshot, False
            return wanted

    def press(self, key: str) -> str | None:
        """Handle a key by name ('R', 'T', 'V', 'S', any case); returns what it did, None for other keys."""
        key = key.upper()
        if key == "R" and self.on_record is not None:
            self.on_record()
            return "record toggle"
        if key == "T" and self.on_texture_reset is not None:
            self.on_texture_reset()
            return "texture reset"
        if key == "V":
            return f"view {self.next_mode()}"
        if key == "S":
            self.request_screenshot()
            return "screenshot"
        return None
