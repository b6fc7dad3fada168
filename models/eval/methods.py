"""Keypoint methods of the evaluation, by name. A method factory takes ``MethodOptions`` and returns an object
with ``__call__(sample) -> Prediction`` and ``close()``.

- ``mediapipe`` (2D): MediaPipe Hands in static-image mode on every view of the sample. On tight crops (the
  real-world set's 256x256 hand crops) MediaPipe's palm detector misses hands that fill the frame, so the crop
  is first placed in the middle of a black canvas with a margin of ``pad_fractions[0]`` x the crop side on
  every edge; if no hand is found the next margin is tried. The default (0.5, 1.0) means a 512x512 canvas,
  then 768x768. Keypoints are shifted back into the crop's pixels.
- ``triangulate`` (3D): the detection stage (``app.detection``) on the stereo pair: MediaPipe on both views,
  association, DLT triangulation with outlier rejection, in the left-camera frame, metres (no filtering: the
  samples are independent).
- ``fit`` (3D mesh): detection -> the model-fit initialiser (app/reconstruction/fit.py HandFitter); ``fit+refine``
  the same followed by ``iterations`` steps of test-time refinement (the 'scaled' preset) on the weightless
  segmentation target of every seeing view's detection crop. Both live in models/eval/fit_methods.py.
- ``handnet`` (3D mesh): detection with network inputs -> the HandNet runner of ``checkpoint`` (stereo fusion
  when both views saw the hand, one view's prediction otherwise); ``handnet+refine`` then refines towards
  HandNet's own segmentation masks with the refinement of ``fit+refine`` (models/eval/handnet_method.py).
When a view holds several hands, the one whose keypoint centroid is nearest the ground truth's is scored
(evaluation matching, as for multi-person pose benchmarks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.detection.config import DetectionConfig
from models.eval.samples import EvalSample, Prediction

SIDES = ("detector", "fit")


@dataclass(frozen=True)
class MethodOptions:
    """model_complexity: MediaPipe 0 / 1. pad_fractions: margins tried on tight crops (0 = the raw crop).
    iterations: refinement steps of ``fit+refine`` / ``handnet+refine``. side: which hand model the fit methods
    fit, 'detector' (the detection's handedness, as the live pipeline) or 'fit' (both models, the lower final fit
    cost wins). checkpoint: the HandNet .pt of ``handnet`` / ``handnet+refine`` ('' = none)."""

    model_complexity: int = 1
    pad_fractions: tuple[float, ...] = (0.5, 1.0)
    iterations: int = 3
    side: str = "detector"
    checkpoint: str = ""

    def __post_init__(self):
        if not self.pad_fractions or min(self.pad_fractions) < 0:
            raise ValueError(f"pad margins must be >= 0 and at least one, got {self.pad_fractions} (--pad 0.5,1.0)")
        if not 0 <= self.iterations <= 100:
            raise ValueError(f"refinement iterations must be in 0..100, got {self.iterations} (--iterations 3)")
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {self.side!r} (--side detector)")


@dataclass(frozen=True)
class MethodSpec:
    """factory(MethodOptions) -> method; outputs_3d: returns 3D keypoints; needs_stereo: refuses mono samples;
    outputs_mesh: returns meshes (the JSON then carries the mesh figures of models/eval/metrics.py)."""

    factory: Callable
    outputs_3d: bool
    needs_stereo: bool
    outputs_mesh: bool = False


METHODS: dict[str, MethodSpec] = {}


def register_method(name: str, factory: Callable, outputs_3d: bool, needs_stereo: bool,
                    outputs_mesh: bool = False) -> None:
    """Add (or replace) the method ``--method name``."""
    METHODS[name] = MethodSpec(factory, outputs_3d, needs_stereo, outputs_mesh)


def pad_image(image: np.ndarray, pad_px: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (H + 2 pad, W + 2 pad, 3) uint8, the image in the middle of a black canvas."""
    out = np.zeros((image.shape[0] + 2 * pad_px, image.shape[1] + 2 * pad_px, 3), dtype=np.uint8)
    out[pad_px:pad_px + image.shape[0], pad_px:pad_px + image.shape[1]] = image
    return out


def detect_padded(hands, image: np.ndarray, pad_fractions: tuple[float, ...]):
    """MediaPipe (``hands``: a MediaPipeHands) on a tight crop (H, W, 3) uint8 placed on black canvases with each
    margin in turn (x the crop's longer side) until a hand is found -> its RawHand with keypoints in the crop's
    pixels, or None."""
    for frac in pad_fractions:
        pad = int(round(frac * max(image.shape[:2])))
        found = hands.process(pad_image(image, pad))
        if found:
            return dataclasses.replace(found[0], keypoints_px=found[0].keypoints_px - np.float32(pad))
    return None


def nearest_index(candidates: list[np.ndarray], gt_uv: np.ndarray) -> int | None:
    """Index of the (21, 2) candidate whose centroid is nearest the ground truth's; None when empty."""
    if not candidates:
        return None
    dist = [float(np.linalg.norm(np.nanmean(kp, axis=0) - gt_uv.mean(axis=0))) for kp in candidates]
    return int(np.argmin(dist))


class MediaPipeMethod:
    """2D keypoints per view from MediaPipe (see the module docstring)."""

    def __init__(self, opts: MethodOptions):
        self.opts = opts
        self._hands: dict[int, object] = {}

    def _detector(self, max_hands: int):
        from app.detection.mediapipe_hands import MediaPipeHands

        if max_hands not in self._hands:
            self._hands[max_hands] = MediaPipeHands(DetectionConfig(
                static_image_mode=True, max_num_hands=max_hands, model_complexity=self.opts.model_complexity))
        return self._hands[max_hands]

    def _view(self, image: np.ndarray, gt_uv: np.ndarray, tight: bool) -> np.ndarray | None:
        if not tight:
            kps = [h.keypoints_px.astype(np.float64) for h in self._detector(2).process(image)]
            idx = nearest_index(kps, gt_uv)
            return None if idx is None else kps[idx]
        hand = detect_padded(self._detector(1), image, self.opts.pad_fractions)
        return None if hand is None else hand.keypoints_px.astype(np.float64)

    def __call__(self, sample: EvalSample) -> Prediction:
        return Prediction(uv_px=tuple(self._view(img, uv, sample.tight_crop)
                                      for img, uv in zip(sample.images, sample.uv_px, strict=True)))

    def close(self) -> None:
        for h in self._hands.values():
            h.close()


class TriangulateMethod:
    """Stereo 3D keypoints from the detection stage (see the module docstring)."""

    def __init__(self, opts: MethodOptions):
        from app.detection.stereo import build_detector

        self.detector = build_detector(DetectionConfig(
            static_image_mode=True, max_num_hands=2, model_complexity=opts.model_complexity,
            filter_enabled=False, network_inputs=False))
        self._frame_id = 0

    def __call__(self, sample: EvalSample) -> Prediction:
        from app.types import StereoFrame

        self._frame_id += 1
        frame = StereoFrame(frame_id=self._frame_id, t_capture_ns=0, left=sample.images[0],
                            right=sample.images[1], calibration=sample.calibration)
        stereo = [o for o in self.detector.detect(frame) if not o.is_mono]
        idx = nearest_index([o.left.keypoints_px for o in stereo], sample.uv_px[0])
        if idx is None:
            return Prediction(uv_px=(None, None))
        obs = stereo[idx]
        return Prediction(uv_px=(obs.left.keypoints_px.astype(np.float64),
                                 obs.right.keypoints_px.astype(np.float64)),
                          xyz_cam_m=obs.keypoints_cam_m.astype(np.float64))

    def close(self) -> None:
        self.detector.close()


def fit_method(opts: MethodOptions):
    """``fit``: detection -> model fit (imported here: it loads torch and the hand models)."""
    from models.eval.fit_methods import FitMethod

    return FitMethod(opts, refine=False)


def fit_refine_method(opts: MethodOptions):
    """``fit+refine``: detection -> model fit -> refinement on the segmentation targets."""
    from models.eval.fit_methods import FitMethod

    return FitMethod(opts, refine=True)


def handnet_method(opts: MethodOptions):
    """``handnet``: detection -> HandNet (imported here: it loads torch, the checkpoint and the hand models)."""
    from models.eval.handnet_method import HandNetMethod

    return HandNetMethod(opts, refine=False)


def handnet_refine_method(opts: MethodOptions):
    """``handnet+refine``: detection -> HandNet -> refinement on HandNet's segmentation masks."""
    from models.eval.handnet_method import HandNetMethod

    return HandNetMethod(opts, refine=True)


register_method("mediapipe", MediaPipeMethod, outputs_3d=False, needs_stereo=False)
register_method("triangulate", TriangulateMethod, outputs_3d=True, needs_stereo=True)
register_method("fit", fit_method, outputs_3d=True, needs_stereo=False, outputs_mesh=True)
register_method("fit+refine", fit_refine_method, outputs_3d=True, needs_stereo=False, outputs_mesh=True)
register_method("handnet", handnet_method, outputs_3d=True, needs_stereo=False, outputs_mesh=True)
register_method("handnet+refine", handnet_refine_method, outputs_3d=True, needs_stereo=False, outputs_mesh=True)
