"""The HandNet methods of the evaluation: ``handnet`` and ``handnet+refine`` (registered in models/eval/methods.py).

Per sample:
1. Detection as ``fit`` (models/eval/fit_methods.py: MediaPipe on the views, association, handedness), with the
   network inputs on: each seeing view's crop and 21 heatmaps at the checkpoint's crop size and heatmap sigma /
   kernel (from its training record). Stereo samples: the
   stereo pair nearest the ground truth when there is one (both views detected); otherwise the single-view
   detection nearest the ground truth in either view (mono HandNet on that view). Mono samples: MediaPipe on the
   image (tight crops on black canvases, as ``mediapipe``).
2. Initialiser: the HandNet runner (models/handnet/runner.py) on that observation: stereo fusion when both views
   saw the hand, the single view's prediction otherwise, as a ``HandState`` in the first camera frame, posed with
   the fitter's hand model (the same model family the checkpoint was trained with; a mismatch is an error).
   HandNet uses the detection's handedness (there is no fit cost to pick a side by: ``--side`` is ignored).
3. ``handnet+refine`` only: per seeing view the network's own segmentation (the U-Net mask, sigmoid
   probabilities over the crop) resized to the refiner's render size is the target, in place of the weightless
   colour segmentation of ``fit+refine``; then the same ``Refiner.refine`` with ``refine_preset('scaled')``.
4. Outputs as ``fit``: keypoints and vertices in the first camera frame, their projection into every view of
   the sample, and the hard silhouettes of the initial and final mesh in the first view (projection IoU).
   ``mono``: the same method on the left view's own MediaPipe hand alone.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from app.detection.stereo import crop_and_heatmap
from app.types import CameraView, HandMesh, HandObservation, StereoCalibration, StereoFrame
from models.eval.fit_methods import (
    VIEWS,
    FitMethod,
    RefineStep,
    SeenView,
    mesh_prediction,
    mono_camera,
)
from models.eval.methods import MethodOptions, nearest_index
from models.eval.samples import EvalSample, Prediction


class HandNetEvalError(ValueError):
    """The HandNet method cannot run as configured (no checkpoint, or one for another hand model)."""


def mono_calibration(camera: CameraView) -> StereoCalibration:
    """A StereoCalibration whose left view is ``camera`` (the runner reads only the left view of a mono
    observation; the right view is a placeholder copy)."""
    return StereoCalibration(left=camera, right=camera, rectified=False, name="mono")


class MaskRefineStep(RefineStep):
    """``fit+refine``'s refinement with HandNet's segmentation as each view's target. masks: per seeing view
    (S, S) float32 probabilities in that view's (possibly mirrored) detection crop."""

    def refine_with_masks(self, mesh: HandMesh, views: list[SeenView], masks: list[np.ndarray]):
        """Refine ``mesh`` towards the views' HandNet masks (one per view, same order) -> RefineResult."""
        targets = [self.targets.mask_target(m, v.det, v) for m, v in zip(masks, views, strict=True)]
        return self.refiners[mesh.state.is_left].refine(mesh, targets)


class HandNetMethod(FitMethod):
    """``handnet`` (refine=False) and ``handnet+refine`` (module docstring); ``__call__(sample) -> Prediction``."""

    def __init__(self, opts: MethodOptions, refine: bool):
        from models.handnet.checkpoint import load_checkpoint
        from models.handnet.runner import build_handnet_runner

        if not opts.checkpoint:
            raise HandNetEvalError("--method handnet / handnet+refine needs --checkpoint PATH (a .pt written by "
                                   "`python -m models.train`)")
        super().__init__(opts, refine=False)
        ckpt = load_checkpoint(opts.checkpoint)  # the hand model is checked before the runner builds it
        self._check_hand_model(ckpt.hand_model)
        self.runner = build_handnet_runner(opts.checkpoint, "cpu")
        self.det_cfg = dataclasses.replace(self.det_cfg, network_inputs=True, **ckpt.network_inputs())
        self.refine = MaskRefineStep(opts.iterations, self.fitter.hand_models, self.runner.crop_size) \
            if refine else None

    def _check_hand_model(self, info: dict) -> None:
        """Refuse a checkpoint whose pose labels belong to another hand model than the evaluation's."""
        trained = info.get("name", "open")
        used = self.fitter.hand_models["right"].name
        if trained != used:
            raise HandNetEvalError(f"checkpoint {self.opts.checkpoint} was trained with the {trained!r} hand model, "
                                   f"this evaluation uses {used!r} (REALHANDS_MANO_DIR); use the same hand model")

    # -- detection --------------------------------------------------------------------------------------

    def _pick_pair(self, sample: EvalSample, pairs: list) -> tuple | None:
        """The stereo pair nearest the ground truth, else the single-view hand nearest it in its view."""
        stereo = [p for p in pairs if p[0] is not None and p[1] is not None]
        i = nearest_index([p[0].keypoints_px for p in stereo], sample.uv_px[0])
        if i is not None:
            return stereo[i]
        single = [p for p in pairs if (p[0] is None) != (p[1] is None)]
        best, best_d = None, np.inf
        for p in single:
            v = 0 if p[0] is not None else 1
            d = float(np.linalg.norm(np.nanmean(p[v].keypoints_px, 0) - sample.uv_px[v].mean(0)))
            if d < best_d:
                best, best_d = p, d
        return best

    def _observe_stereo(self, sample: EvalSample):
        """(HandObservation with network inputs or None, the left view's own raw hand or None)."""
        det = self._stereo_detector()
        frame = StereoFrame(frame_id=0, t_capture_ns=0, left=sample.images[0], right=sample.images[1],
                            calibration=sample.calibration)
        raw = det.detect_views(frame.left, frame.right)
        pair = self._pick_pair(sample, det.pair_views(raw, frame.calibration))
        obs = None if pair is None else det.observe(frame, pair, det.label(*pair, frame.calibration), "eval", 0.0)
        j = nearest_index([h.keypoints_px for h in raw[0]], sample.uv_px[0])
        return obs, None if j is None else raw[0][j]

    def _observe_single(self, image: np.ndarray, raw) -> HandObservation:
        """A mono observation (the left slot) of one image's MediaPipe hand, with its network inputs."""
        det = self._detection(raw)
        crop, heat = crop_and_heatmap(image, det, self.det_cfg)
        return HandObservation(frame_id=0, t_capture_ns=0, left=det, right=None, keypoints_cam_m=None,
                               residual_px=None, is_left=raw.handedness == "left", crops=(crop,), heatmaps=(heat,))

    # -- network, refinement, outputs -------------------------------------------------------------------

    def _initial(self, obs: HandObservation, calib: StereoCalibration) -> tuple[HandMesh, list]:
        """(the runner's hand as a HandMesh in the first camera frame, per seeing view its mask (S, S))."""
        pred = self.runner.predict(obs, calib, segment=self.refine is not None)
        if pred.state is None:
            raise HandNetEvalError("HandNet runner returned no hand state although the calibration was given")
        return self.fitter.mesh(pred.state, obs.frame_id, obs.t_capture_ns), [v.mask for v in pred.views]

    def _outputs(self, sample: EvalSample, cameras: list[CameraView], mesh: HandMesh, views: list[SeenView],
                 masks: list, world) -> Prediction:
        """Refine (handnet+refine), then the Prediction over every camera of ``sample``."""
        final, diverged = mesh, False
        if self.refine is not None:
            result = self.refine.refine_with_masks(mesh, views, masks)
            final, diverged = result.mesh, result.diverged
        return mesh_prediction(sample, mesh, final, diverged, cameras[0].K, [c.P for c in cameras], world)

    def _single_prediction(self, sample: EvalSample, raw) -> Prediction:
        """HandNet on a mono sample (or a stereo sample's first view alone): raw is the first view's MediaPipe hand
        or None; the outputs belong to ``sample.first_view()`` (the first camera of the rig for a stereo sample)."""
        if raw is None:
            return Prediction(uv_px=(None,))
        camera = mono_camera(sample)
        obs = self._observe_single(sample.images[0], raw)
        mesh, masks = self._initial(obs, mono_calibration(camera))
        view = SeenView(sample.images[0], obs.left, camera)
        return self._outputs(sample.first_view(), [camera], mesh, [view], masks, raw.world_landmarks_m)

    def _pair_prediction(self, sample: EvalSample, obs: HandObservation | None) -> Prediction:
        """HandNet on a stereo sample's observation: fused when both views saw the hand, else one view's."""
        if obs is None:
            return Prediction(uv_px=(None, None))
        calib = sample.calibration
        views = [SeenView(img, getattr(obs, name), getattr(calib, name))
                 for name, img in zip(VIEWS, sample.images, strict=True) if getattr(obs, name) is not None]
        mesh, masks = self._initial(obs, calib)
        world = next((v.det.world_landmarks_m for v in views), None)
        return self._outputs(sample, [calib.left, calib.right], mesh, views, masks, world)

    def __call__(self, sample: EvalSample) -> Prediction:
        if not sample.is_stereo:
            return self._single_prediction(sample, self._mono_raw(sample))
        obs, left_raw = self._observe_stereo(sample)
        pred = self._pair_prediction(sample, obs)
        return dataclasses.replace(pred, mono=self._single_prediction(sample, left_raw))
