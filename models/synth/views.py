"""Viewpoints for synthetic hands: the hand's orientation and position in the OpenCV camera frame.

Three kinds (the model frame has x along the fingers, y out of the back of the hand, z towards the little
finger, for the right hand):
- ``back``: the back of the hand faces the camera, fingers up in the image;
- ``palm``: the palm faces the camera, fingers up;
- ``ego``: egocentric, as from a head-mounted camera: looking down over the back of the hand, fingers pointing
  away from the viewer.
Each gets random roll, tilt and yaw so that the space between kinds is covered too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

VIEW_KINDS = ("back", "palm", "ego")

# Columns = model x, y, z axes expressed in the camera frame.
_BASE = {
    "back": np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
    "palm": np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
}


def _ego_base() -> np.ndarray:
    # Start from the back view and pitch the fingers away from the camera by ~50 degrees (looking down at one's
    # own hand held in front of the body).
    return Rotation.from_euler("x", -50, degrees=True).as_matrix() @ _BASE["back"]


@dataclass(frozen=True)
class HandView:
    """R_cam_model: (3, 3) rotation of the hand model into the OpenCV camera frame; kind: one of VIEW_KINDS;
    distance_m: depth of the hand's centre."""

    R_cam_model: np.ndarray
    kind: str
    distance_m: float


def sample_view(rng: np.random.Generator, kind: str | None = None, distance_m: tuple = (0.25, 0.7),
                kind_probs: tuple = (0.45, 0.25, 0.30)) -> HandView:
    """A random view; the back of the hand is shown more often than the palm (as in the paper's data)."""
    if kind is None:
        kind = str(rng.choice(VIEW_KINDS, p=np.asarray(kind_probs)))
    base = _ego_base() if kind == "ego" else _BASE[kind]
    # Tilt and yaw stay within ~+-30 degrees so that edge-on hands (palm plane along the viewing ray) remain a
    # minority: they are real but rare, and their keypoints are mostly guesses for any detector.
    roll = rng.uniform(-50, 50) if kind != "ego" else rng.uniform(-35, 35)
    tilt = rng.uniform(-25, 25) if kind != "ego" else rng.uniform(-20, 20)
    jitter = Rotation.from_euler("zxy", [roll, tilt, rng.uniform(-30, 30)], degrees=True)
    return HandView(jitter.as_matrix() @ base, kind, float(rng.uniform(*distance_m)))


def mirror_view_for_left(R_cam_model: np.ndarray) -> np.ndarray:
    """A left hand (the right mirrored in model x) shown the way the right one would be: mirror the camera
    image too, i.e. conjugate with x flips on both sides."""
    m = np.diag([-1.0, 1.0, 1.0])
    return m @ R_cam_model @ m
