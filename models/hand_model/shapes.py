"""Shape directions of the open hand (MANO's ``shapedirs`` layout: (V, 3, 10), metres per unit beta).

Each direction is a smooth displacement field built from the rig, scaled so beta in [-3, 3] spans adult hands
(one unit ~ one standard deviation of the anthropometric spread, 4-8 % of the measure it changes):
0 overall size, 1 palm width, 2 finger length, 3 thickness (fleshiness), 4 palm length, 5 thumb length,
6 little-finger length, 7 index/ring ratio (2D:4D), 8 finger girth, 9 wrist size.
Fingers ride on the palm: a palm change moves each finger rigidly with its knuckle.
"""

from __future__ import annotations

import numpy as np

from models.hand_model.anatomy import FINGERS, TIP_NAMES, finger_points_mm
from models.hand_model.rigging import PALM

N_SHAPE = 10


def _finger_axis_offset(v: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per vertex: along-axis offset from the finger base (N,), the unit axis (3,), and the radial part (N, 3)."""
    pts = finger_points_mm(FINGERS[name])
    axis = (pts[3] - pts[0]) / np.linalg.norm(pts[3] - pts[0])
    along = (v - pts[0]) @ axis
    radial = (v - pts[0]) - along[:, None] * axis
    return along, axis, radial


def _palm_fields(p: np.ndarray) -> list[np.ndarray]:
    """Displacement (N, 3) per unit of the palm-driven directions, evaluated at points p (mm)."""
    zero = np.zeros_like(p)
    width = zero.copy()
    width[:, 2] = 0.07 * (p[:, 2] + 2.0)
    thick = zero.copy()
    thick[:, 1] = 0.08 * (p[:, 1] + 3.0)
    length = zero.copy()
    length[:, 0] = 0.06 * np.clip(p[:, 0], 0.0, None)
    wrist = zero.copy()
    s = np.clip(-p[:, 0] / 40.0, 0.0, 1.0)[:, None]
    wrist[:, 1:] = 0.07 * s * (p[:, 1:] - np.array([-1.0, 0.0]))
    return [0.06 * p, width, thick, length, wrist]


def shape_directions(verts_mm: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(V, 3, 10) float64 displacement per unit beta, metres."""
    v = verts_mm
    w_palm = weights[:, 0:1]
    dirs = np.zeros((len(v), 3, N_SHAPE))
    size, width, thick, length, wrist = _palm_fields(v)
    dirs[:, :, 0] = size
    dirs[:, :, 1] = width
    dirs[:, :, 3] = thick
    dirs[:, :, 4] = length
    dirs[:, :, 9] = wrist
    for k, name in enumerate(TIP_NAMES):
        sel = labels == k
        if not sel.any():
            continue
        base = finger_points_mm(FINGERS[name])[0][None]
        carried = [f[0] for f in _palm_fields(base)]  # how this finger's knuckle moves
        finger = 1.0 - w_palm[sel]
        for col, field in zip((0, 1, 3, 4, 9), carried, strict=False):
            if col in (1, 4, 9):  # rigid carry of the finger with its knuckle
                dirs[sel, :, col] = w_palm[sel] * dirs[sel, :, col] + finger * field
        along, axis, radial = _finger_axis_offset(v[sel], name)
        stretch = finger * (np.clip(along, 0.0, None)[:, None] * axis)
        dirs[sel, :, 2] += 0.05 * stretch * (name != "thumb")
        dirs[sel, :, 5] += 0.06 * stretch * (name == "thumb")
        dirs[sel, :, 6] += 0.07 * stretch * (name == "pinky")
        dirs[sel, :, 7] += 0.04 * stretch * {"index": 1.0, "ring": -1.0}.get(name, 0.0)
        dirs[sel, :, 8] += 0.08 * finger * radial
        dirs[sel, :, 3] = w_palm[sel] * dirs[sel, :, 3] + finger * 0.05 * radial
    dirs[labels == PALM, :, 8] = 0.0
    return dirs / 1000.0
