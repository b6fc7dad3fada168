"""Building the processing stages from the AppConfig, with adapters for stages whose packages may not be in
this checkout yet (reconstruction, refinement, texture): a missing package leaves its stage out and adds a
note saying so, instead of failing; a package that exists but fails to import still raises."""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from app.config import AppConfig, ConfigError
from app.pipeline.stages import DetectionStage, ReconstructionStage, TextureStage


def optional_module(name: str) -> ModuleType | None:
    """``importlib.import_module(name)``, or None when that module (or a package above it) does not exist."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            return None
        raise


def stage_module(name: str, notes: list[str], what: str) -> ModuleType | None:
    """optional_module for a stage: a missing module, or one that fails to import (a broken checkout), leaves
    the stage out with a note naming the problem instead of stopping the app."""
    try:
        module = optional_module(name)
    except (ImportError, SyntaxError) as exc:
        notes.append(f"{what}: {name} failed to import ({type(exc).__name__}: {exc}); {what} off")
        return None
    if module is None:
        notes.append(f"{what}: {name.replace('.', '/')}.py is not in this version; {what} off")
    return module


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; 'cuda' without a GPU is a ConfigError."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: torch sees no CUDA device (torch.cuda.is_available() is False); "
                          "use --device cpu or --device auto")
    return device


def checkpoint_note(checkpoint: str) -> str | None:
    """What happens to --checkpoint: HandNet initialises the hands and segments them, texture follows as usual."""
    if not checkpoint:
        return None
    return (f"--checkpoint {checkpoint}: HandNet initialises the hands (the keypoint fit takes over for a hand "
            "HandNet cannot place) and its segmentation masks are the refinement's targets")


def with_checkpoint_inputs(cfg: AppConfig) -> AppConfig:
    """cfg with the detection's crop size and heatmap Gaussian set to what the --checkpoint's HandNet was trained
    on (unchanged without a checkpoint); a missing or corrupt checkpoint is a ConfigError naming the file."""
    if not cfg.reconstruction.checkpoint:
        return cfg
    from models.handnet.checkpoint import CheckpointError, load_checkpoint

    try:
        inputs = load_checkpoint(cfg.reconstruction.checkpoint).network_inputs()
    except CheckpointError as exc:
        raise ConfigError(f"--checkpoint {cfg.reconstruction.checkpoint}: {exc}") from exc
    return dataclasses.replace(cfg, detection=dataclasses.replace(cfg.detection, **inputs))


def build_handnet_initialiser(checkpoint: str, device: str, fitter, segment: bool):
    """``init(obs, frame) -> (HandMesh, masks) | None`` from a HandNet checkpoint (models/handnet/runner.py),
    posed with the fitter's hand model; masks: per seeing view (left first) the network's (S, S) float32 hand
    probabilities over its detection crop, or None when ``segment`` is False. A missing, corrupt or mismatching
    checkpoint is a ConfigError naming the file."""
    from models.handnet.checkpoint import CheckpointError
    from models.handnet.runner import build_handnet_runner

    try:
        runner = build_handnet_runner(checkpoint, device)
    except CheckpointError as exc:
        raise ConfigError(f"--checkpoint {checkpoint}: {exc}") from exc

    def init(obs, frame):
        pred = runner.predict(obs, frame.calibration, segment=segment)
        if pred.state is None:
            return None
        masks = tuple(v.mask for v in pred.views) if segment else None
        return fitter.mesh(pred.state, frame.frame_id, frame.t_capture_ns), masks

    return init


@dataclass
class Stages:
    """The processing stages built (None = left out) and the notes about what is missing."""

    detection: DetectionStage
    reconstruction: ReconstructionStage | None = None
    texture: TextureStage | None = None
    uv_layouts: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def close(self) -> None:
        self.detection.close()


def build_detection(cfg: AppConfig) -> DetectionStage:
    from app.detection import build_detector

    # Crops and heatmaps are HandNet's inputs: without a checkpoint nothing reads them (the refinement's targets
    # cut their own crops through each detection's crop_from_image), so they are not made.
    det_cfg = dataclasses.replace(cfg.detection, max_num_hands=cfg.pipeline.hands,
                                  network_inputs=cfg.detection.network_inputs and bool(cfg.reconstruction.checkpoint))
    return DetectionStage(build_detector(det_cfg))


def _uv_layouts(hand_models: dict) -> dict:
    """is_left -> (vt (T, 2) float32, ft (F, 3) int64) numpy, or None for a model without UVs (real MANO)."""
    out = {}
    for side, model in hand_models.items():
        uv = model.uv
        out[side == "left"] = None if uv is None else (uv[0].cpu().numpy(), uv[1].cpu().numpy())
    return out


def build_reconstruction(cfg: AppConfig, device: str, notes: list[str]):
    """(ReconstructionStage or None, hand models by side): the model fit (app/reconstruction/fit.py) and, when
    available and iterations > 0, refinement."""
    fit = stage_module("app.reconstruction.fit", notes, "reconstruction")
    if fit is None or cfg.fit is None:
        return None, {}
    hm_cfg = dataclasses.replace(cfg.hand_model, device=device)
    fitter = fit.build_fitter(dataclasses.replace(cfg.fit, device=device), hm_cfg)
    refine = build_refinement(cfg, fitter.hand_models, notes)
    handnet = build_handnet_initialiser(cfg.reconstruction.checkpoint, device, fitter, refine is not None) \
        if cfg.reconstruction.checkpoint else None

    def reconstruct_hand(obs, frame, prev):
        found = None if handnet is None else handnet(obs, frame)
        mesh, masks = found if found is not None else (fitter.fit(obs, frame.calibration, prev), None)
        return mesh if refine is None else refine(mesh, obs, frame, prev is None, masks)

    return ReconstructionStage(reconstruct_hand, cfg.pipeline.hands), fitter.hand_models


def build_refinement(cfg: AppConfig, hand_models: dict, notes: list[str]):
    """``refine(mesh, obs, frame, new_track, masks=None) -> HandMesh`` or None (iterations 0, or modules
    missing); masks: HandNet's per-view masks as targets (None: colour segmentation). A diverged refinement gives
    the fitted mesh back (RefineResult.mesh is then the input)."""
    if cfg.reconstruction.iterations == 0:
        return None
    refine_mod = stage_module("app.reconstruction.refine", notes, "refinement")
    seg_mod = refine_mod and stage_module("app.reconstruction.segmentation", notes, "refinement")
    if seg_mod is None:
        return None
    from app.pipeline.refinement import TargetBuilder

    rc = cfg.reconstruction
    rcfg = refine_mod.refine_preset(rc.preset, iterations=rc.iterations, compile=rc.compile)
    refiners = {side == "left": refine_mod.build_refiner(rcfg, m) for side, m in hand_models.items()}
    for refiner in refiners.values():  # compile or load the kernels now, not on the first live frame
        refiner.warm_up()
    from app.warmup import warm_silhouette

    warm_silhouette()
    targets = TargetBuilder(seg_mod, refine_mod, rcfg.render_size_px, cfg.detection.crop_size)

    def refine(mesh, obs, frame, new_track: bool, masks=None):
        views = targets.targets(mesh, obs, frame, new_track, masks)
        return refiners[mesh.state.is_left].refine(mesh, views).mesh if views else mesh

    return refine


def has_distortion(calib) -> bool:
    return bool(np.any(calib.left.dist != 0) or np.any(calib.right.dist != 0))


def build_texture(cfg: AppConfig, hand_models: dict, calib, notes: list[str]) -> TextureStage | None:
    """One texture accumulator (app/texture) per hand side whose model has a UV layout."""
    tex = stage_module("app.texture.accumulator", notes, "texture")
    if tex is None or cfg.texture is None:
        return None
    if has_distortion(calib):
        notes.append("texture: off, the source's images are not rectified (lens distortion); use a rectified "
                     "source (zed, zed-uvc/sbs with rectify=1, video with rectify=1)")
        return None
    accs = {side == "left": tex.build_texture_accumulator(cfg.texture, m) for side, m in hand_models.items()
            if m.uv is not None}
    if not accs:
        notes.append("texture: the hand model has no UV layout (real MANO ships none); untextured")
        return None
    for acc in accs.values():  # first-call costs (loading or compiling kernels) now, not on a live frame
        acc.warm_up(calib)
    return TextureStage(accs)


def build_stages(cfg: AppConfig, device: str, calib) -> Stages:
    import torch

    torch.set_num_threads(cfg.pipeline.torch_threads)
    notes = [n for n in [checkpoint_note(cfg.reconstruction.checkpoint)] if n]
    cfg = with_checkpoint_inputs(cfg)
    stages = Stages(build_detection(cfg), notes=notes)
    stages.reconstruction, hand_models = build_reconstruction(cfg, device, notes)
    stages.uv_layouts = _uv_layouts(hand_models)
    if stages.reconstruction is not None:
        stages.texture = build_texture(cfg, hand_models, calib, notes)
    return stages
