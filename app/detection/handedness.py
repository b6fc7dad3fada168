"""Handedness labels: MediaPipe's convention converted once to the person's real hand.

MediaPipe Hands labels handedness as if the image were mirrored (a selfie preview). For a raw, non-mirrored
camera such as a ZED, its "Left" is the person's right hand, so the label must be swapped; for an already
mirrored input it is used as is. Every MediaPipe label goes through ``correct_handedness``.
"""

from __future__ import annotations

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
