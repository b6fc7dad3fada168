"""Pipeline test helpers: small recordings written with app/capture/recording.py and a camera-like live feed."""

from __future__ import annotations

import time
import types

import numpy as np
import pytest

from app.capture.recording import RecordingWriter
from app.types import StereoFrame
from calibration.presets import preset_rig

CALIB = preset_rig("zed-mini", "64x48")


def make_frame(i: int, t_ns: int | None = None) -> StereoFrame:
    """A 64x48 stereo frame whose pixels encode its index (left = i % 256, right = 255 - i % 256)."""
    left = np.full((48, 64, 3), i % 256, np.uint8)
    right = np.full((48, 64, 3), 255 - i % 256, np.uint8)
    return StereoFrame(i, 1_000_000_000 + i * 33_333_333 if t_ns is None else t_ns, left, right, CALIB)


def write_recording(path, n: int):
    """A recording of ``n`` make_frame frames (raw codec: exact pixels)."""
    w = RecordingWriter(path, CALIB, "raw", 30.0, "test")
    for i in range(n):
        w.write(make_frame(i), block=True)
    w.close()
    return path


class LiveFeed:
    """A camera-like source: ``read()`` blocks ``period_s`` and returns a frame stamped with the monotonic
    clock, ``n`` frames then None (unplugged) or ``fail_at`` -> CaptureError."""

    is_live, frames_total, nominal_fps, dropped_frames = True, None, 30.0, 0
    calibration = CALIB

    def __init__(self, n: int, period_s: float = 0.005, fail_at: int | None = None):
        self.n, self.period_s, self.fail_at, self.i, self.closed = n, period_s, fail_at, 0, False

    def read(self):
        from app.capture import CaptureError

        if self.i == self.fail_at:
            raise CaptureError("feed: 50 reads in a row failed; check the cable")
        if self.i >= self.n:
            return None
        time.sleep(self.period_s)
        frame = make_frame(self.i, time.monotonic_ns())
        self.i += 1
        return frame

    def close(self):
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Recorder:
    """A stage that records what it saw (frame ids, order), optionally sleeping or failing at one frame."""

    def __init__(self, name: str, sleep_s: float = 0.0, fail_at: int | None = None):
        self.name, self.sleep_s, self.fail_at = name, sleep_s, fail_at
        self.seen: list[int] = []
        self.finished = False

    def process(self, packet):
        if packet.frame_id == self.fail_at:
            raise ValueError(f"{self.name} cannot handle frame {packet.frame_id}")
        time.sleep(self.sleep_s)
        self.seen.append(packet.frame_id)
        return packet

    def finish(self):
        self.finished = True


@pytest.fixture
def kit():
    return types.SimpleNamespace(CALIB=CALIB, make_frame=make_frame, write_recording=write_recording,
                                 LiveFeed=LiveFeed, Recorder=Recorder)
