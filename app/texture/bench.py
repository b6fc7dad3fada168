"""``python -m app.texture bench``: how well and how fast the texture stage recovers a known skin texture.

A synthetic stereo sequence (the app's own ``synthetic`` capture source: an animated open-model hand wearing a
known procedural skin) runs through capture -> (detection + model fit, or the source's ground-truth mesh with
``gt_pose``) -> TextureAccumulator. Reported:
- psnr_db: PSNR (peak 1) over the texels seen at least once (weight > 0) between the recovered texture and the
  known skin image, both sRGB in [0, 1].
- coverage: fraction of the UV charts' texels seen at least once.
- ms_per_update / ms_per_update_p95: median / 95th percentile wall time of ``update()`` per stereo frame
  (cpu_ms_per_update: the same in thread CPU time, less sensitive to other jobs on a shared machine); the
  first update (kernel compilation) is excluded and reported as first_update_s.
Fair comparison: the recovered texture carries whatever shading the images carry, so by default the sequence is
rendered with ambient light only (directional lights off, ambient 1), where the renderer shows the albedo
itself and the recovered texture should equal the known one. ``lighting='source'`` keeps the source's key and
fill lights; then psnr_db compares shaded colours with albedo and psnr_gain_db (after one gain per colour
channel, the ratio of the mean colours over the seen texels: exposure and white balance) is the fairer figure,
though the shading's variation over the hand remains in it. Both are always reported.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from app.texture.accumulator import TextureAccumulator
from app.texture.config import TextureConfig
from app.texture.layout import from_image
from app.types import HandMesh, TextureMap

LIGHTINGS = ("ambient", "source")


@dataclass(frozen=True)
class BenchConfig:
    """frames: stereo frames of the sequence; size: texture side; gt_pose: texture the source's true mesh
    (isolates texturing) instead of detection + fit; seed / mode: the synthetic source's; lighting: 'ambient'
    or 'source' (module docstring); compile, visibility, kernels: TextureConfig's."""

    frames: int = 30
    size: int = 512
    gt_pose: bool = False
    seed: int = 0
    mode: str = "640x360"
    lighting: str = "ambient"
    compile: bool = False
    visibility: str = "splat"
    kernels: str = "numba"

    def __post_init__(self):
        if self.frames < 1 or self.lighting not in LIGHTINGS:
            raise ValueError(f"bench: frames must be >= 1 and lighting one of {LIGHTINGS}")


def _ambient_lighting(_rng):
    """Directional lights off, ambient 1: the renderer shows the skin's albedo."""
    from models.synth.scene import Lighting

    return Lighting(np.array([[0.0, 0.3, 1.0], [0.5, 0.0, 1.0]]), np.zeros(2), 1.0)


def open_sequence(cfg: BenchConfig):
    """The synthetic source for the benchmark. The source has no lighting option yet, so ambient-only lighting
    replaces its light sampler while it is built (its scene keeps the lights it was built with)."""
    import app.capture.synthetic as synthetic
    from app.capture import open_source

    uri = f"synthetic?seed={cfg.seed}&frames={cfg.frames}&mode={cfg.mode}&pace=fast"
    if cfg.lighting == "source":
        return open_source(uri)
    with mock.patch.object(synthetic, "sample_stereo_lighting", _ambient_lighting):
        return open_source(uri)


class FitPath:
    """Detection + model fit of the sequence's one hand, warm-started frame to frame (the app's own path). The
    sequence shows one right hand, so the detector's handedness label is overridden when it says left (the fit
    uses the keypoints, never mirrored; the label only picks the model); ``relabelled`` counts those frames."""

    def __init__(self):
        from app.config import HandModelConfig
        from app.detection import build_detector
        from app.detection.config import DetectionConfig
        from app.reconstruction.fit import FitConfig, build_fitter

        self.detector = build_detector(DetectionConfig())
        self.fitter = build_fitter(FitConfig(), HandModelConfig())
        self.prev = None
        self.relabelled = 0

    def mesh(self, frame) -> HandMesh | None:
        observations = self.detector.detect(frame)
        if not observations:
            return None
        obs = max(observations, key=lambda o: (o.left is not None) + (o.right is not None))
        if obs.is_left:
            self.relabelled += 1
            obs = dataclasses.replace(obs, is_left=False)
        try:
            mesh = self.fitter.fit(obs, frame.calibration, self.prev)
        except ValueError:  # too few keypoints this frame
            return None
        self.prev = mesh.state
        return mesh

    def close(self) -> None:
        self.detector.close()


def psnr_db(recovered: np.ndarray, truth: np.ndarray) -> float:
    """PSNR (peak 1) between (M, 3) float colours in [0, 1]."""
    mse = float(np.mean((recovered - truth) ** 2))
    return float("inf") if mse == 0 else -10.0 * np.log10(mse)


def gain_corrected(recovered: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(M, 3): recovered times one gain per channel, mean(truth) / mean(recovered): an exposure and white
    balance correction. (A least-squares gain + offset would also shrink the recovered texture towards its mean
    wherever it is noisy, i.e. denoise it, and flatter the score.)"""
    return recovered * (truth.mean(axis=0) / np.maximum(recovered.mean(axis=0), 1e-6))


def texture_scores(acc: TextureAccumulator, texture: TextureMap, truth_image: np.ndarray) -> dict:
    """psnr_db, psnr_gain_db and coverage of a TextureMap against the known (S, S, 3) uint8 skin image."""
    weight = from_image(acc.layout, texture.weight)
    seen = weight > 0
    if not seen.any():
        return {"psnr_db": float("nan"), "psnr_gain_db": float("nan"), "coverage": 0.0}
    got = from_image(acc.layout, texture.rgb)[seen].astype(np.float64)
    want = from_image(acc.layout, truth_image)[seen].astype(np.float64) / 255.0
    return {"psnr_db": psnr_db(got, want), "psnr_gain_db": psnr_db(gain_corrected(got, want), want),
            "coverage": float(seen.mean())}


def _hand_model(fit: FitPath | None):
    """The right hand model being textured: the source's open model, or the fitter's (which must be the same:
    the known texture is in the open model's UV layout)."""
    from app.capture.synthetic import open_hand_model

    model = open_hand_model("right")
    if fit is not None and fit.fitter.hand_models["right"].name != model.name:
        raise ValueError("bench: the fitter uses real MANO (REALHANDS_MANO_DIR or --mano-dir is set) but the "
                         "synthetic hand and its known texture are the open model's; unset it for the benchmark")
    return model


def _truth_mesh(source, frame, faces: np.ndarray) -> HandMesh:
    t = source.ground_truth(frame.frame_id, masks=False)
    return HandMesh(frame.frame_id, frame.t_capture_ns, t.verts_m, faces, t.keypoints_m, t.state)


def _sequence_updates(cfg: BenchConfig, acc: TextureAccumulator, source, fit: FitPath | None):
    """Texture every frame of the source; returns the last TextureMap, per-update wall and CPU ms (the first
    update excluded), the first update's seconds and the number of frames textured."""
    faces = acc.layout.faces
    wall, cpu, first_s, textured, texture = [], [], float("nan"), 0, acc.texture()
    while (frame := source.read()) is not None:
        mesh = _truth_mesh(source, frame, faces) if fit is None else fit.mesh(frame)
        if mesh is None:
            continue
        t_wall, t_cpu = time.perf_counter(), time.thread_time()
        texture = acc.update(mesh, frame)
        dt_wall, dt_cpu = time.perf_counter() - t_wall, time.thread_time() - t_cpu
        if textured == 0:
            first_s = dt_wall
        else:
            wall.append(dt_wall * 1e3)
            cpu.append(dt_cpu * 1e3)
        textured += 1
    return texture, wall, cpu, first_s, textured


def run_bench(cfg: BenchConfig) -> tuple[dict, np.ndarray]:
    """Run the sequence; returns the result dict and the comparison image (``comparison_image``)."""
    torch.set_num_threads(1)
    fit = source = None
    try:
        fit = None if cfg.gt_pose else FitPath()
        acc = TextureAccumulator(TextureConfig(size=cfg.size, compile=cfg.compile, visibility=cfg.visibility,
                                               kernels=cfg.kernels), _hand_model(fit))
        source = open_sequence(cfg)
        texture, wall, cpu, first_s, textured = _sequence_updates(cfg, acc, source, fit)
        truth = source.skin.image
    finally:
        for closable in (source, fit):
            if closable is not None:
                closable.close()
    if truth.shape[0] != cfg.size:
        truth = _resize(truth, cfg.size)
    result = {**texture_scores(acc, texture, truth), **_timing(wall, cpu), "first_update_s": first_s,
              "frames": cfg.frames, "frames_textured": textured, "pose": "gt" if cfg.gt_pose else "fit",
              "handedness_relabelled": None if fit is None else fit.relabelled,
              "kernels_used": acc.kernels_used, "config": asdict(cfg), "load_average": list(os.getloadavg())}
    return result, comparison_image(texture, truth)


def comparison_image(texture: TextureMap, truth: np.ndarray) -> np.ndarray:
    """(S, 2S, 3) uint8: the recovered texture (texels never seen, which were filled, dimmed to 50 %) beside
    the true one."""
    dim = np.where(texture.weight > 0, 1.0, 0.5)[..., None]
    return np.concatenate([_rgb8(texture.rgb * dim), truth], axis=1)


def _timing(wall: list, cpu: list) -> dict:
    if not wall:
        return {"ms_per_update": float("nan"), "ms_per_update_p95": float("nan"), "cpu_ms_per_update": float("nan")}
    return {"ms_per_update": float(np.median(wall)), "ms_per_update_p95": float(np.percentile(wall, 95)),
            "cpu_ms_per_update": float(np.median(cpu))}


def _rgb8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    """The known texture at another texture size (the source paints 512^2)."""
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def write_outputs(result: dict, image: np.ndarray, json_path: Path, png_path: Path) -> None:
    """The JSON and the side-by-side PNG, each written to a temporary name first."""
    import json

    from app.atomic_io import png_bytes, write_bytes_atomic

    write_bytes_atomic(png_path, png_bytes(image))
    write_bytes_atomic(json_path, (json.dumps(result, indent=2, allow_nan=True) + "\n").encode())
