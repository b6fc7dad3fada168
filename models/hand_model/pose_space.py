"""Plausible articulations of the open hand: per-joint anatomical frames, joint limits, a synergy sampler and
the PCA pose components stored as MANO's ``hands_components`` / ``hands_mean``.

Angles are (flexion, abduction, twist) about each joint's own axes, given in the model frame (the rest pose
has identity rotations, so MANO's per-joint axis-angle is expressed in these model-frame axes). Flexion > 0
curls towards the palm. Limits are active ranges of adult hands (degrees), rounded from clinical tables.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from models.hand_model.anatomy import FINGER_FIRST_JOINT, FINGERS, TIP_NAMES, finger_points_mm

N_HAND_JOINTS = 15
# (flexion, abduction, twist) limits in degrees, per joint of a finger: MCP, PIP, DIP.
FINGER_LIMITS_DEG = (((-25, 90), (-20, 20), (-8, 8)), ((-5, 105), (-3, 3), (-4, 4)), ((-5, 80), (-2, 2), (-3, 3)))
THUMB_LIMITS_DEG = (((-20, 55), (-30, 35), (-35, 20)), ((-10, 60), (-6, 6), (-6, 6)), ((-15, 80), (-3, 3), (-3, 3)))
PALM_NORMAL = np.array([0.0, -1.0, 0.0])


def finger_frame(name: str, segment: int) -> np.ndarray:
    """(3, 3) rows = flexion, abduction, twist axes (unit, model frame) of a finger's joint ``segment``."""
    pts = finger_points_mm(FINGERS[name])
    twist = (pts[segment + 1] - pts[segment]) / np.linalg.norm(pts[segment + 1] - pts[segment])
    towards_pad = PALM_NORMAL if name != "thumb" else np.array([0.45, -0.35, 0.82])
    flex = np.cross(twist, towards_pad)
    flex /= np.linalg.norm(flex)
    abd = np.cross(flex, twist)
    return np.stack([flex, abd, twist])


def joint_frames() -> np.ndarray:
    """(15, 3, 3): per hand joint (MANO order 1..15) its (flexion, abduction, twist) axes."""
    frames = np.zeros((N_HAND_JOINTS, 3, 3))
    for name in TIP_NAMES:
        for seg in range(3):
            frames[FINGER_FIRST_JOINT[name] - 1 + seg] = finger_frame(name, seg)
    return frames


def joint_limits_rad() -> np.ndarray:
    """(15, 3, 2) float64 radians: (min, max) of (flexion, abduction, twist) per hand joint."""
    lim = np.zeros((N_HAND_JOINTS, 3, 2))
    for name in TIP_NAMES:
        table = THUMB_LIMITS_DEG if name == "thumb" else FINGER_LIMITS_DEG
        for seg in range(3):
            lim[FINGER_FIRST_JOINT[name] - 1 + seg] = np.deg2rad(np.asarray(table[seg], float))
    return lim


def angles_to_axis_angle(angles: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """angles (N, 15, 3) radians (flex, abd, twist) -> (N, 45) axis-angle. Composition order: twist, then
    abduction, then flexion (flexion outermost), each about its rest-pose model-frame axis."""
    n = len(angles)
    out = np.zeros((n, N_HAND_JOINTS, 3))
    for j in range(N_HAND_JOINTS):
        r = Rotation.identity(n)
        for k in (2, 1, 0):
            r = Rotation.from_rotvec(angles[:, j, k:k + 1] * frames[j, k]) * r
        out[:, j] = r.as_rotvec()
    return out.reshape(n, -1)


def sample_angles(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 15, 3) radians from a synergy model: a shared grasp level plus per-finger curl, coupled joints
    (DIP ~ 2/3 PIP), spread that shrinks as fingers curl, and thumb opposition; clipped to the limits."""
    lim = joint_limits_rad()
    grasp = rng.beta(0.8, 1.1, size=(n, 1))
    curl = np.clip(grasp + rng.normal(0, 0.28, size=(n, 5)), -0.15, 1.0)
    spread = rng.uniform(-0.6, 1.0, size=(n, 1)) * (1.0 - 0.8 * grasp)
    a = np.zeros((n, N_HAND_JOINTS, 3))
    signs = {"index": -1.0, "middle": -0.2, "ring": 0.6, "pinky": 1.0}
    for k, name in enumerate(TIP_NAMES):
        j = FINGER_FIRST_JOINT[name] - 1
        c = curl[:, k]
        if name == "thumb":
            a[:, j, 0] = np.deg2rad(45) * c + rng.normal(0, 0.15, n)
            a[:, j, 1] = np.deg2rad(25) * (rng.uniform(-1, 1, n) * 0.8 + 0.2 * c)
            a[:, j, 2] = -np.deg2rad(25) * c + rng.normal(0, 0.1, n)
        else:
            a[:, j, 0] = np.deg2rad(85) * c + rng.normal(0, 0.12, n)
            a[:, j, 1] = np.deg2rad(12) * signs[name] * spread[:, 0] + rng.normal(0, 0.04, n)
        a[:, j + 1, 0] = np.deg2rad(95 if name != "thumb" else 50) * c + rng.normal(0, 0.12, n)
        a[:, j + 2, 0] = 0.67 * a[:, j + 1, 0] + rng.normal(0, 0.08, n)
        a[:, j:j + 3, 2] += rng.normal(0, 0.03, (n, 3))
    return np.clip(a, lim[None, :, :, 0], lim[None, :, :, 1])


def pose_pca(rng: np.random.Generator, n: int = 20000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of sampled plausible poses: orthonormal components (45, 45) as rows by decreasing variance, their
    standard deviations (45,) and the mean pose (45,), all axis-angle radians."""
    x = angles_to_axis_angle(sample_angles(rng, n), joint_frames())
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    return vt, s / np.sqrt(n - 1), mean
