"""Anatomical layout of the open hand model (right hand, rest pose, millimetres).

Model frame: origin on the wrist's radiocarpal line (the wrist joint sits 13 mm distal, see WRIST_MM),
x from the wrist towards the middle fingertip, y out of the back of the hand (the palm faces -y), z towards the
little finger (x, y, z right-handed). The rest pose is a flat hand with slightly spread fingers, as MANO's
template.

Proportions are those of an average adult hand (hand length ~190 mm wrist crease to middle fingertip, palm
width ~85 mm at the knuckles, finger segment ratios ~ proximal : middle : distal = 1.0 : 0.62 : 0.52 of the
proximal phalanx), rounded from published anthropometric tables (e.g. Buryanov & Kotiuk 2010; Greiner 1991).

Joint order is MANO's 16: 0 wrist, 1-3 index, 4-6 middle, 7-9 pinky, 10-12 ring, 13-15 thumb (each proximal
to distal). Tips follow in MANO/smplx order thumb, index, middle, ring, pinky.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MANO_PARENTS = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14], dtype=np.int64)
JOINT_NAMES = (
    "wrist", "index1", "index2", "index3", "middle1", "middle2", "middle3", "pinky1", "pinky2", "pinky3",
    "ring1", "ring2", "ring3", "thumb1", "thumb2", "thumb3",
)
TIP_NAMES = ("thumb", "index", "middle", "ring", "pinky")
# First MANO joint of each finger, keyed like TIP_NAMES.
FINGER_FIRST_JOINT = {"thumb": 13, "index": 1, "middle": 4, "ring": 10, "pinky": 7}
# The fingertip vertex indices commonly used with MANO (thumb, index, middle, ring, pinky; e.g. by FreiHAND-style
# 21-keypoint regressors). The open model puts its tips at these indices so such code works unchanged; the app
# itself always reads the model's own `tip_vertex_ids`.
MANO_TIP_VERTEX_IDS = np.array([745, 317, 444, 556, 673], dtype=np.int64)


@dataclass(frozen=True)
class FingerSpec:
    """One finger. base_mm: first joint (MCP; CMC for the thumb). direction: unit-free rest direction.
    lengths_mm: joint-to-joint lengths, the last to the fingertip surface. radii_mm: at the 3 joints and tip.
    flatten: cross-section thickness (y) over width (z)."""

    base_mm: tuple[float, float, float]
    direction: tuple[float, float, float]
    lengths_mm: tuple[float, float, float]
    radii_mm: tuple[float, float, float, float]
    flatten: float = 0.88


# The wrist keypoint sits at the wrist crease, at the base of the palm, ~13 mm distal to the radiocarpal line.
WRIST_MM = (13.0, -1.0, -2.0)


def _splay(deg: float) -> tuple[float, float, float]:
    a = np.deg2rad(deg)
    return (float(np.cos(a)), 0.0, float(np.sin(a)))


FINGERS: dict[str, FingerSpec] = {
    "index": FingerSpec((92.0, 0.0, -24.0), _splay(-5.0), (38.0, 24.0, 21.0), (10.0, 9.2, 8.5, 8.0)),
    "middle": FingerSpec((96.0, 0.0, -4.0), _splay(0.0), (42.0, 27.0, 22.0), (10.2, 9.4, 8.7, 8.1)),
    "ring": FingerSpec((90.0, 0.0, 15.0), _splay(5.0), (39.0, 26.0, 22.0), (9.6, 8.9, 8.2, 7.6)),
    "pinky": FingerSpec((80.0, 0.0, 32.0), _splay(11.0), (31.0, 19.0, 20.0), (8.7, 8.0, 7.4, 6.9)),
    "thumb": FingerSpec((32.0, -9.0, -28.0), (0.74, -0.28, -0.61), (34.0, 31.0, 27.0), (14.0, 11.2, 10.4, 9.4),
                        flatten=1.0),
}


def finger_points_mm(spec: FingerSpec) -> np.ndarray:
    """(4, 3) float64: the finger's 3 joints and its tip, millimetres, model frame."""
    d = np.asarray(spec.direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    steps = np.concatenate([[0.0], np.cumsum(spec.lengths_mm)])
    return np.asarray(spec.base_mm, dtype=np.float64) + steps[:, None] * d


def design_joints_mm() -> tuple[np.ndarray, np.ndarray]:
    """Designed skeleton: joints (16, 3) and tips (5, 3) in MANO order, millimetres, model frame."""
    joints = np.zeros((16, 3))
    joints[0] = WRIST_MM
    tips = np.zeros((5, 3))
    for k, name in enumerate(TIP_NAMES):
        pts = finger_points_mm(FINGERS[name])
        j0 = FINGER_FIRST_JOINT[name]
        joints[j0:j0 + 3] = pts[:3]
        tips[k] = pts[3]
    return joints, tips
