"""What travels between pipeline threads: one stereo frame and everything the stages made from it.

The packet only groups the stage-boundary dataclasses of app/types.py (StereoFrame, HandObservation, HandMesh,
TextureMap) with the timing of each stage; every stage returns a new packet (frozen, nothing is shared
mutably between threads).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from app.types import HandMesh, HandObservation, StereoFrame, TextureMap


@dataclass(frozen=True)
class StageTime:
    """When a stage worked on a packet: start_ns / end_ns from ``time.monotonic_ns()``."""

    stage: str
    start_ns: int
    end_ns: int

    @property
    def ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass(frozen=True)
class Packet:
    """One frame in flight.

    frame: the captured StereoFrame (frame_id and t_capture_ns as the source gave them, never changed).
    t_origin_ns: monotonic ns the latency is measured from: the device time for live sources
    (t_capture_ns), the moment the reader returned the frame for file sources (their clock is the file's).
    observations / meshes: filled by detection and reconstruction; textures: one per mesh (same order), the
    texture of that hand's side so far (None where that side has none), filled by the texture stage.
    times: one StageTime per stage passed, in order.
    """

    frame: StereoFrame
    t_origin_ns: int
    observations: tuple[HandObservation, ...] = ()
    meshes: tuple[HandMesh, ...] = ()
    textures: tuple[TextureMap | None, ...] = ()
    times: tuple[StageTime, ...] = ()

    @property
    def frame_id(self) -> int:
        return self.frame.frame_id

    def replace(self, **changes) -> Packet:
        return dataclasses.replace(self, **changes)

    def timed(self, stage: str, start_ns: int, end_ns: int) -> Packet:
        return dataclasses.replace(self, times=self.times + (StageTime(stage, start_ns, end_ns),))

    def timings_ms(self) -> dict[str, float]:
        """Stage name -> milliseconds spent on this packet (the ViewerSnapshot's ``timings_ms``)."""
        return {t.stage: t.ms for t in self.times}
