"""The stages as plain objects, each ``process(packet) -> packet`` (called from its own thread only):
detection -> reconstruction (fit + refine) -> texture -> render. They adapt the typed stage APIs
(``detect(frame)``, ``fit(obs, calib, prev)``, ``update(meshes, frame)``) to packets."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from app.pipeline.packet import Packet
from app.types import HandMesh, HandObservation, HandState, StereoFrame, ViewerSnapshot
from app.viewer.view import HudStatus, ViewerInput

HandFn = Callable[[HandObservation, StereoFrame, "HandState | None"], HandMesh]


class DetectionStage:
    """MediaPipe on both views, association, triangulation, crops: ``detector.detect(frame)``."""

    def __init__(self, detector):
        self.detector = detector

    def process(self, packet: Packet) -> Packet:
        return packet.replace(observations=tuple(self.detector.detect(packet.frame)))

    def close(self) -> None:
        self.detector.close()


def hand_score(obs: HandObservation) -> tuple[bool, float]:
    """Sort key: hands seen by both views first, then by detection score."""
    scores = [d.score for d in (obs.left, obs.right) if d is not None]
    return (not obs.is_mono, float(np.mean(scores)))


def select_hands(observations: tuple[HandObservation, ...], max_hands: int) -> list[HandObservation]:
    """At most ``max_hands`` observations, at most one per side, best first."""
    chosen, sides = [], set()
    for obs in sorted(observations, key=hand_score, reverse=True):
        if obs.is_left not in sides and len(chosen) < max_hands:
            chosen.append(obs)
            sides.add(obs.is_left)
    return chosen


class ReconstructionStage:
    """Hand meshes for the frame's best ``max_hands`` observations. ``reconstruct_hand(obs, frame, prev)`` fits
    (and refines) one hand; ``prev`` is the same side's state in the previous processed frame (None when the
    side was not seen then, so a hand coming back starts cold)."""

    def __init__(self, reconstruct_hand: HandFn, max_hands: int):
        self.reconstruct_hand, self.max_hands = reconstruct_hand, max_hands
        self._prev: dict[bool, HandState] = {}

    def process(self, packet: Packet) -> Packet:
        meshes = []
        for obs in select_hands(packet.observations, self.max_hands):
            mesh = self.reconstruct_hand(obs, packet.frame, self._prev.get(obs.is_left))
            if mesh.frame_id != packet.frame_id:
                raise RuntimeError(f"reconstruction returned frame {mesh.frame_id} for frame {packet.frame_id}")
            meshes.append(mesh)
        self._prev = {m.state.is_left: m.state for m in meshes}
        return packet.replace(meshes=tuple(meshes))


class TextureStage:
    """Texture accumulation, one accumulator per hand side (is_left -> ``update(mesh, frame) -> TextureMap``,
    ``reset()``): every mesh of a frame updates its side's texture; ``request_reset()`` (any thread) restarts
    all of them before the next frame."""

    def __init__(self, accumulators: dict):
        self.accumulators = accumulators
        self._reset = threading.Event()
        self._textures: dict = {}

    def request_reset(self) -> None:
        self._reset.set()

    def process(self, packet: Packet) -> Packet:
        if self._reset.is_set():
            self._reset.clear()
            for acc in self.accumulators.values():
                acc.reset()
            self._textures = {}
        for mesh in packet.meshes:
            side = mesh.state.is_left
            if side in self.accumulators:
                self._textures[side] = self.accumulators[side].update(mesh, packet.frame)
        return packet.replace(textures=tuple(self._textures.get(m.state.is_left) for m in packet.meshes))


def viewer_input(packet: Packet, status: HudStatus, uv_layouts: dict) -> ViewerInput:
    """The numpy-only view of a packet: left image, meshes, textures, keypoints, timings. The snapshot's one
    ``texture`` is the first mesh's; ``ViewerInput.textures`` has one per mesh."""
    frame = packet.frame
    first = next((t for t in packet.textures if t is not None), None)
    snap = ViewerSnapshot(frame.frame_id, frame.t_capture_ns, frame.left, packet.meshes, first, packet.timings_ms())
    obs = packet.observations
    return ViewerInput(snapshot=snap, K_px=frame.calibration.left.K,
                       keypoints_px=tuple(o.left.keypoints_px for o in obs if o.left is not None),
                       keypoints_cam_m=tuple(o.keypoints_cam_m for o in obs if o.keypoints_cam_m is not None),
                       uv_layouts=tuple(uv_layouts.get(m.state.is_left) for m in packet.meshes),
                       textures=packet.textures, status=status)


class RenderStage:
    """The last stage: composes the view (camera overlay, 3D orbit, HUD) and hands it to the display (window
    or MP4); saves a PNG when the S key asked for one. ``status(packet)`` makes the HUD status."""

    def __init__(self, composer, display, controls, status: Callable[[Packet], HudStatus], uv_layouts: dict,
                 screenshot_dir: str = "out"):
        self.composer, self.display, self.controls, self.status = composer, display, controls, status
        self.uv_layouts, self.screenshot_dir = uv_layouts, screenshot_dir
        self._t0_ns: int | None = None

    def process(self, packet: Packet) -> Packet:
        t_ns = packet.frame.t_capture_ns
        self._t0_ns = t_ns if self._t0_ns is None else self._t0_ns
        settings = self.controls.settings((t_ns - self._t0_ns) / 1e9)
        image = self.composer.compose(viewer_input(packet, self.status(packet), self.uv_layouts), settings)
        self.display.show(image)
        if self.controls.take_screenshot_request():
            self._screenshot(image, packet.frame_id)
        return packet

    def finish(self) -> None:
        """Called in the render thread after the last packet: the offscreen GL context is released there."""
        self.composer.close()

    def _screenshot(self, image: np.ndarray, frame_id: int) -> None:
        from app.viewer.sinks import save_png

        name = time.strftime("screenshot-%Y%m%d-%H%M%S") + f"-{frame_id}.png"
        print(f"screenshot: {save_png(f'{self.screenshot_dir}/{name}', image)}")
