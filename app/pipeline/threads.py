"""The pipeline's threads: one reading the source, one per stage. Each loops ``inbox -> process -> outbox``
and passes END downstream when its input ends, when the pipeline stops, or when it fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from app.capture.base import Pacer
from app.pipeline.admission import Admission
from app.pipeline.mailbox import END, Mailbox
from app.pipeline.metrics import StageMetrics
from app.pipeline.packet import Packet

ErrorFn = Callable[[str, BaseException], None]
PacketFn = Callable[[Packet], None]


class Processor(Protocol):
    """A stage: ``process(packet) -> packet`` with its result added; called from one thread only."""

    def process(self, packet: Packet) -> Packet: ...


class StageThread(threading.Thread):
    """Runs ``processor`` on every packet of ``inbox``; hands results to ``outbox`` (None for the last stage).

    taps: called with each result in this thread, after the stage's time was taken (hand-state recording,
    the end-to-end meter). On an exception the thread reports it through ``on_error``, aborts its inbox (so
    upstream threads stop feeding it) and closes its outbox (so downstream threads drain and finish).
    """

    def __init__(self, name: str, processor: Processor, inbox: Mailbox, outbox: Mailbox | None,
                 metrics: StageMetrics, on_error: ErrorFn, taps: tuple[PacketFn, ...] = (),
                 on_exit: Callable[[], None] = lambda: None):
        super().__init__(name=f"stage-{name}", daemon=True)
        self.stage, self.processor, self.inbox, self.outbox = name, processor, inbox, outbox
        self.metrics, self.on_error, self.taps, self.on_exit = metrics, on_error, taps, on_exit

    def run(self) -> None:
        try:
            while (packet := self.inbox.get()) is not END:
                if not self._handle(packet):
                    break
        except BaseException as exc:  # any failure must end the pipeline cleanly, not hang it
            self.inbox.abort()
            self.on_error(self.stage, exc)
        finally:
            self._finish()
            if self.outbox is not None:
                self.outbox.close()
            self.on_exit()

    def _finish(self) -> None:
        """The processor's ``finish()`` (if any) in this thread: resources bound to it (a GL context) end here."""
        finish = getattr(self.processor, "finish", None)
        if finish is None:
            return
        try:
            finish()
        except Exception as exc:
            self.on_error(self.stage, exc)

    def _handle(self, packet: Packet) -> bool:
        """Process one packet; False when downstream is gone (this stage stops too)."""
        start, cpu0 = time.monotonic_ns(), time.thread_time_ns()
        out = self.processor.process(packet)
        end = time.monotonic_ns()
        self.metrics.record(start, end, time.thread_time_ns() - cpu0)
        out = out.timed(self.stage, start, end)
        for tap in self.taps:
            tap(out)
        if self.outbox is not None and not self.outbox.put(out):
            self.inbox.abort()
            return False
        return True


class CaptureThread(threading.Thread):
    """Reads ``source`` into ``outbox`` until the source ends, ``max_frames`` frames (0 = no limit), a stop
    request, or a read error (camera lost). ``on_frame(frame)`` sees every frame read, before any stage can
    drop it (the raw-frame recorder). ``pacer`` sleeps a file source to its recorded pace (``--realtime``).
    ``admission`` (app/pipeline/admission.py) bounds the frames inside the stages: a paced reader waits for a
    ticket before reading, a live one skips frames while none is free. ``end_reason`` says why reading
    stopped."""

    def __init__(self, source, outbox: Mailbox, metrics: StageMetrics, on_error: ErrorFn,
                 stop_event: threading.Event, max_frames: int = 0, pacer: Pacer | None = None,
                 on_frame: Callable | None = None, on_exit: Callable[[], None] = lambda: None,
                 admission: Admission | None = None):
        super().__init__(name="stage-capture", daemon=True)
        self.on_exit = on_exit
        self.admission = admission or Admission(0)
        self.wait_for_ticket = not outbox.drop_stale
        self.source, self.outbox, self.metrics, self.on_error = source, outbox, metrics, on_error
        self.stop_event, self.max_frames, self.pacer, self.on_frame = stop_event, max_frames, pacer, on_frame
        self.end_reason = "not started"
        self.frames_read = 0

    def run(self) -> None:
        try:
            self.end_reason = self._loop()
        except BaseException as exc:
            self.end_reason = "capture failed"
            self.on_error("capture", exc)
        finally:
            self.outbox.close()
            self.on_exit()

    def _loop(self) -> str:
        while not self.stop_event.is_set():
            if self.max_frames and self.frames_read >= self.max_frames:
                return f"--max-frames {self.max_frames} reached"
            if self.wait_for_ticket and not self.admission.enter(block=True):
                break
            start, cpu0 = time.monotonic_ns(), time.thread_time_ns()
            frame = self.source.read()
            if frame is None:
                if self.wait_for_ticket:
                    self.admission.leave()
                return "end of the source"
            end = time.monotonic_ns()
            if not self._hand_over(frame, start, end, time.thread_time_ns() - cpu0):
                return "a later stage stopped"
        return "stop requested"

    def _hand_over(self, frame, start: int, end: int, cpu_ns: int) -> bool:
        """Count and record the frame, then pass it on (a live reader without a free ticket skips it);
        False when the next stage is gone."""
        self.frames_read += 1
        self.metrics.record(start, end, cpu_ns)
        if self.pacer is not None:
            self.pacer.wait(frame.t_capture_ns)
        if self.on_frame is not None:
            self.on_frame(frame)
        if not self.wait_for_ticket and not self.admission.enter(block=False):
            return True
        packet = Packet(frame, latency_origin_ns(frame.t_capture_ns, self.source.is_live))
        return self.outbox.put(packet.timed("capture", start, end))


def latency_origin_ns(t_capture_ns: int, is_live: bool) -> int:
    """Where a frame's end-to-end latency starts: a live source's capture time when it is on this process's
    monotonic clock (within a minute of now), otherwise now (file sources carry the file's clock)."""
    now = time.monotonic_ns()
    if is_live and 0 <= now - t_capture_ns < 60_000_000_000:
        return t_capture_ns
    return now
