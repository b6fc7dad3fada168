"""The detection stage for one stereo frame: MediaPipe on both views (in parallel), association, filtering,
triangulation, crops and heatmaps -> ``HandObservation`` per physical hand.

Thread use stays here: a two-worker pool runs the two views' MediaPipe graphs at once (MediaPipe releases the
GIL inside its graph). Everything else is called from the pure modules of this package.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from app.detection.association import AssociationParams, associate
from app.detection.config import DetectionConfig
from app.detection.crop import apply_affine, crop_affine, cut_crop, keypoint_box, normalise_crop
from app.detection.filtering import KeypointFilters, OneEuroParams
from app.detection.handedness import chirality, decide_handedness
from app.detection.heatmaps import render_heatmaps
from app.detection.keypoints3d import triangulate_pair, undistort_px
from app.detection.mediapipe_hands import MediaPipeHands, RawHand
from app.detection.mirror import mirror_detection_to_right
from app.detection.palm_search import SearchingHands
from app.types import HandDetection, HandObservation, StereoCalibration, StereoFrame

VIEWS = ("left", "right")


def make_detection(keypoints_px: np.ndarray, score: float, handedness: str,
                   cfg: DetectionConfig, world_landmarks_m: np.ndarray | None = None) -> HandDetection:
    """HandDetection with its crop box and affine; a left hand's affine mirrors it to a right hand (the
    keypoints and world landmarks are never mirrored)."""
    kps = np.asarray(keypoints_px, dtype=np.float32)
    box = keypoint_box(kps, cfg.crop_scale)
    det = HandDetection(keypoints_px=kps, score=float(score), handedness=handedness, crop_box_xywh=box,
                        crop_from_image=crop_affine(box, cfg.crop_size), world_landmarks_m=world_landmarks_m)
    return mirror_detection_to_right(det, cfg.crop_size)


def crop_and_heatmap(image: np.ndarray, det: HandDetection, cfg: DetectionConfig):
    """Network inputs of one view: ((S, S, 3) float32 in [-1, 1], (21, S, S) float32 in [-1, 1])."""
    crop = normalise_crop(cut_crop(image, det.crop_from_image, cfg.crop_size))
    kps_crop = apply_affine(det.crop_from_image, det.keypoints_px)
    return crop, render_heatmaps(kps_crop, cfg.crop_size, cfg.heatmap_sigma, cfg.heatmap_kernel)


def hand_label(a: RawHand | None, b: RawHand | None) -> str:
    """One handedness for a (possibly mono) pair: the more confident view's label."""
    hands = [h for h in (a, b) if h is not None]
    return max(hands, key=lambda h: h.score).handedness


def track_keys(labels: list[str]) -> list[str]:
    """Unique filter-track keys per hand: its label, suffixed when two hands share a label."""
    seen: dict[str, int] = {}
    keys = []
    for label in labels:
        keys.append(label if label not in seen else f"{label}#{seen[label]}")
        seen[label] = seen.get(label, 0) + 1
    return keys


class StereoHandDetector:
    """``detect(frame) -> tuple[HandObservation, ...]``; owns one MediaPipe graph per view and the filters."""

    def __init__(self, cfg: DetectionConfig, views: tuple):
        self.cfg = cfg
        self.views = views
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mp-view") if cfg.parallel_views \
            else None
        self.filters = KeypointFilters(
            OneEuroParams(cfg.filter_min_cutoff_hz, cfg.filter_beta, cfg.filter_d_cutoff_hz),
            reset_after_s=cfg.filter_reset_after_s)
        self.assoc = AssociationParams(cfg.assoc_max_residual_px, cfg.assoc_handedness_penalty_px,
                                       cfg.palm_length_min_m, cfg.palm_length_max_m)

    def detect_views(self, left: np.ndarray, right: np.ndarray) -> tuple[tuple[RawHand, ...], ...]:
        """MediaPipe on both (H, W, 3) uint8 RGB views, on two threads when ``parallel_views``."""
        if self.pool is None:
            return self.views[0].process(left), self.views[1].process(right)
        futures = [self.pool.submit(view.process, image) for view, image in ((self.views[0], left),
                                                                             (self.views[1], right))]
        return tuple(f.result() for f in futures)

    def pair_views(self, raw: tuple, calib: StereoCalibration) -> list[tuple[RawHand | None, RawHand | None]]:
        """Associate the hands of the two views (undistorted keypoints, any rig)."""
        cams = (calib.left, calib.right)
        per_view = [[(undistort_px(cam, h.keypoints_px), h.handedness) for h in hands]
                    for cam, hands in zip(cams, raw, strict=True)]
        pairs = associate(per_view[0], per_view[1], calib.left.P, calib.right.P, self.assoc)
        return [(None if i is None else raw[0][i], None if j is None else raw[1][j]) for i, j in pairs]

    def detect(self, frame: StereoFrame) -> tuple[HandObservation, ...]:
        """All hands of one stereo frame, one observation per physical hand (mono when seen once)."""
        raw = self.detect_views(frame.left, frame.right)
        pairs = self.pair_views(raw, frame.calibration)
        labels = [self.label(a, b, frame.calibration) for a, b in pairs]
        t_s = frame.t_capture_ns * 1e-9
        return tuple(self.observe(frame, pair, label, key, t_s)
                     for pair, label, key in zip(pairs, labels, track_keys(labels), strict=True))

    def label(self, a: RawHand | None, b: RawHand | None, calib: StereoCalibration) -> str:
        """The person's hand for a pair: the chirality of its raw triangulated keypoints when clear, else the
        more confident view's MediaPipe label (app/detection/handedness.py)."""
        mediapipe_label = hand_label(a, b)
        if a is None or b is None:
            return mediapipe_label
        tri = triangulate_pair(undistort_px(calib.left, a.keypoints_px), undistort_px(calib.right, b.keypoints_px),
                               calib.left.P, calib.right.P, self.cfg.outlier_min_px, self.cfg.outlier_factor)
        return decide_handedness(mediapipe_label, chirality(tri.points_m), self.cfg.min_chirality)

    def _smooth(self, hand: RawHand | None, key: tuple, t_s: float) -> np.ndarray | None:
        if hand is None:
            return None
        if not self.cfg.filter_enabled:
            return hand.keypoints_px
        # A jump of half the hand's size is another hand (labels swapped), not motion: restart the track.
        box = keypoint_box(hand.keypoints_px, 1.0)
        return self.filters(key, hand.keypoints_px, t_s, max_jump=0.5 * float(box[2])).astype(np.float32)

    def observe(self, frame: StereoFrame, pair: tuple, label: str, key: str, t_s: float) -> HandObservation:
        """Filter, crop, heatmap and (for a pair) triangulate one hand."""
        images = (frame.left, frame.right)
        dets, crops, heatmaps = [], [], []
        for view, hand, image in zip(VIEWS, pair, images, strict=True):
            kps = self._smooth(hand, (key, view), t_s)
            det = None if kps is None else make_detection(kps, hand.score, label, self.cfg, hand.world_landmarks_m)
            dets.append(det)
            if det is not None and self.cfg.network_inputs:
                crop, heat = crop_and_heatmap(image, det, self.cfg)
                crops.append(crop)
                heatmaps.append(heat)
        points, residual = self._triangulate(dets, frame.calibration)
        return HandObservation(frame_id=frame.frame_id, t_capture_ns=frame.t_capture_ns, left=dets[0],
                               right=dets[1], keypoints_cam_m=points, residual_px=residual,
                               is_left=label == "left", crops=tuple(crops), heatmaps=tuple(heatmaps))

    def _triangulate(self, dets: list, calib: StereoCalibration):
        if dets[0] is None or dets[1] is None:
            return None, None
        tri = triangulate_pair(undistort_px(calib.left, dets[0].keypoints_px),
                               undistort_px(calib.right, dets[1].keypoints_px), calib.left.P, calib.right.P,
                               self.cfg.outlier_min_px, self.cfg.outlier_factor)
        return tri.points_m, tri.residual_px

    def close(self) -> None:
        for v in self.views:
            v.close()
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build_detector(cfg: DetectionConfig | None = None) -> StereoHandDetector:
    """The detection stage for ``cfg`` (defaults: video mode, two hands, complexity 1, parallel views)."""
    cfg = cfg or DetectionConfig()
    return StereoHandDetector(cfg, (view_hands(cfg), view_hands(cfg)))


def view_hands(cfg: DetectionConfig):
    """One view's MediaPipe: a SearchingHands (palm search every few frames) in video mode with two or more
    hands allowed and palm_search_every > 0, else one graph."""
    if cfg.static_image_mode or cfg.max_num_hands < 2 or cfg.palm_search_every == 0:
        return MediaPipeHands(cfg)

    def make(max_num_hands: int, static: bool) -> MediaPipeHands:
        return MediaPipeHands(dataclasses.replace(cfg, max_num_hands=max_num_hands, static_image_mode=static))

    return SearchingHands(make, cfg.max_num_hands, cfg.palm_search_every, cfg.palm_search_hold)

