"""The live app behind run_live.py: open the source, build the stages, the view and the recorder, run the
pipeline until the source ends, --max-frames, Ctrl-C, window close or an error, then close everything in order
(view, recording, stages, source) and report.

Exit codes: 0 done, 1 the pipeline stopped on an error (camera lost, a stage failed), 2 bad input (source,
config, record directory, display output), 130 interrupted while starting.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.capture import CaptureError, known_schemes, open_source
from app.config import AppConfig, ConfigError
from app.pipeline.build import Stages, build_stages, optional_module, resolve_device
from app.pipeline.report import (
    FrameKeeper,
    benchmark_dict,
    mediapipe_baseline,
    replay_frames,
    settings_dict,
    summary_lines,
    write_benchmark,
)
from app.pipeline.runner import Pipeline, StageSpec
from app.pipeline.stages import RenderStage
from app.session import SessionError, SessionRecorder, SessionSwitch
from app.session.recorder import prepare_dir
from app.viewer import Composer, HudStatus, ViewControls, ViewerError
from app.viewer.layout import Orbit
from calibration.errors import CalibrationError
from models.hand_model.mano_io import ManoFileError

Say = Callable[[str], None]


def default_say(line: str) -> None:
    """Messages to stdout, errors to stderr."""
    print(line, file=sys.stderr if line.startswith("error:") else sys.stdout, flush=True)


INPUT_ERRORS = (CaptureError, CalibrationError, ConfigError, SessionError, ViewerError, ManoFileError)
ZED_SETTINGS_GLOB = "/usr/local/zed/settings/SN*.conf"
HEADLESS_SWING_DEG = 25.0


def auto_candidates() -> list[str]:
    """Sources tried for --source auto: the ZED SDK, then a UVC ZED when exactly one factory calibration is
    cached where the SDK keeps it (zed-uvc needs the camera's SN<serial>.conf)."""
    confs = sorted(glob.glob(ZED_SETTINGS_GLOB))
    return ["zed"] + ([f"zed-uvc:0?conf={confs[0]}"] if len(confs) == 1 else [])


def open_auto_source(say: Say):
    """(source, uri): a ZED if one answers, else the synthetic source with a message saying so."""
    problems = []
    for uri in auto_candidates():
        try:
            return open_source(uri), uri
        except (CaptureError, CalibrationError) as exc:
            problems.append(str(exc).split(";")[0])
    if "synthetic" not in known_schemes():
        optional_module("app.capture.synthetic")  # registers the scheme when the module exists
    why = "; ".join(problems)
    if "synthetic" in known_schemes():
        say(f"no ZED camera answered ({why}); using the synthetic source (pass --source to choose)")
        return open_source("synthetic"), "synthetic"
    raise CaptureError(f"--source auto: no ZED camera answered ({why}) and the synthetic source is not in this "
                       "version; pass --source URI, e.g. recording:DIR or sbs:FILE.mp4?conf=SN123.conf")


def open_any_source(text: str, say: Say):
    return open_auto_source(say) if text == "auto" else (open_source(text), text)


@dataclass
class StatusBoard:
    """Makes the HUD status of a packet from the pipeline's meters and the recorder (render thread)."""

    switch: SessionSwitch
    notes: tuple[str, ...]
    pipeline: Pipeline | None = None

    def __call__(self, packet) -> HudStatus:
        p, active = self.pipeline, self.switch.active
        return HudStatus(fps=p.rate.fps(), hands_seen=len(packet.observations), recording=active is not None,
                         recorded_frames=0 if active is None else active.frames_written,
                         dropped=sum(m.dropped for m in p.metrics.values()), notes=self.notes)


@dataclass
class LiveRun:
    cfg: AppConfig
    source_uri: str
    device: str
    source: object = None
    stages: Stages | None = None
    switch: SessionSwitch | None = None
    display: object = None
    pipeline: Pipeline | None = None
    keeper: FrameKeeper | None = None
    lines: list[str] = field(default_factory=list)


def make_switch(cfg: AppConfig, source, uri: str, uv_layouts: dict, say: Say) -> SessionSwitch:
    def recorder(path) -> SessionRecorder:
        return SessionRecorder(path, source.calibration, cfg.session, nominal_fps=source.nominal_fps, source=uri,
                               uv_layouts=uv_layouts, is_live=source.is_live)

    switch = SessionSwitch(recorder, cfg.session.record_dir, report=say)
    if cfg.session.record_dir:
        say(f"recording to {switch.start().dir}")
    return switch


def make_display(cfg: AppConfig, canvas_wh: tuple[int, int], controls: ViewControls, fps: float, say: Say):
    """The window, or the headless MP4/PNG writer (asked for, or no display: said so)."""
    from app.viewer.sinks import HeadlessDisplay

    v = cfg.viewer
    if not v.headless:
        from app.viewer.window import open_window

        window, why = open_window(canvas_wh, controls)
        if window is not None:
            return window
        say(f"{why}: running headless, writing the view to {v.video_path} (use --headless to skip the window)")
    controls.swing_deg = HEADLESS_SWING_DEG
    return HeadlessDisplay(v.video_path, v.screenshot_path, v.video_fps or fps)


def stage_specs(run: LiveRun, render: RenderStage) -> list[StageSpec]:
    s, sw = run.stages, run.switch
    specs = [StageSpec("detection", s.detection)]
    if s.reconstruction is not None:
        specs.append(StageSpec("reconstruction", s.reconstruction, taps=(sw.on_hands,)))
    if s.texture is not None:
        specs.append(StageSpec("texture", s.texture, taps=(sw.on_texture,)))
    return specs + [StageSpec("render", render)]


def _on_frame(run: LiveRun):
    if run.keeper is None:
        return run.switch.on_frame
    return lambda frame: (run.switch.on_frame(frame), run.keeper(frame))


def build(cfg: AppConfig, stack: contextlib.ExitStack, say: Say) -> LiveRun:
    """Everything, registered on ``stack`` so a failure half-way closes what was opened (in reverse order)."""
    run = LiveRun(cfg, cfg.source, resolve_device(cfg.pipeline.device))
    if cfg.session.record_dir:
        prepare_dir(Path(cfg.session.record_dir))  # a bad --record fails before the slow model building
    run.source, run.source_uri = open_any_source(cfg.source, say)
    stack.callback(run.source.close)
    for warning in getattr(run.source, "warnings", []):
        say(f"warning: {warning}")
    run.stages = build_stages(cfg, run.device, run.source.calibration)
    stack.callback(run.stages.close)
    for note in run.stages.notes:
        say(note)
    run.switch = make_switch(cfg, run.source, run.source_uri, run.stages.uv_layouts, say)
    stack.callback(lambda: run.lines.extend(run.switch.close()))
    build_view_and_pipeline(run, stack, say)
    return run


def build_view_and_pipeline(run: LiveRun, stack: contextlib.ExitStack, say: Say) -> None:
    cfg, src = run.cfg, run.source
    texture_reset = run.stages.texture.request_reset if run.stages.texture is not None else None
    controls = ViewControls(Orbit(distance_m=cfg.viewer.orbit_distance_m), on_record=run.switch.toggle,
                            on_texture_reset=texture_reset)
    composer = Composer(src.calibration.left.size_wh, cfg.viewer.panel_width_px, cfg.viewer.overlay_alpha)
    run.display = make_display(cfg, composer.canvas_wh, controls, src.nominal_fps, say)
    stack.callback(lambda: run.lines.extend(run.display.close()))
    board = StatusBoard(run.switch, tuple(n[:100] for n in run.stages.notes))
    render = RenderStage(composer, run.display, controls, board, run.stages.uv_layouts, cfg.viewer.screenshot_dir)
    if cfg.benchmark.path and src.is_live:
        run.keeper = FrameKeeper(cfg.benchmark.baseline_max_frames)
    run.pipeline = board.pipeline = Pipeline(src, stage_specs(run, render), cfg.pipeline, on_frame=_on_frame(run))


def benchmark(run: LiveRun, say: Say) -> None:
    cfg = run.cfg
    report = run.pipeline.report(cfg.benchmark.warmup_frames)
    if run.keeper is not None:
        frames = list(run.keeper.frames)
    else:
        frames = replay_frames(run.source_uri, min(report.frames_read, cfg.benchmark.baseline_max_frames))
    say("benchmark: measuring MediaPipe alone on the same frames ...")
    det_cfg = dataclasses.replace(cfg.detection, max_num_hands=cfg.pipeline.hands)
    baseline = mediapipe_baseline(det_cfg, frames, report.warmup)
    settings = settings_dict(dataclasses.replace(cfg, source=run.source_uri))
    paths = write_benchmark(cfg.benchmark.path, benchmark_dict(report, run.device, settings, baseline))
    say(f"benchmark: {paths[0]} and {paths[1]} (pipeline {report.fps:.1f} fps, MediaPipe alone "
        f"{baseline[0]:.1f} fps)")


@contextlib.contextmanager
def stop_on_sigterm(pipeline):
    """SIGTERM (``kill``, ``timeout``, a service manager) stops the pipeline as Ctrl-C does, so recordings and
    the MP4 are closed; the previous handler comes back afterwards. Only the main thread can set handlers: from
    any other thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: pipeline.stop("terminated (SIGTERM)"))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_live(cfg: AppConfig, say: Say = default_say) -> int:
    """Build, run and close the live app; returns the exit code (module doc)."""
    with contextlib.ExitStack() as stack:
        try:
            run = build(cfg, stack, say)
        except INPUT_ERRORS as exc:
            say(f"error: {exc}")
            return 2
        run.pipeline.start()
        say(f"running {run.source_uri}: {' -> '.join(run.pipeline.metrics)}; Ctrl-C stops")
        with stop_on_sigterm(run.pipeline):
            run.display.run(run.pipeline)
    for line in run.lines + summary_lines(run.pipeline.report()):
        say(line)
    if cfg.benchmark.path:
        benchmark(run, say)
    if run.pipeline.error:
        say(f"error: {run.pipeline.error}")
        return 1
    return 0
