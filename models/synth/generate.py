"""The synthetic stereo set generator behind ``python -m models.synth generate`` (format: docs/SYNTHETIC.md).

Per sample i: a generator seeded from (seed, i) (sampling.sample_rng) draws the hand (sampling.py), a skin
(skin.SkinPainter), lights (scene.sample_lighting) and a background; the scene is rendered through both cameras
of the rig (scene.render_scene) and labelled from the part pass: hand masks (forearm excluded), 2D keypoints
(the projection of the 3D keypoints) and their visibility (check.keypoint_visibility). Samples are independent,
so ``workers`` processes (spawned, each with its own models and OffscreenRenderer) write the same set as one.

Checksum: per sample the sha256 over the arrays written (left RGB, right RGB, left mask, right mask, then
dataset.ANNOTATION_KEYS; each as dtype, shape and C-order bytes); the set's checksum is the sha256 of the
per-sample hex digests joined in sample order. RGB is hashed as rendered, before PNG/JPEG encoding.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from app.geometry.camera import project, transform_points
from app.offscreen.renderer import OffscreenRenderer, RenderedView
from app.types import CameraView, StereoCalibration
from models.hand_model.check import keypoint_visibility, mediapipe_keypoints, normalised_error
from models.hand_model.check import summarise as check_summarise
from models.synth.appearance import random_background
from models.synth.dataset import (
    CALIBRATION_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    INDEX_FILE,
    SampleFiles,
    sample_files,
)
from models.synth.sampling import (
    SIDES,
    HandDraw,
    PlacedHand,
    SamplerConfig,
    background_disparity_px,
    draw_hand,
    pose_drawn_hand,
    sample_rng,
    sample_side,
)
from models.synth.scene import FOREARM_LABEL, HandScene, face_parts, render_scene, sample_lighting
from models.synth.views import VIEW_KINDS

IMAGE_FORMATS = ("png", "jpg")
BACKGROUND_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VISIBLE_STRATUM = 0.7  # views with at least this share of keypoints visible form the detection-rate stratum


class GenerateError(ValueError):
    """Bad generator input (rig, folders, options); the message names the problem and the fix."""


@dataclass(frozen=True)
class GenerateConfig:
    """n: samples; seed: set seed; rig: preset name or calibration file; mode: preset mode (HD720, VGA, 640x360,
    WxH); backgrounds: folder of photos or None; photo_fraction: share of samples with a photo background when a
    folder is given (the rest get procedural clutter); workers: processes; image_format: 'png' (lossless) or
    'jpg' (JPEG, jpeg_quality); mediapipe: run MediaPipe Hands on each left view for the summary; texture_size:
    skin texture side, px; overwrite: replace an existing set in the output folder; progress: tqdm bar."""

    n: int
    seed: int = 0
    rig: str = "zed-mini"
    mode: str = "HD720"
    backgrounds: str | None = None
    photo_fraction: float = 0.75
    workers: int = 1
    image_format: str = "png"
    jpeg_quality: int = 95
    mediapipe: bool = True
    texture_size: int = 512
    overwrite: bool = False
    progress: bool = True
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    def __post_init__(self):
        if self.n < 1:
            raise GenerateError(f"--n: expected at least 1 sample, got {self.n}")
        if self.workers < 1:
            raise GenerateError(f"--workers: expected at least 1, got {self.workers}")
        if self.image_format not in IMAGE_FORMATS:
            raise GenerateError(f"--image-format: expected one of {IMAGE_FORMATS}, got {self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise GenerateError(f"--jpeg-quality: expected 1..100, got {self.jpeg_quality}")
        if not 0.0 <= self.photo_fraction <= 1.0:
            raise GenerateError(f"photo_fraction: expected a value in [0, 1], got {self.photo_fraction}")


@dataclass(frozen=True)
class StereoSample:
    """One generated stereo pair (views ordered left, right).

    rgb: per view (H, W, 3) uint8. mask: per view (H, W) bool, hand without forearm. keypoints_px: (2, 21, 2)
    float32 pixels per view. visible: (2, 21) bool. hand: the placed hand (sampling.PlacedHand: pose, shape,
    transl_m, verts_m, keypoints_m in the left-camera frame). draw: its sampled parameters (side, kind, ...).
    """

    rgb: tuple[np.ndarray, np.ndarray]
    mask: tuple[np.ndarray, np.ndarray]
    keypoints_px: np.ndarray
    visible: np.ndarray
    hand: PlacedHand
    draw: HandDraw

    def annotation(self) -> dict[str, np.ndarray]:
        """The arrays of annotations/NNNNNN.npz (dataset.ANNOTATION_KEYS)."""
        h = self.hand
        return {"keypoints_px": self.keypoints_px, "visible": self.visible, "keypoints_m": h.keypoints_m,
                "verts_m": h.verts_m, "pose": h.pose, "shape": h.shape, "transl_m": h.transl_m,
                "is_left": np.array(self.draw.side == "left")}

    def arrays(self) -> list[np.ndarray]:
        """Every array written, in checksum order."""
        return [*self.rgb, *self.mask, *self.annotation().values()]


@dataclass(frozen=True)
class SampleRecord:
    """What one sample reports to the summary: sha256 hex digest of its arrays; visible_fraction: (left, right)
    share of visible keypoints; detected: MediaPipe found a hand in the left view (None when not run);
    mp_error: MediaPipe's normalised keypoint error (NaN when not detected); seconds: time to make and write."""

    index: int
    sha256: str
    kind: str
    side: str
    articulation: str
    visible_fraction: tuple[float, float]
    detected: bool | None
    mp_error: float
    seconds: float


# ---------------------------------------------------------------------------------------------------------
# Pure pieces: labels, backgrounds, digests, summary
# ---------------------------------------------------------------------------------------------------------


def hand_mask(parts: np.ndarray) -> np.ndarray:
    """(H, W) bool hand pixels of a part-label image (H, W) int (-1 background, 0 palm, 1..5 fingers,
    FOREARM_LABEL arm): every hand part, the forearm excluded."""
    return (parts >= 0) & (parts != FOREARM_LABEL)


def view_keypoints_px(keypoints_m: np.ndarray, view: CameraView) -> np.ndarray:
    """(21, 2) float32 pixels of keypoints (21, 3) metres in the left-camera frame, seen by ``view``."""
    cam = transform_points(view.T_cam_left, keypoints_m.astype(np.float64))
    return project(cam, view.K).astype(np.float32)


def split_stereo_background(canvas: np.ndarray, width: int, disparity_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Left and right (H, width, 3) views of a fronto-parallel background canvas (H, width + disparity_px, 3):
    a canvas column c appears at x = c in the left view and x = c - disparity_px in the right one."""
    if canvas.shape[1] != width + disparity_px:
        raise ValueError(f"canvas width {canvas.shape[1]} != width {width} + disparity {disparity_px}")
    return (np.ascontiguousarray(canvas[:, :width]),
            np.ascontiguousarray(canvas[:, disparity_px:disparity_px + width]))


def random_crop_resize(image: np.ndarray, rng: np.random.Generator, size_wh: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8: a random crop of ``image`` with the target aspect (40-100 % of the largest such crop),
    flipped left-right half the time, resized to size_wh = (W, H)."""
    w, h = size_wh
    ih, iw = image.shape[:2]
    scale = min(iw / w, ih / h) * rng.uniform(0.4, 1.0)
    cw, ch = max(1, min(iw, round(w * scale))), max(1, min(ih, round(h * scale)))
    x0, y0 = int(rng.integers(0, iw - cw + 1)), int(rng.integers(0, ih - ch + 1))
    crop = image[y0:y0 + ch, x0:x0 + cw]
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=cv2.INTER_AREA)


def array_digest(hasher, arr: np.ndarray) -> None:
    """Feed one array (dtype, shape, C-order bytes) into a hashlib object."""
    arr = np.ascontiguousarray(arr)
    hasher.update(f"{arr.dtype.str}{arr.shape}".encode())
    hasher.update(arr.tobytes())


def sample_digest(arrays: list[np.ndarray]) -> str:
    """sha256 hex digest of a sample's arrays, in order."""
    h = hashlib.sha256()
    for a in arrays:
        array_digest(h, a)
    return h.hexdigest()


def set_checksum(digests: list[str]) -> str:
    """sha256 hex digest of the per-sample hex digests joined in sample order."""
    return hashlib.sha256("".join(digests).encode()).hexdigest()


def _nan_to_none(value):
    return None if isinstance(value, float) and np.isnan(value) else value


def mediapipe_figures(records: list[SampleRecord]) -> dict:
    """MediaPipe detection rates of the summary via the model check's definitions (check.summarise): over
    left views with >= 70 % of keypoints visible, over all left views, per view kind, median error."""
    if not records or any(r.detected is None for r in records):
        return {"mediapipe_detection_rate": None, "mediapipe_detection_rate_all": None,
                "mediapipe_median_kp_error": None, "per_kind": dict.fromkeys(VIEW_KINDS)}
    rows = [{"visible_frac": r.visible_fraction[0], "detected": bool(r.detected), "error": r.mp_error,
             "kind": r.kind} for r in records]
    s = check_summarise(rows, 0, 0)
    if s["renders_visible"] == 0:
        s["mediapipe_detection_rate"] = float("nan")  # check.summarise says 0.0 for an empty stratum
    keys = ("mediapipe_detection_rate", "mediapipe_detection_rate_all", "mediapipe_median_kp_error")
    out = {k: _nan_to_none(s[k]) for k in keys}
    out["per_kind"] = {k: _nan_to_none(v) for k, v in s["per_kind"].items()}
    return out


def summarise(records: list[SampleRecord], seconds: float) -> dict:
    """The summary JSON (docs/SYNTHETIC.md): counts, time, checksum, visible stratum, MediaPipe figures."""
    n = len(records)
    vis = [r for r in records if r.visible_fraction[0] >= VISIBLE_STRATUM]
    out = {"samples": n, "seconds": round(seconds, 3), "checksum": set_checksum([r.sha256 for r in records]),
           "visible_fraction": len(vis) / n if n else None}
    out.update(mediapipe_figures(records))
    out["seconds_per_sample"] = round(seconds / n, 4) if n else None
    out["median_seconds_per_sample_in_worker"] = round(float(np.median([r.seconds for r in records])), 4)
    out["kinds"] = {k: sum(r.kind == k for r in records) for k in VIEW_KINDS}
    out["sides"] = {s: sum(r.side == s for r in records) for s in SIDES}
    out["mean_visible_keypoints"] = round(float(np.mean([r.visible_fraction[0] for r in records])), 4)
    return out


# ---------------------------------------------------------------------------------------------------------
# Rig, folders and backgrounds (the edges: files)
# ---------------------------------------------------------------------------------------------------------


def resolve_rig(rig: str, mode: str) -> StereoCalibration:
    """The rig of a preset name or calibration file; refused when it has lens distortion (renders are
    distortion-free pinhole views)."""
    from calibration.presets import rig_from_spec

    calib = rig_from_spec(rig, mode)
    if np.any(calib.left.dist != 0) or np.any(calib.right.dist != 0):
        raise GenerateError(f"--rig {rig}: the calibration has lens distortion, but the generator renders "
                            "distortion-free pinhole views; pass a preset (zed, zed-mini, zed2) or a rectified "
                            "calibration file")
    return calib


def list_backgrounds(folder: str | Path) -> list[Path]:
    """Sorted image files (BACKGROUND_SUFFIXES) directly inside ``folder``."""
    d = Path(folder)
    if not d.is_dir():
        raise GenerateError(f"--backgrounds {folder}: not a folder; pass a folder of background photos")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in BACKGROUND_SUFFIXES and p.is_file())
    if not files:
        raise GenerateError(f"--backgrounds {folder}: no {'/'.join(BACKGROUND_SUFFIXES)} images in it; pass a "
                            "folder of background photos, or leave --backgrounds out for procedural clutter")
    return files


class BackgroundSource:
    """Stereo backgrounds: photos from a folder (randomly cropped and resized) or procedural clutter
    (appearance.random_background), shifted between the views by the background plane's disparity."""

    def __init__(self, folder: str | None, photo_fraction: float):
        self.files = list_backgrounds(folder) if folder else []
        self.photo_fraction = photo_fraction

    def canvas(self, rng: np.random.Generator, size_wh: tuple[int, int]) -> np.ndarray:
        """(H, W, 3) uint8 background of size_wh = (W, H)."""
        if self.files and rng.uniform() < self.photo_fraction:
            path = self.files[int(rng.integers(len(self.files)))]
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise GenerateError(f"--backgrounds: cannot read {path}; remove it or replace it with a JPEG/PNG")
            return random_crop_resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), rng, size_wh)
        return random_background(rng, *size_wh)

    def pair(self, rng: np.random.Generator, size_wh: tuple[int, int], disparity_px: int):
        """(left, right) (H, W, 3) uint8 views of one background plane."""
        w, h = size_wh
        return split_stereo_background(self.canvas(rng, (w + disparity_px, h)), w, disparity_px)


def prepare_out_dir(out: str | Path, overwrite: bool) -> Path:
    """The output folder, created; refuses to write over an existing set unless ``overwrite``."""
    root = Path(out)
    if (root / INDEX_FILE).exists() and not overwrite:
        raise GenerateError(f"--out {root} already holds a synthetic set ({INDEX_FILE}); choose another folder "
                            "or pass --overwrite")
    try:
        for sub in ("images/left", "images/right", "masks/left", "masks/right", "annotations"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / INDEX_FILE).unlink(missing_ok=True)
    except OSError as exc:
        raise GenerateError(f"--out {root}: cannot create the output folders ({exc.strerror or exc}); "
                            "choose a writable folder") from exc
    return root


def _write_image(path: Path, rgb: np.ndarray, params: list[int]) -> None:
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]), params):
        raise GenerateError(f"cannot write {path}; check the disk space and permissions of --out")


def write_sample(files: SampleFiles, sample: StereoSample, image_format: str, jpeg_quality: int) -> None:
    """Images, masks (0 / 255 PNG) and the annotation .npz of one sample."""
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if image_format == "jpg" else []
    for v in range(2):
        _write_image(files.images[v], sample.rgb[v], params)
        mask = sample.mask[v].astype(np.uint8) * 255
        if not cv2.imwrite(str(files.masks[v]), mask):
            raise GenerateError(f"cannot write {files.masks[v]}; check the disk space and permissions of --out")
    np.savez(files.annotation, **sample.annotation())


# ---------------------------------------------------------------------------------------------------------
# Making samples
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HandAssets:
    """One side's open hand model, its model dict, render label per face and skin painter."""

    model: object
    data: dict
    face_part: np.ndarray
    painter: object


def load_hand(side: str, texture_size: int) -> HandAssets:
    """The open model of ``side`` (its procedural skin needs the open model's UV layout and part labels)."""
    from models.hand_model.layer import HandModel, _load_open
    from models.synth.skin import SkinPainter

    data = _load_open(side)
    model = HandModel(data, is_left=side == "left", name="open")
    parts = face_parts(np.asarray(data["vertex_part"]), model.faces.numpy())
    return HandAssets(model, data, parts, SkinPainter(data, texture_size))


_RENDERERS: dict[tuple[int, int], OffscreenRenderer] = {}


def process_renderer(size_wh: tuple[int, int]) -> OffscreenRenderer:
    """This process's renderer of one image size, made on first use and kept for the process's life (building
    one costs a GL context; OffscreenRenderer draws nodes in insertion order, so renders are reproducible)."""
    if size_wh not in _RENDERERS:
        _RENDERERS[size_wh] = OffscreenRenderer(*size_wh)
    return _RENDERERS[size_wh]


@dataclass(frozen=True)
class SceneDraw:
    """Everything sample i draws: the hand parameters, the placed hand, the scene, both backgrounds."""

    draw: HandDraw
    hand: PlacedHand
    scene: HandScene
    backgrounds: tuple[np.ndarray, np.ndarray]


class SampleMaker:
    """Draws, renders and labels samples of one set (one per process: models, painters, renderers)."""

    def __init__(self, calib: StereoCalibration, cfg: GenerateConfig):
        self.calib, self.cfg = calib, cfg
        self.hands = {side: load_hand(side, cfg.texture_size) for side in SIDES}
        self.backgrounds = BackgroundSource(cfg.backgrounds, cfg.photo_fraction)
        self._mp_hands = None

    def scene(self, index: int) -> SceneDraw:
        """Draw sample ``index`` (hand, skin, lights, backgrounds), always in the same order from its rng."""
        rng, scfg = sample_rng(self.cfg.seed, index), self.cfg.sampler
        side = sample_side(rng, scfg)
        assets = self.hands[side]
        draw = draw_hand(rng, assets.data, side, scfg)
        hand = pose_drawn_hand(assets.model, draw, rng, self.calib, scfg)
        skin = assets.painter.paint(rng)
        tint = np.ones((len(hand.verts_m), 3), np.float32)
        scene = HandScene(hand.verts_m, assets.model.faces.numpy(), assets.face_part, tint, hand.forearm_m,
                          skin.tone, sample_lighting(rng), skin)
        bgs = self.backgrounds.pair(rng, self.calib.left.size_wh, background_disparity_px(rng, self.calib, scfg))
        if self.calib.right.size_wh != self.calib.left.size_wh:
            bgs = (bgs[0], random_crop_resize(bgs[1], rng, self.calib.right.size_wh))
        return SceneDraw(draw, hand, scene, bgs)

    def render(self, s: SceneDraw) -> tuple[RenderedView, RenderedView]:
        """Colour, depth and part labels of the scene through the left and right cameras."""
        views = (self.calib.left, self.calib.right)
        return tuple(render_scene(process_renderer(v.size_wh), s.scene, v.K, bg, v.T_cam_left)
                     for v, bg in zip(views, s.backgrounds, strict=True))

    def make(self, index: int) -> StereoSample:
        """Sample ``index``: drawn, rendered in both views and labelled."""
        s = self.scene(index)
        rendered = self.render(s)
        views = (self.calib.left, self.calib.right)
        kps = np.stack([view_keypoints_px(s.hand.keypoints_m, v) for v in views])
        visible = np.stack([keypoint_visibility(k, r.parts) for k, r in zip(kps, rendered, strict=True)])
        return StereoSample(tuple(r.rgb for r in rendered), tuple(hand_mask(r.parts) for r in rendered), kps,
                            visible, s.hand, s.draw)

    def detect(self, rgb: np.ndarray) -> np.ndarray | None:
        """MediaPipe Hands (legacy solutions API, static images, one hand) keypoints (21, 2) px or None."""
        if self._mp_hands is None:
            import mediapipe as mp

            self._mp_hands = mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=1, model_complexity=1,
                                                      min_detection_confidence=0.5)
        return mediapipe_keypoints(self._mp_hands, rgb)

    def close(self) -> None:
        """Release MediaPipe (renderers stay with the process, see process_renderer)."""
        if self._mp_hands is not None:
            self._mp_hands.close()
            self._mp_hands = None


def process_sample(maker: SampleMaker, index: int, root: Path) -> SampleRecord:
    """Make, write and (optionally) run MediaPipe on sample ``index``."""
    t0 = time.perf_counter()
    sample = maker.make(index)
    cfg = maker.cfg
    write_sample(sample_files(root, index, cfg.image_format), sample, cfg.image_format, cfg.jpeg_quality)
    seconds = time.perf_counter() - t0
    detected, error = None, float("nan")
    if cfg.mediapipe:
        found = maker.detect(sample.rgb[0])
        detected = found is not None
        error = normalised_error(found, sample.keypoints_px[0]) if detected else float("nan")
    vis = (float(sample.visible[0].mean()), float(sample.visible[1].mean()))
    return SampleRecord(index, sample_digest(sample.arrays()), sample.draw.kind, sample.draw.side,
                        sample.draw.articulation, vis, detected, error, seconds)


# ---------------------------------------------------------------------------------------------------------
# Workers and the whole run
# ---------------------------------------------------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(calib: StereoCalibration, cfg: GenerateConfig, root: Path) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER.update(maker=SampleMaker(calib, cfg), root=root)


def _work(index: int) -> SampleRecord:
    return process_sample(_WORKER["maker"], index, _WORKER["root"])


def run_samples(calib: StereoCalibration, cfg: GenerateConfig, root: Path) -> Iterator[SampleRecord]:
    """Records of samples 0 .. n - 1, in order: in this process for one worker, else in spawned processes."""
    if cfg.workers == 1:
        _init_worker(calib, cfg, root)
        try:
            yield from (_work(i) for i in range(cfg.n))
        finally:
            _WORKER.pop("maker").close()
        return
    ctx = multiprocessing.get_context("spawn")  # never fork a process holding a GL context
    with ctx.Pool(cfg.workers, initializer=_init_worker, initargs=(calib, cfg, root)) as pool:
        yield from pool.imap(_work, range(cfg.n), chunksize=1)


def index_json(cfg: GenerateConfig, calib: StereoCalibration, records: list[SampleRecord]) -> dict:
    """dataset.json: format, provenance, the sampler's settings and one entry per sample."""
    entries = [{"id": f"{r.index:06d}", "kind": r.kind, "side": r.side, "articulation": r.articulation,
                "visible_fraction": list(r.visible_fraction), "sha256": r.sha256,
                "mediapipe_detected": r.detected} for r in records]
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "samples": len(records), "seed": cfg.seed,
            "rig": calib.name, "mode": cfg.mode, "calibration": CALIBRATION_FILE, "image_format": cfg.image_format,
            "jpeg_quality": cfg.jpeg_quality if cfg.image_format == "jpg" else None,
            "image_size_wh": {"left": list(calib.left.size_wh), "right": list(calib.right.size_wh)},
            "hand_model": "open", "sampler": asdict(cfg.sampler),
            "checksum": set_checksum([r.sha256 for r in records]), "entries": entries}


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def generate(out: str | Path, cfg: GenerateConfig, summary_path: str | Path | None = None
             ) -> tuple[dict, list[SampleRecord]]:
    """Write a synthetic stereo set of cfg.n samples to ``out``; returns (summary, per-sample records). The
    summary JSON goes to summary_path (default out/summary.json)."""
    from tqdm import tqdm

    from calibration.fileio import save_calibration

    calib = resolve_rig(cfg.rig, cfg.mode)
    if cfg.backgrounds:
        list_backgrounds(cfg.backgrounds)  # fail before any worker starts
    root = prepare_out_dir(out, cfg.overwrite)
    save_calibration(root / CALIBRATION_FILE, calib, extra={"source": f"models.synth generate --rig {cfg.rig}"})
    t0 = time.monotonic()
    records = list(tqdm(run_samples(calib, cfg, root), total=cfg.n, desc="synth", unit="pair",
                        disable=not cfg.progress))
    summary = summarise(records, time.monotonic() - t0)
    summary.update(rig=calib.name, seed=cfg.seed, workers=cfg.workers)
    _write_json(root / INDEX_FILE, index_json(cfg, calib, records))
    path = Path(summary_path) if summary_path else root / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, summary)
    return summary, records
