"""A bounded hand-over between two pipeline threads, latest-wins or paced.

Latest-wins (live sources, ``--realtime``): ``put`` never blocks; when the box is full the oldest waiting item
is discarded and counted in ``dropped``, so a slow stage always works on the newest frame and latency cannot
grow. Paced (file sources): ``put`` waits for room, so the reader runs at the pace of the slowest stage and
every frame is processed.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any


class _End:
    """End-of-stream marker: the producer finished (end of file, stop request, error upstream)."""

    def __repr__(self) -> str:
        return "END"


END: Any = _End()


class Mailbox:
    """Bounded FIFO of at most ``capacity`` items between one producer and one consumer thread.

    drop_stale: True = latest-wins (see module doc), False = back-pressure. ``close()`` ends the stream after
    the waiting items; ``abort()`` ends it at once (the consumer died): waiting items are discarded, puts are
    refused and blocked producers wake up. Counters: ``dropped`` (stale items replaced), ``discarded`` (items
    refused or thrown away by ``abort``), ``high_water`` (largest number of waiting items seen). ``on_drop(item)``
    is called (outside the lock) for every item that will never reach the consumer: dropped or discarded.
    """

    def __init__(self, name: str, capacity: int = 1, drop_stale: bool = True,
                 on_drop: Callable[[Any], None] | None = None):
        if capacity < 1:
            raise ValueError(f"mailbox {name}: capacity must be >= 1, got {capacity}")
        self.name, self.capacity, self.drop_stale = name, capacity, drop_stale
        self._items: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._closed = self._aborted = False
        self.dropped = self.discarded = self.high_water = 0
        self.on_drop = on_drop

    def put(self, item) -> bool:
        """Hand ``item`` over; False when the box was aborted or closed (the item is discarded)."""
        lost: list = []
        with self._cond:
            if not self.drop_stale:
                self._cond.wait_for(lambda: len(self._items) < self.capacity or self._closed)
            accepted = not self._closed
            if not accepted:
                self.discarded += 1
                lost.append(item)
            else:
                if len(self._items) >= self.capacity:
                    lost.append(self._items.popleft())
                    self.dropped += 1
                self._items.append(item)
                self.high_water = max(self.high_water, len(self._items))
                self._cond.notify_all()
        self._report(lost)
        return accepted

    def _report(self, lost: list) -> None:
        if self.on_drop is not None:
            for item in lost:
                self.on_drop(item)

    def get(self, timeout_s: float | None = None):
        """The oldest waiting item; END once closed and drained (or aborted); None after ``timeout_s``."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout_s):
                return None
            if self._items and not self._aborted:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            return END

    def close(self) -> None:
        """No more items will come; the consumer drains the waiting ones, then gets END."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> None:
        """The consumer is gone: discard what waits, refuse new items, wake blocked producers."""
        with self._cond:
            self._closed = self._aborted = True
            self.discarded += len(self._items)
            lost = list(self._items)
            self._items.clear()
            self._cond.notify_all()
        self._report(lost)

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
