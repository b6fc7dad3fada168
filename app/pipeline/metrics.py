"""Per-stage counters and latencies, written by one stage thread and read by others (the HUD, the report)."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencySummary:
    """p50_ms / p95_ms over ``n`` samples (NaN when there are none)."""

    p50_ms: float
    p95_ms: float
    n: int


def summarise_ms(samples_ms: list[float]) -> LatencySummary:
    if not samples_ms:
        return LatencySummary(float("nan"), float("nan"), 0)
    arr = np.asarray(samples_ms, np.float64)
    return LatencySummary(float(np.percentile(arr, 50)), float(np.percentile(arr, 95)), len(arr))


class StageMetrics:
    """Latencies (ms) of one stage and how many items it processed. ``dropped`` is read from the stage's
    input mailbox (stale items it never saw) plus ``extra_dropped`` (e.g. frames a camera skipped)."""

    def __init__(self, name: str):
        self.name = name
        self._lock = threading.Lock()
        self._samples_ms: list[float] = []
        self._cpu_ms: list[float] = []
        self.last_ms = float("nan")
        self.processed = 0
        self.inbox = None
        self.extra_dropped = lambda: 0

    def record(self, start_ns: int, end_ns: int, cpu_ns: int | None = None) -> None:
        """One item: wall time from ``start_ns`` to ``end_ns`` (monotonic) and, when given, the CPU time the
        stage's own thread spent on it (helper threads it waits on, e.g. MediaPipe's, are not included)."""
        ms = (end_ns - start_ns) / 1e6
        with self._lock:
            if cpu_ns is not None:
                self._cpu_ms.append(cpu_ns / 1e6)
            self._samples_ms.append(ms)
            self.last_ms = ms
            self.processed += 1

    @property
    def dropped(self) -> int:
        return (self.inbox.dropped if self.inbox is not None else 0) + int(self.extra_dropped())

    def summary(self, skip: int = 0) -> LatencySummary:
        """p50/p95 over the samples after the first ``skip`` (warm-up: first calls compile and allocate)."""
        with self._lock:
            return summarise_ms(self._samples_ms[skip:])

    def cpu_summary(self, skip: int = 0) -> LatencySummary:
        """p50/p95 of the stage thread's CPU ms per item (n = 0 when not measured)."""
        with self._lock:
            return summarise_ms(self._cpu_ms[skip:])


class RateMeter:
    """Frames per second over the last ``window`` completions, and all end-to-end latencies (ms)."""

    def __init__(self, window: int = 30):
        self._lock = threading.Lock()
        self._done_ns: collections.deque = collections.deque(maxlen=window)
        self._all_done_ns: list[int] = []
        self._latency_ms: list[float] = []
        self.count = 0

    def record(self, t_origin_ns: int, t_done_ns: int | None = None) -> None:
        t_done_ns = time.monotonic_ns() if t_done_ns is None else t_done_ns
        with self._lock:
            self._done_ns.append(t_done_ns)
            self._all_done_ns.append(t_done_ns)
            self._latency_ms.append((t_done_ns - t_origin_ns) / 1e6)
            self.count += 1

    def fps(self) -> float:
        """Recent rate: completions per second over the window (0 before two completions)."""
        with self._lock:
            if len(self._done_ns) < 2 or self._done_ns[-1] == self._done_ns[0]:
                return 0.0
            return (len(self._done_ns) - 1) * 1e9 / (self._done_ns[-1] - self._done_ns[0])

    def latency(self, skip: int = 0) -> LatencySummary:
        with self._lock:
            return summarise_ms(self._latency_ms[skip:])

    def overall_fps(self, skip: int = 0) -> float:
        """Completions per second from completion ``skip`` to the last (0 with fewer than two)."""
        with self._lock:
            done = self._all_done_ns[skip:]
        if len(done) < 2 or done[-1] == done[0]:
            return 0.0
        return (len(done) - 1) * 1e9 / (done[-1] - done[0])
