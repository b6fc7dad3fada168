"""Admission control: how many frames may be inside the stages at once.

Why: with one thread per stage and a bounded box in front of each, a saturated pipeline holds a frame in every
stage and one waiting in every box, so a frame's capture-to-render latency grows to about twice the number of
stages times the slowest stage's period, although each stage works on it only briefly. Letting at most
``limit`` frames in (2 on a 2-core machine: one being detected, one being reconstructed/rendered) keeps the
boxes empty: latency ~ the sum of the stages' own times, throughput ~ ``limit`` / that sum.

The reader takes a ticket before a frame enters the first stage; the ticket comes back when the frame leaves
the last stage or is dropped on the way (a stale item replaced in a latest-wins box, or items discarded at
shutdown). Paced file sources wait for a ticket; live sources skip the frame instead (the camera keeps
running; the skipped frame is still recorded).
"""

from __future__ import annotations

import threading


class Admission:
    """A counting gate of ``limit`` tickets (0 = no limit: every frame enters at once).

    ``enter(block)`` takes a ticket: True when taken; blocking waits until one is free or ``close()`` was
    called (then False). ``leave()`` gives one back. ``in_flight`` counts tickets out; ``skipped`` counts
    refused non-blocking entries."""

    def __init__(self, limit: int):
        if limit < 0:
            raise ValueError(f"admission limit must be >= 0, got {limit}")
        self.limit = limit
        self.in_flight = 0
        self.skipped = 0
        self._closed = False
        self._cond = threading.Condition()

    def _free(self) -> bool:
        return self.limit == 0 or self.in_flight < self.limit

    def enter(self, block: bool) -> bool:
        with self._cond:
            if block:
                self._cond.wait_for(lambda: self._free() or self._closed)
            if self._closed or not self._free():
                self.skipped += 0 if self._closed else 1
                return False
            self.in_flight += 1
            return True

    def leave(self, _item=None) -> None:
        """One frame left the stages (done or dropped); the argument lets it serve as a mailbox drop hook."""
        with self._cond:
            self.in_flight = max(0, self.in_flight - 1)
            self._cond.notify_all()

    def close(self) -> None:
        """Wake and refuse every waiting reader (the pipeline stops)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
