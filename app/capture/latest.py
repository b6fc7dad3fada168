"""A reader thread that keeps only the newest frame of a live device (latest-wins, never queues)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from app.capture.errors import CaptureError

GrabFn = Callable[[], "np.ndarray | None"]


class LatestFrameThread:
    """Calls ``grab()`` in a daemon thread; ``get()`` returns the newest (image, t_ns) not returned before.

    grab: returns an image, or None on a failed read (``max_failures`` in a row end the stream with an error).
    t_ns: ``time.monotonic_ns()`` right after grab returned. ``dropped`` counts images replaced before anyone
    read them (the consumer was slower than the device).
    """

    def __init__(self, grab: GrabFn, name: str, max_failures: int = 50):
        self._grab, self.name, self._max_failures = grab, name, max_failures
        self._cond = threading.Condition()
        self._latest: tuple[np.ndarray, int] | None = None
        self._error: str | None = None
        self._stop = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"capture-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        failures = 0
        while not self._stop:
            try:
                img = self._grab()
            except Exception as exc:  # a device error must reach the consumer, not die in the thread
                self._finish(f"{self.name}: reading failed ({exc})")
                return
            if img is None:
                failures += 1
                if failures >= self._max_failures:
                    self._finish(
                        f"{self.name}: {failures} reads in a row failed; check the cable and that "
                        "no other program uses the camera"
                    )
                    return
                time.sleep(0.005)
                continue
            failures = 0
            self._put(img, time.monotonic_ns())

    def _put(self, img: np.ndarray, t_ns: int) -> None:
        with self._cond:
            if self._latest is not None:
                self.dropped += 1
            self._latest = (img, t_ns)
            self._cond.notify_all()

    def _finish(self, error: str) -> None:
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def get(self, timeout_s: float = 5.0) -> tuple[np.ndarray, int]:
        """Wait for the next image; CaptureError on a device error or when none arrives in ``timeout_s``."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._latest is not None or self._error or self._stop, timeout_s)
            if self._latest is not None:
                item, self._latest = self._latest, None
                return item
            if self._error:
                raise CaptureError(self._error)
            if not ok:
                raise CaptureError(
                    f"{self.name}: no frame for {timeout_s:.1f} s; check the camera is connected "
                    "and not used by another program"
                )
            raise CaptureError(f"{self.name}: reader stopped")

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=2.0)
