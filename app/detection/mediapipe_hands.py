"""MediaPipe Hands (legacy ``mp.solutions.hands``, mediapipe 0.10.21) on one view.

One ``MediaPipeHands`` per camera stream: in video mode (``static_image_mode=False``) MediaPipe keeps the
hands' landmark ROIs from the previous frame and reruns palm detection only when a hand is lost, which is the
ROI reuse between frames (so never share one instance between the two views).

Coordinates: MediaPipe's normalised landmarks put 0 and 1 on the image edges; the project puts pixel centres
on integers, so ``u_px = x_norm W - 0.5``. Handedness goes through ``correct_handedness`` exactly once, here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.detection.config import DetectionConfig
from app.detection.handedness import correct_handedness
from app.types import N_KEYPOINTS, check_array


@dataclass(frozen=True)
class RawHand:
    """One hand from MediaPipe in one view. keypoints_px: (21, 2) float32 full-image pixels (distorted, as
    seen); score: handedness confidence in [0.5, 1]; handedness: the person's hand, 'left' / 'right';
    world_landmarks_m: (21, 3) float32 metres, origin near the hand's centre, camera axes, or None."""

    keypoints_px: np.ndarray
    score: float
    handedness: str
    world_landmarks_m: np.ndarray | None = None

    def __post_init__(self):
        check_array("RawHand.keypoints_px", self.keypoints_px, (N_KEYPOINTS, 2), np.float32)
        if self.world_landmarks_m is not None:
            check_array("RawHand.world_landmarks_m", self.world_landmarks_m, (N_KEYPOINTS, 3), np.float32)


def landmarks_to_px(landmarks, width: int, height: int) -> np.ndarray:
    """MediaPipe NormalizedLandmarkList -> (21, 2) float32 pixels (centres at integers)."""
    xy = np.array([(lm.x, lm.y) for lm in landmarks.landmark], dtype=np.float64)
    return (xy * (width, height) - 0.5).astype(np.float32)


def world_landmarks_m(landmarks) -> np.ndarray:
    """MediaPipe LandmarkList of world landmarks -> (21, 3) float32 metres (hand-centred, camera axes)."""
    return np.array([(lm.x, lm.y, lm.z) for lm in landmarks.landmark], dtype=np.float32)


class MediaPipeHands:
    """Wrapper of ``mp.solutions.hands.Hands`` for one view; ``process`` returns RawHand tuples."""

    def __init__(self, cfg: DetectionConfig):
        import mediapipe as mp  # imported here so the pure modules and their tests never load it

        self.cfg = cfg
        self._hands = mp.solutions.hands.Hands(
            static_image_mode=cfg.static_image_mode, max_num_hands=cfg.max_num_hands,
            model_complexity=cfg.model_complexity, min_detection_confidence=cfg.min_detection_confidence,
            min_tracking_confidence=cfg.min_tracking_confidence)

    def process(self, image_rgb: np.ndarray) -> tuple[RawHand, ...]:
        """image_rgb: (H, W, 3) uint8 RGB. Returns the detected hands (possibly none)."""
        if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
            raise ValueError(f"MediaPipeHands.process: expected (H, W, 3) uint8 RGB, got "
                             f"{image_rgb.shape} {image_rgb.dtype}; convert BGR/float frames first")
        h, w = image_rgb.shape[:2]
        result = self._hands.process(np.ascontiguousarray(image_rgb))
        if not result.multi_hand_landmarks:
            return ()
        worlds = result.multi_hand_world_landmarks or [None] * len(result.multi_hand_landmarks)
        return tuple(self._to_raw(lms, cls, world, w, h) for lms, cls, world in
                     zip(result.multi_hand_landmarks, result.multi_handedness, worlds, strict=True))

    def _to_raw(self, landmarks, classification, world, width: int, height: int) -> RawHand:
        top = classification.classification[0]
        return RawHand(keypoints_px=landmarks_to_px(landmarks, width, height), score=float(top.score),
                       handedness=correct_handedness(top.label, self.cfg.input_mirrored),
                       world_landmarks_m=None if world is None else world_landmarks_m(world))

    def reset(self) -> None:
        """Forget the tracked hands: the next frame runs the palm detector afresh."""
        self._hands.reset()

    def close(self) -> None:
        self._hands.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
