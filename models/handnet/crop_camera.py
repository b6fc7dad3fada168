"""The HandNet crop camera, shared by training augmentation and inference (one convention, written once).

A crop of side ``side`` px centred at pixel c of a pinhole image (K) is treated as the image of a virtual camera:
the source camera rotated by R_pp, the minimal rotation turning the ray through c onto the optical axis, with
intrinsics K_c = [[f S / side, 0, (S - 1) / 2], [0, f S / side, (S - 1) / 2], [0, 0, 1]] (f the source's mean
focal length, S the crop size, pixel centres at integers). Training may roll it about the optical axis too.
HandNet's pose and weak-perspective camera refer to this frame (thesis Figure 4.12: a crop moves the principal
point; the ground truth is rotated to match). Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.geometry.rotations import axis_angle_to_matrix


@dataclass(frozen=True)
class CropCamera:
    """K: (3, 3) float64 crop intrinsics, pixels; R: (3, 3) float64 rotation source camera -> crop camera."""

    K: np.ndarray
    R: np.ndarray


def rotation_onto_axis(ray: np.ndarray) -> np.ndarray:
    """(3, 3) float64 minimal rotation taking the direction ``ray`` (3,) onto +z (0, 0, 1)."""
    d = np.asarray(ray, np.float64) / np.linalg.norm(ray)
    axis = np.cross(d, [0.0, 0.0, 1.0])
    s = np.linalg.norm(axis)
    if s < 1e-12:
        return np.eye(3)
    angle = np.arctan2(s, d[2])
    return axis_angle_to_matrix(axis / s * angle).astype(np.float64)


def crop_camera(K: np.ndarray, centre_px: np.ndarray, side_px: float, angle_rad: float, crop_size: int) -> CropCamera:
    """The crop's camera (module doc): R = R_roll(angle) R_pp(centre), K_c with focal f S / side."""
    ray = np.linalg.solve(K, np.array([centre_px[0], centre_px[1], 1.0]))
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    roll = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    f = (K[0, 0] + K[1, 1]) / 2 * crop_size / side_px
    pp = (crop_size - 1) / 2
    K_c = np.array([[f, 0.0, pp], [0.0, f, pp], [0.0, 0.0, 1.0]])
    return CropCamera(K_c, roll @ rotation_onto_axis(ray))


def crop_homography(K: np.ndarray, cam: CropCamera) -> np.ndarray:
    """(3, 3) float64 H mapping homogeneous source pixels to crop pixels: K_c R K^-1 (a pure camera rotation)."""
    return cam.K @ cam.R @ np.linalg.inv(K)
