"""Dataclass configs, merged once at the entry point: defaults <- YAML file <- CLI overrides, then frozen.

Each component owns one frozen dataclass config (``HandModelConfig`` ...) and a ``build_x(cfg)`` factory.
``AppConfig`` groups them. Overrides use dotted keys: ``hand_model.side=left``.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

MANO_DIR_ENV = "REALHANDS_MANO_DIR"


class ConfigError(ValueError):
    """A configuration value or file is wrong; the message names the key and the fix."""


@dataclass(frozen=True)
class HandModelConfig:
    """Which hand model to use. mano_dir: folder with MANO_RIGHT.pkl / MANO_LEFT.pkl, or '' for the
    embedded open model (the environment variable REALHANDS_MANO_DIR is used when empty)."""

    mano_dir: str = ""
    device: str = "cpu"

    def resolved_mano_dir(self) -> str:
        return self.mano_dir or os.environ.get(MANO_DIR_ENV, "")


@dataclass(frozen=True)
class ReconstructionSettings:
    """Live reconstruction settings: iterations of test-time refinement per frame (0 = fit only); checkpoint:
    HandNet weights file ('' = the stereo keypoint fit initialises the hand); compile: torch.compile the
    refiner's torch rasterizer (only used where the numba renderer is not: it is faster eager); preset: the
    refinement's settings, 'scaled' (the paper's loss, optimiser, lr and momentum with per-offset step
    multipliers; the default) or 'paper' (the literal settings, which diverge in metres on every synthetic
    hand tried and so keep the fit: docs/PERFORMANCE.md, Refinement)."""

    iterations: int = 3
    checkpoint: str = ""
    compile: bool = False
    preset: str = "scaled"

    def __post_init__(self):
        if not 0 <= self.iterations <= 100:
            raise ConfigError(f"reconstruction.iterations: expected 0..100, got {self.iterations}")
        if self.preset not in ("scaled", "paper"):
            raise ConfigError(f"reconstruction.preset: expected scaled or paper, got {self.preset!r}")


@dataclass(frozen=True)
class PipelineConfig:
    """How frames move through the live pipeline (app/pipeline).

    queue_size: items waiting in front of each stage (latest-wins: a new item replaces the oldest waiting one).
    max_in_flight: frames inside the stages at once (app/pipeline/admission.py; 0 = no limit, every stage then
    holds a frame and latency grows to about twice the stage count times the slowest stage's period). 2 suits
    two cores: one frame in detection while the previous one is reconstructed, textured and drawn.
    realtime: file sources run at their recorded pace and stages drop stale frames as with a camera; False
    (default) paces file sources by the pipeline so every frame is processed. Live sources always drop.
    max_frames: stop after this many captured frames (0 = until the source ends or Ctrl-C).
    hands: hands reconstructed per frame (1 or 2). device: 'cpu', 'cuda' or 'auto' (cuda when available).
    torch_threads: torch intra-op threads (1: the stages already run in parallel threads; more threads made
    small model calls much slower on a busy 2-core machine, docs/CONTRIBUTING.md).
    """

    queue_size: int = 1
    max_in_flight: int = 2
    realtime: bool = False
    max_frames: int = 0
    hands: int = 2
    device: str = "auto"
    torch_threads: int = 1

    def __post_init__(self):
        if self.queue_size < 1:
            raise ConfigError(f"pipeline.queue_size: expected >= 1, got {self.queue_size}")
        if self.max_in_flight < 0:
            raise ConfigError(f"pipeline.max_in_flight: expected >= 0 (0 = no limit), got {self.max_in_flight}")
        if self.hands not in (1, 2):
            raise ConfigError(f"pipeline.hands / --hands: expected 1 or 2, got {self.hands}")
        if self.max_frames < 0:
            raise ConfigError(f"pipeline.max_frames / --max-frames: expected >= 0, got {self.max_frames}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ConfigError(f"pipeline.device / --device: expected cpu, cuda or auto, got {self.device!r}")


@dataclass(frozen=True)
class ViewerConfig:
    """The live view (app/viewer). headless: no window; the composed view goes to video_path (MP4) and the
    last frame to screenshot_path (PNG). panel_width_px: width of each panel (camera overlay, 3D view), a
    multiple of 16 (video codecs need it). video_fps: MP4 frame rate (0 = the source's nominal rate).
    screenshot_dir: where the S key saves PNGs. orbit_distance_m: initial 3D-view camera distance.
    overlay_alpha: opacity of the mesh drawn over the camera image (1 hides the hand under it; less shows
    how well the mesh fits)."""

    headless: bool = False
    panel_width_px: int = 640
    video_path: str = "out/live_view.mp4"
    screenshot_path: str = "out/live_view_last.png"
    screenshot_dir: str = "out"
    video_fps: float = 0.0
    orbit_distance_m: float = 0.6
    overlay_alpha: float = 0.8

    def __post_init__(self):
        if self.panel_width_px < 64 or self.panel_width_px % 16:
            raise ConfigError(f"viewer.panel_width_px: expected a multiple of 16 >= 64, got {self.panel_width_px}")
        if not 0.0 <= self.overlay_alpha <= 1.0:
            raise ConfigError(f"viewer.overlay_alpha: expected 0..1, got {self.overlay_alpha}")


@dataclass(frozen=True)
class SessionConfig:
    """Recording of textured-hand sessions (app/session). record_dir: '' = not recording at start (the R key
    starts one under recordings/); codec: raw frame codec (png, raw, jpeg[:Q]); texture_save_interval_s:
    how often the texture is saved during recording; export: write the .glb files when a session closes."""

    record_dir: str = ""
    codec: str = "png"
    texture_save_interval_s: float = 5.0
    export: bool = True


@dataclass(frozen=True)
class BenchmarkConfig:
    """path: JSON report of the run ('' = none), with a PNG bar chart beside it. baseline_max_frames: at most
    this many of the run's frames are kept (live sources) for the MediaPipe-only baseline. warmup_frames: the
    first frames (first-call compilation and allocation) are left out of fps and percentiles of the report and
    of the baseline, when the run has more."""

    path: str = ""
    baseline_max_frames: int = 300
    warmup_frames: int = 5


def _detection_default():
    """DetectionConfig, imported lazily: app.detection pulls in torch and cv2, which --help should not wait for
    (the field is typed Any for the same reason; merging still recurses into it as a dataclass)."""
    from app.detection.config import DetectionConfig

    return DetectionConfig()


def _optional_config(module: str, name: str):
    """A stage's config imported lazily, or None when that stage's package is not in this checkout."""

    def make():
        import importlib

        try:
            return getattr(importlib.import_module(module), name)()
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                return None
            raise

    return make


@dataclass(frozen=True)
class AppConfig:
    """Everything run_live.py needs, one section per component (YAML keys: source, hand_model.mano_dir, ...)."""

    source: str = "auto"
    hand_model: HandModelConfig = field(default_factory=HandModelConfig)
    detection: typing.Any = field(default_factory=_detection_default)
    fit: typing.Any = field(default_factory=_optional_config("app.reconstruction.fit_config", "FitConfig"))
    texture: typing.Any = field(default_factory=_optional_config("app.texture.config", "TextureConfig"))
    reconstruction: ReconstructionSettings = field(default_factory=ReconstructionSettings)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    viewer: ViewerConfig = field(default_factory=ViewerConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)


def _coerce(value, typ, key: str):
    """Convert a YAML/CLI value to the field's annotated type (str from the CLI, native from YAML)."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        typ = args[0]
    try:
        if typ is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if typ in (int, float, str, bool):
            return typ(value)
        if typing.get_origin(typ) is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            sub = typing.get_args(typ)[0]
            return tuple(sub(v) for v in items)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config key '{key}': cannot read {value!r} as {getattr(typ, '__name__', typ)}") from exc
    return value


def _apply(cfg, updates: dict, prefix: str = ""):
    """Return a copy of the dataclass ``cfg`` with nested ``updates`` applied; unknown keys are errors."""
    hints = typing.get_type_hints(type(cfg))
    names = {f.name for f in dataclasses.fields(cfg)}
    changes = {}
    for key, value in updates.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key '{full}'; known keys: {sorted(names)}")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{full}' is a section; give it a mapping")
            changes[key] = _apply(current, value, full + ".")
        else:
            changes[key] = _coerce(value, hints[key], full)
    return dataclasses.replace(cfg, **changes)


def _dotted_to_nested(overrides: dict) -> dict:
    nested: dict = {}
    for key, value in overrides.items():
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with clear errors for a missing or malformed file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found; pass an existing YAML file to --config")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of keys to values at the top level")
    return data


def merge_config(default, yaml_path: str | Path | None = None, overrides: dict | None = None):
    """defaults <- YAML <- overrides (dotted keys, None values ignored). Returns a new frozen config."""
    cfg = default
    if yaml_path:
        cfg = _apply(cfg, load_yaml(yaml_path))
    if overrides:
        cfg = _apply(cfg, _dotted_to_nested({k: v for k, v in overrides.items() if v is not None}))
    return cfg
