"""The mesh methods of the evaluation: ``fit`` and ``fit+refine`` (registered in models/eval/methods.py).

Per sample:
1. Detection. Stereo samples: the detection stage's MediaPipe graphs on both views (static-image mode, no
   filtering), association, handedness (the stereo keypoints' chirality when clear, else MediaPipe's label) and
   triangulation (``StereoHandDetector``), the stereo observation nearest the ground truth; its left view's own
   MediaPipe hand (MediaPipe's handedness of that view alone) is the mono counterpart.
   Mono samples: MediaPipe on the image (tight crops on black canvases, as the ``mediapipe`` method).
2. Fit: ``HandFitter.fit`` on the stereo observation; a single view goes through the same fit core
   (``fit_keypoints``) with that view's keypoints, projection and MediaPipe world landmarks (app/reconstruction
   fit.py's mono path). The hand model's side is the detection's handedness (``side='detector'``, as live), or
   with ``side='fit'`` both models are fitted and the lower final cost wins (the keypoints' chirality decides,
   not MediaPipe's handedness label; costs are comparable: same data terms, mirrored priors).
3. ``fit+refine`` only: per seeing view, the detection's crop (its affine rescaled to the refiner's render size),
   the fitted mesh's hard silhouette in that crop as seed, the weightless colour segmentation target
   (app/reconstruction/segmentation.py, a fresh colour model per sample: the samples are independent) with the
   forearm side cut off at the seed's wrist end (``cut_at_wrist``, as the live pipeline's app/pipeline/refinement.py)
   -> ``ViewTarget``; then ``Refiner.refine`` with ``refine_preset('scaled', iterations=N)``.
4. Outputs in the first view's camera frame: the mesh's 21 keypoints and vertices, their projection into every
   view, and (only when the sample has ground-truth masks) the hard silhouettes of the fitted and the final mesh
   in the first view's full image, for the projection IoU (pinhole: a distorted first view would need its
   rectified image; the synthetic sets are rectified).
The hand model is the fitter's (HandModelConfig(): real MANO when REALHANDS_MANO_DIR is set, else the open model);
vertex metrics need the dataset's vertices from the same model (the synthetic sets use the open model).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from app.config import HandModelConfig
from app.detection.config import DetectionConfig
from app.detection.keypoints3d import undistort_px
from app.detection.stereo import make_detection
from app.pipeline.refinement import TargetBuilder
from app.reconstruction import refine, segmentation
from app.reconstruction.fit import FitConfig, build_fitter, fit_keypoints
from app.reconstruction.refine import RefineResult, ViewTarget, build_refiner, refine_preset
from app.render import HardRasterConfig, hard_rasterize
from app.types import CameraView, HandDetection, HandMesh, HandObservation, StereoFrame
from models.eval.methods import MethodOptions, detect_padded, nearest_index
from models.eval.samples import EvalSample, Prediction

VIEWS = ("left", "right")


@dataclass(frozen=True)
class SeenView:
    """One view that saw the hand: image (H, W, 3) uint8 RGB; det: its detection (crop box and affine);
    camera: the view's CameraView (K px, distortion, T_cam_left metres from the first camera)."""

    image: np.ndarray
    det: HandDetection
    camera: CameraView

    @property
    def K(self) -> np.ndarray:
        return self.camera.K

    @property
    def T_cam_left(self) -> np.ndarray:
        return self.camera.T_cam_left

    @property
    def P(self) -> np.ndarray:
        """(3, 4) float64 projection from first-camera metres to this view's ideal (undistorted) pixels."""
        return self.camera.P


def mono_camera(sample: EvalSample) -> CameraView:
    """The first view's camera: the rig's left camera, or for a mono sample a pinhole with the sample's K."""
    if sample.calibration is not None:
        return sample.calibration.left
    h, w = sample.images[0].shape[:2]
    return CameraView(K=sample.K, dist=np.zeros(5), T_cam_left=np.eye(4), size_wh=(w, h))


def project(P: np.ndarray, points_m: np.ndarray) -> np.ndarray:
    """P: (3, 4); points_m: (N, 3) metres -> (N, 2) float64 pixels."""
    h = np.asarray(points_m, np.float64) @ P[:, :3].T + P[:, 3]
    return h[:, :2] / h[:, 2:]


def image_silhouette(verts_m: np.ndarray, faces: np.ndarray, K: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Hard silhouette of a mesh in the first view's full image. verts_m: (V, 3) metres, first-camera frame;
    faces: (F, 3) int; K: (3, 3) px; size_hw: (H, W). Returns (H, W) bool."""
    frags = hard_rasterize(torch.from_numpy(np.asarray(verts_m, np.float32))[None],
                           torch.as_tensor(np.asarray(faces), dtype=torch.int64),
                           torch.as_tensor(np.asarray(K), dtype=torch.float32),
                           HardRasterConfig(image_size=(int(size_hw[0]), int(size_hw[1]))))
    return (frags.face_id[0] >= 0).numpy()


class RefineStep:
    """Step 3 of the module docstring: segmentation targets of the seeing views, then the refiner of the mesh's
    side. iterations: SGD steps; crop_size_px: the detection crops' side (their affines map into it)."""

    def __init__(self, iterations: int, hand_models: dict, crop_size_px: int):
        cfg = refine_preset("scaled", iterations=iterations, compile=False)
        self.targets = TargetBuilder(segmentation, refine, cfg.render_size_px, crop_size_px)
        self.refiners = {side == "left": build_refiner(cfg, model) for side, model in hand_models.items()}

    def target(self, mesh: HandMesh, view: SeenView) -> ViewTarget:
        """The ViewTarget of one view: crop camera, mesh seed, colour segmentation of the crop (a fresh colour
        model per sample: evaluation samples are independent)."""
        return self.targets.colour_target(mesh, view.det, view, view.image, self.targets.new_segmenter())

    def __call__(self, mesh: HandMesh, views: list[SeenView]) -> RefineResult:
        targets = [self.target(mesh, v) for v in views]
        return self.refiners[mesh.state.is_left].refine(mesh, targets)


class FitMethod:
    """``fit`` (refine=False) and ``fit+refine`` (module docstring); ``__call__(sample) -> Prediction``."""

    def __init__(self, opts: MethodOptions, refine: bool):
        torch.set_num_threads(1)
        self.opts = opts
        self.det_cfg = DetectionConfig(static_image_mode=True, max_num_hands=2, model_complexity=opts.model_complexity,
                                       filter_enabled=False, network_inputs=False)
        self.fitter = build_fitter(FitConfig(), HandModelConfig())
        self.refine = RefineStep(opts.iterations, self.fitter.hand_models, self.det_cfg.crop_size) if refine else None
        self._stereo = None
        self._single: dict[int, object] = {}

    # -- detection --------------------------------------------------------------------------------------

    def _stereo_detector(self):
        from app.detection.stereo import build_detector

        if self._stereo is None:
            self._stereo = build_detector(self.det_cfg)
        return self._stereo

    def _single_view(self, max_hands: int):
        from app.detection.mediapipe_hands import MediaPipeHands

        if max_hands not in self._single:
            self._single[max_hands] = MediaPipeHands(DetectionConfig(
                static_image_mode=True, max_num_hands=max_hands, model_complexity=self.opts.model_complexity))
        return self._single[max_hands]

    def _detection(self, raw) -> HandDetection:
        return make_detection(raw.keypoints_px, raw.score, raw.handedness, self.det_cfg, raw.world_landmarks_m)

    def _mono_raw(self, sample: EvalSample):
        """MediaPipe's hand in a mono sample's image nearest the ground truth, or None."""
        image = sample.images[0]
        if sample.tight_crop:
            return detect_padded(self._single_view(1), image, self.opts.pad_fractions)
        hands = self._single_view(2).process(image)
        idx = nearest_index([h.keypoints_px for h in hands], sample.uv_px[0])
        return None if idx is None else hands[idx]

    def _stereo_detect(self, sample: EvalSample):
        """(stereo HandObservation or None, the left view's own raw hand or None) nearest the ground truth."""
        det = self._stereo_detector()
        frame = StereoFrame(frame_id=0, t_capture_ns=0, left=sample.images[0], right=sample.images[1],
                            calibration=sample.calibration)
        raw = det.detect_views(frame.left, frame.right)
        pairs = [p for p in det.pair_views(raw, frame.calibration) if p[0] is not None and p[1] is not None]
        i = nearest_index([p[0].keypoints_px for p in pairs], sample.uv_px[0])
        obs = None if i is None else det.observe(frame, pairs[i], det.label(*pairs[i], frame.calibration), "eval", 0.0)
        j = nearest_index([h.keypoints_px for h in raw[0]], sample.uv_px[0])
        return obs, None if j is None else raw[0][j]

    # -- fit, refine, outputs ---------------------------------------------------------------------------

    def _sides(self, detected_is_left: bool) -> tuple[bool, ...]:
        """The hand sides (is_left) to fit: the detection's, or both with side='fit'."""
        return (False, True) if self.opts.side == "fit" else (detected_is_left,)

    def _fit_stereo(self, obs: HandObservation, calib) -> HandMesh:
        """HandFitter.fit on the observation (per side tried; the lowest final cost wins)."""
        fits = []
        for is_left in self._sides(obs.is_left):
            mesh = self.fitter.fit(dataclasses.replace(obs, is_left=is_left), calib)
            fits.append((self.fitter.last_info.cost, mesh))
        return min(fits, key=lambda f: f[0])[1]

    def _fit_mono(self, view: SeenView) -> HandMesh:
        """The fit core on one view (its keypoints, projection and world landmarks; no 3D keypoints), per side
        tried; the lowest final cost wins."""
        world = view.det.world_landmarks_m
        if world is not None:  # world landmarks use the seeing camera's axes; the fit wants the first camera's
            world = world.astype(np.float64) @ view.T_cam_left[:3, :3]
        fits = []
        for is_left in self._sides(view.det.handedness == "left"):
            state, info = fit_keypoints(self.fitter.fit_models["left" if is_left else "right"], None,
                                        [undistort_px(view.camera, view.det.keypoints_px)], [view.P],
                                        cfg=self.fitter.cfg, world_landmarks_m=world)
            fits.append((info.cost, state, info))
        _, state, info = min(fits, key=lambda f: f[0])
        return self.fitter.mesh(state, 0, 0, info.mean_px)

    def _predict(self, sample: EvalSample, mesh: HandMesh, views: list[SeenView], world) -> Prediction:
        """Refine (fit+refine) and turn the meshes into a Prediction for ``sample``'s views."""
        final, diverged = mesh, False
        if self.refine is not None:
            result = self.refine(mesh, views)
            final, diverged = result.mesh, result.diverged
        return mesh_prediction(sample, mesh, final, diverged, views[0].K, [v.P for v in views], world)

    def _mono_prediction(self, sample: EvalSample, raw) -> Prediction:
        """The method on a mono sample (or a stereo sample's first view): raw is its MediaPipe hand or None."""
        if raw is None:
            return Prediction(uv_px=(None,))
        view = SeenView(sample.images[0], self._detection(raw), mono_camera(sample))
        return self._predict(sample.first_view(), self._fit_mono(view), [view], raw.world_landmarks_m)

    def _stereo_prediction(self, sample: EvalSample, obs: HandObservation | None) -> Prediction:
        if obs is None:
            return Prediction(uv_px=(None, None))
        calib = sample.calibration
        views = [SeenView(img, getattr(obs, name), getattr(calib, name))
                 for name, img in zip(VIEWS, sample.images, strict=True)]
        return self._predict(sample, self._fit_stereo(obs, calib), views, obs.left.world_landmarks_m)

    def __call__(self, sample: EvalSample) -> Prediction:
        if not sample.is_stereo:
            return self._mono_prediction(sample, self._mono_raw(sample))
        obs, left_raw = self._stereo_detect(sample)
        pred = self._stereo_prediction(sample, obs)
        mono = self._mono_prediction(sample, left_raw)
        return dataclasses.replace(pred, mono=mono)

    def close(self) -> None:
        if self._stereo is not None:
            self._stereo.close()
        for hands in self._single.values():
            hands.close()


def mesh_prediction(sample: EvalSample, mesh: HandMesh, final: HandMesh, diverged: bool, K0: np.ndarray,
                    P_views: list, world) -> Prediction:
    """The Prediction of a mesh method: the final mesh's joints projected through every view's (3, 4) P, its
    vertices, and (when the sample has masks) the hard silhouettes of the initial and final mesh through the
    first view's K0 (3, 3); ``world``: MediaPipe's (21, 3) world landmarks or None."""
    sil_init = sil = None
    if sample.masks:
        size_hw = sample.images[0].shape[:2]
        sil_init = image_silhouette(mesh.verts_m, mesh.faces, K0, size_hw)
        sil = sil_init if final is mesh else image_silhouette(final.verts_m, final.faces, K0, size_hw)
    joints = final.joints_m.astype(np.float64)
    return Prediction(uv_px=tuple(project(P, joints) for P in P_views), xyz_cam_m=joints,
                      verts_cam_m=final.verts_m.astype(np.float64), silhouette_init=sil_init, silhouette=sil,
                      refine_diverged=diverged, mediapipe_world_m=None if world is None else world.astype(np.float64))
