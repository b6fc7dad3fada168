"""Signed distance functions (numpy, millimetres) from which the open hand's surface is extracted.

The hand is a smooth union of tapered capsules ("round cones"): finger phalanges, metacarpals that blend into a
palm slab, the thenar and hypothenar eminences and a short wrist. Values are approximate distances (exact on
the axis-perpendicular direction), which is all marching cubes needs.
"""

from __future__ import annotations

import numpy as np

from models.hand_model.anatomy import FINGERS, FingerSpec, finger_points_mm


def round_cone(p: np.ndarray, a, b, r_a: float, r_b: float, scale=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Approximate SDF of a capsule from a to b whose radius tapers from r_a to r_b.

    p: (N, 3) points. ``scale`` squashes the cross-section per model axis (y < 1 flattens it).
    """
    a = np.asarray(a, float)
    ba = np.asarray(b, float) - a
    pa = p - a
    t = np.clip(pa @ ba / float(ba @ ba), 0.0, 1.0)
    offset = (pa - t[:, None] * ba) / np.asarray(scale, float)
    return np.linalg.norm(offset, axis=1) - (r_a + (r_b - r_a) * t)


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum with blend width k (mm): a fillet where two shapes meet."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def finger_sdf(p: np.ndarray, spec: FingerSpec) -> np.ndarray:
    """Three phalanges; the last ends in a rounded tip whose surface reaches the designed tip point."""
    pts = finger_points_mm(spec)
    r = spec.radii_mm
    d_dir = (pts[3] - pts[2]) / np.linalg.norm(pts[3] - pts[2])
    tip_centre = pts[3] - d_dir * r[3]
    scale = (1.0, spec.flatten, 1.0)
    d = round_cone(p, pts[0], pts[1], r[0], r[1], scale)
    d = smooth_min(d, round_cone(p, pts[1], pts[2], r[1], r[2], scale), 1.5)
    return smooth_min(d, round_cone(p, pts[2], tip_centre, r[2], r[3], scale), 1.5)


def palm_sdf(p: np.ndarray) -> np.ndarray:
    """Metacarpals fused into a slab, thenar/hypothenar eminences and the wrist."""
    flat = (1.0, 0.82, 1.0)
    bases = {"index": (14.0, -13.0), "middle": (14.0, -3.0), "ring": (14.0, 7.0), "pinky": (16.0, 16.0)}
    d = None
    for name, (bx, bz) in bases.items():
        spec = FINGERS[name]
        mcp = np.asarray(spec.base_mm)
        # The palm reaches past the knuckle joints: the finger webs lie ~10-15 mm distal to the MCP joints.
        web = mcp + 10.0 * np.asarray(spec.direction) + np.array([0.0, -2.0, 0.0])
        bone = round_cone(p, (bx, -1.0, bz), web, 13.0, spec.radii_mm[0] + 1.5, flat)
        d = bone if d is None else smooth_min(d, bone, 6.0)
    thumb_mcp = finger_points_mm(FINGERS["thumb"])[1]
    d = smooth_min(d, round_cone(p, (10.0, -6.0, -10.0), thumb_mcp * 0.55 + np.array([8.0, -4, -2]),
                                 17.0, 12.0, (1.0, 0.8, 1.0)), 8.0)
    d = smooth_min(d, round_cone(p, (14.0, -5.0, 18.0), (66.0, -4.0, 28.0), 12.0, 10.0, (1.0, 0.8, 1.0)), 8.0)
    d = smooth_min(d, round_cone(p, (40.0, -6.0, 2.0), (82.0, -5.0, 4.0), 20.0, 18.0, (1.0, 0.55, 1.0)), 8.0)
    # First web space between thumb and index (adductor / first dorsal interosseous).
    d = smooth_min(d, round_cone(p, (40.0, -4.0, -14.0), thumb_mcp + np.array([4.0, 3.0, 6.0]), 9.0, 7.0,
                                 (1.0, 0.7, 1.0)), 7.0)
    return smooth_min(d, round_cone(p, (-40.0, 0.0, 1.0), (8.0, -2.0, 0.0), 25.0, 24.0, (1.0, 0.72, 1.0)), 10.0)


def hand_sdf(p: np.ndarray) -> np.ndarray:
    """SDF of the whole right hand in the rest pose (mm, model frame)."""
    fingers = np.min([finger_sdf(p, FINGERS[n]) for n in ("index", "middle", "ring", "pinky")], axis=0)
    d = smooth_min(palm_sdf(p), fingers, 5.0)
    return smooth_min(d, finger_sdf(p, FINGERS["thumb"]), 6.0)
