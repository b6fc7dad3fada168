"""The live pipeline: capture -> stages in order, one thread each, joined by bounded mailboxes.

At most ``max_in_flight`` frames are inside the stages at once (app/pipeline/admission.py: this keeps
capture-to-render latency near the sum of the stages' own times). Live sources (and file sources with
``realtime``) use latest-wins mailboxes: a slow stage skips stale frames
(counted per stage) so latency never grows. Other file sources use paced mailboxes: the reader waits for the
slowest stage and every frame goes through. The pipeline ends at the end of a file, after ``max_frames``, on
``stop()`` (Ctrl-C, window closed) or on the first exception in any thread (camera lost included); in every
case each thread drains its input and passes END on, so sinks (recordings, videos) close cleanly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.capture.base import Pacer
from app.config import PipelineConfig
from app.pipeline.admission import Admission
from app.pipeline.mailbox import Mailbox
from app.pipeline.metrics import LatencySummary, RateMeter, StageMetrics
from app.pipeline.packet import Packet
from app.pipeline.threads import CaptureThread, Processor, StageThread


@dataclass(frozen=True)
class StageSpec:
    """One stage: its name, the processor and taps called with each of its results (in its thread)."""

    name: str
    processor: Processor
    taps: tuple[Callable[[Packet], None], ...] = ()


@dataclass(frozen=True)
class StageReport:
    """cpu: the stage thread's own CPU ms per item (MediaPipe's worker threads are not in detection's)."""

    name: str
    latency: LatencySummary
    processed: int
    dropped: int
    cpu: LatencySummary | None = None


@dataclass(frozen=True)
class PipelineReport:
    """frames: packets that went through every stage; fps: completions per second between the first counted and
    the last completion; latency: capture-to-end per frame; the first ``warmup`` frames (and stage samples)
    are left out of fps and the percentiles; end_reason: why it stopped; error: the first failure."""

    frames: int
    frames_read: int
    fps: float
    stages: tuple[StageReport, ...]
    latency: LatencySummary
    end_reason: str
    error: str | None
    warmup: int = 0
    process_cpu_s: float = float("nan")
    wall_s: float = float("nan")


class Pipeline:
    """Threads for ``source`` and ``stages``; ``run()`` blocks until the end and returns the report."""

    def __init__(self, source, stages: list[StageSpec], cfg: PipelineConfig,
                 on_frame: Callable | None = None):
        self.cfg, self.source = cfg, source
        self.paced = not source.is_live and not cfg.realtime
        self.stop_event = threading.Event()
        self.rate = RateMeter()
        self._error: tuple[str, BaseException] | None = None
        self._stop_reason: str | None = None
        self._lock = threading.Lock()
        self.metrics = {"capture": StageMetrics("capture")}
        self.admission = Admission(cfg.max_in_flight)
        self.metrics["capture"].extra_dropped = lambda: source.dropped_frames + self.admission.skipped
        self.boxes = [Mailbox(s.name, cfg.queue_size, drop_stale=not self.paced, on_drop=self.admission.leave)
                      for s in stages]
        pacer = Pacer("recorded", "--realtime") if cfg.realtime and not source.is_live else None
        self._running, self._all_ended = len(stages) + 1, threading.Event()
        self._t_start: tuple[int, int] | None = None
        self._t_end: tuple[int, int] | None = None
        self.capture = CaptureThread(source, self.boxes[0], self.metrics["capture"], self._on_error,
                                     self.stop_event, cfg.max_frames, pacer, on_frame, self._thread_ended,
                                     self.admission)
        self.threads = [self._stage_thread(i, s, stages) for i, s in enumerate(stages)]

    def _stage_thread(self, i: int, spec: StageSpec, stages: list[StageSpec]) -> StageThread:
        metrics = self.metrics[spec.name] = StageMetrics(spec.name)
        metrics.inbox = self.boxes[i]
        last = i == len(stages) - 1
        outbox = None if last else self.boxes[i + 1]
        taps = spec.taps + ((self._done,) if last else ())
        return StageThread(spec.name, spec.processor, self.boxes[i], outbox, metrics, self._on_error, taps,
                           self._thread_ended)

    def _thread_ended(self) -> None:
        """Counts threads out (Thread.is_alive can read False after Ctrl-C interrupted a join, Python < 3.12;
        an Event stays exact)."""
        with self._lock:
            self._running -= 1
            if self._running == 0:
                self._t_end = (time.monotonic_ns(), time.process_time_ns())
                self._all_ended.set()

    def _done(self, packet: Packet) -> None:
        self.rate.record(packet.t_origin_ns)
        self.admission.leave()

    def _on_error(self, stage: str, exc: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = (stage, exc)
        self.stop_event.set()
        self.admission.close()

    @property
    def error(self) -> str | None:
        """The first failure as one line: 'stage: message'."""
        if self._error is None:
            return None
        stage, exc = self._error
        return f"{stage}: {exc}" if str(exc) else f"{stage}: {type(exc).__name__}"

    @property
    def error_exception(self) -> BaseException | None:
        return None if self._error is None else self._error[1]

    def start(self) -> None:
        self._t_start = (time.monotonic_ns(), time.process_time_ns())
        for t in [self.capture, *self.threads]:
            t.start()

    def stop(self, reason: str = "stop requested") -> None:
        """Ask the reader to stop; every stage then drains its input and finishes."""
        with self._lock:
            self._stop_reason = self._stop_reason or reason
        self.stop_event.set()
        self.admission.close()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait until every thread ended (or ``timeout_s``); True when all ended."""
        return self._all_ended.wait(timeout_s)

    def alive(self) -> bool:
        return not self._all_ended.is_set()

    def wait(self, poll_s: float = 0.2) -> None:
        """Block until the pipeline ends; Ctrl-C stops it cleanly (further Ctrl-C are ignored while the
        stages drain, so recordings always close)."""
        while self.alive():
            try:
                self.join(poll_s)
            except KeyboardInterrupt:
                self.stop("interrupted (Ctrl-C)")

    def end_reason(self) -> str:
        if self._error is not None:
            return f"error in {self._error[0]}"
        return self._stop_reason or self.capture.end_reason

    def report(self, warmup: int = 0) -> PipelineReport:
        """The run's figures; ``warmup``: leave the first frames out of fps and percentiles (while any remain)."""
        skip = warmup if self.rate.count > warmup + 1 else 0
        stages = tuple(StageReport(m.name, m.summary(skip), m.processed, m.dropped, m.cpu_summary(skip))
                       for m in self.metrics.values())
        wall_s, cpu_s = self._elapsed_s()
        return PipelineReport(self.rate.count, self.capture.frames_read, self.rate.overall_fps(skip), stages,
                              self.rate.latency(skip), self.end_reason(), self.error, skip, cpu_s, wall_s)

    def _elapsed_s(self) -> tuple[float, float]:
        """(wall, process CPU) seconds since start() until the end (or now)."""
        if self._t_start is None:
            return float("nan"), float("nan")
        end = self._t_end or (time.monotonic_ns(), time.process_time_ns())
        return (end[0] - self._t_start[0]) / 1e9, (end[1] - self._t_start[1]) / 1e9
