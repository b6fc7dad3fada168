"""Handedness labels: MediaPipe's convention converted once to the person's real hand.

MediaPipe Hands labels handedness as if the image were mirrored (a selfie preview). For a raw, non-mirrored
camera such as a ZED, its "Left" is the person's right hand, so the label must be swapped; for an already
mirrored input it is used as is. Every MediaPipe label goes through ``correct_handedness``.
"""

from __future__ import annotations

import numpy as np

_SWAP = {"left": "right", "right": "left"}


def correct_handedness(mediapipe_label: str, input_mirrored: bool) -> str:
    """MediaPipe label ('Left' / 'Right', any case) -> the person's hand, 'left' or 'right'.

    input_mirrored: True when the frame given to MediaPipe was horizontally mirrored (selfie view), False for
    a raw camera image (the project's default).
    """
    label = mediapipe_label.strip().lower()
    if label not in _SWAP:
        raise ValueError(f"handedness label: expected 'Left' or 'Right' from MediaPipe, "
                         f"got {mediapipe_label!r}")
    return label if input_mirrored else _SWAP[label]


# Keypoints that leave the palm plane towards the palm side as fingers flex or the thumb opposes (MediaPipe
# order): thumb MCP..tip, and each finger's PIP, DIP and tip.
_OFF_PLANE = [2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16, 18, 19, 20]


def chirality(keypoints_m: np.ndarray) -> float:
    """Signed mean distance of the finger keypoints from the palm plane, over the palm length (wrist to middle
    MCP): positive on the side n = (index MCP - wrist) x (pinky MCP - wrist) points to. For a right hand n leaves
    the palm, where flexing fingers and the opposed thumb go, so the value is positive; a left hand (a mirror
    image) gives a negative value. keypoints_m: (21, 3) in any right-handed frame (NaN rows ignored); NaN when
    undefined. Scale-free, so stereo depth noise must be large against the hand's own size to flip it."""
    k = np.asarray(keypoints_m, np.float64)
    n = np.cross(k[5] - k[0], k[17] - k[0])
    norm, palm = np.linalg.norm(n), np.linalg.norm(k[9] - k[0])
    if not np.isfinite(norm * palm) or norm < 1e-12 or palm < 1e-6:
        return float("nan")
    return float(np.nanmean((k[_OFF_PLANE] - k[0]) @ (n / norm)) / palm)


def decide_handedness(mediapipe_hand: str, chirality_value: float, min_chirality: float) -> str:
    """The person's hand: the 3D chirality when it is clear (|value| >= min_chirality), else MediaPipe's
    (corrected) label. Why: MediaPipe's label comes from appearance alone and confuses a right palm with a left
    back; stereo keypoints carry the hand's mirror symmetry directly. MediaPipe's keypoints are not consistent
    between views to a few pixels (its ROI snaps), which fakes depth of several centimetres at arm's length, so
    only a clear chirality overrides it."""
    if np.isfinite(chirality_value) and abs(chirality_value) >= min_chirality:
        return "right" if chirality_value > 0 else "left"
    return mediapipe_hand
