"""The synthetic stereo set of ``python -m models.synth generate`` (models/synth/dataset.py) as a StereoSource.

That set holds full rectified frames of right AND left hands, labels in the left camera frame. HandNet is
right-hand only, so a left-hand sample is mirrored here, the same way the detection stage mirrors crops: both
images flipped horizontally (u -> W - 1 - u, so K's cx -> W - 1 - cx), every 3D point x-negated, the pose mirrored
((x, y, z) -> (x, -y, -z) per joint: the left model's pose becomes the right model's), and the rig conjugated by
M = diag(-1, 1, 1) (T_right_left -> M T M: in the mirrored world the right camera sits at -x of the left one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.geometry.rotations import mirror_axis_angle
from models.data.types import RawStereoPair, RawView

MIRROR = np.diag([-1.0, 1.0, 1.0])
MIRROR4 = np.diag([-1.0, 1.0, 1.0, 1.0])


def is_synth_set(directory: str | Path) -> bool:
    """True for a folder written by models.synth generate (it has dataset.json)."""
    return (Path(directory) / "dataset.json").is_file()


def _rotate(R: np.ndarray, aa: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return (Rotation.from_matrix(R) * Rotation.from_rotvec(aa)).as_rotvec().astype(np.float32)


def _view(image, mask, K, T_cam_left, kps, verts, pose, shape) -> RawView:
    """One camera's RawView of left-camera-frame labels (T_cam_left: left camera -> this camera)."""
    R, t = T_cam_left[:3, :3], T_cam_left[:3, 3]

    def move(points):
        return (points.astype(np.float64) @ R.T + t).astype(np.float32)

    glob = _rotate(R, pose[:3].astype(np.float64))
    return RawView(np.ascontiguousarray(image), np.ascontiguousarray(mask).astype(np.uint8), K, move(kps),
                   move(verts), np.concatenate([glob, pose[3:]]).astype(np.float32), shape.astype(np.float32))


def mirror_sample_arrays(images, masks, K_left, K_right, T_right_left, kps, verts, pose):
    """The mirrored (right-hand) version of a left-hand sample's arrays (module doc)."""
    w = images[0].shape[1]

    def flip_K(K):
        K = K.copy()
        K[0, 2] = w - 1 - K[0, 2]
        return K

    images = tuple(img[:, ::-1] for img in images)
    masks = tuple(m[:, ::-1] for m in masks)
    T = MIRROR4 @ np.asarray(T_right_left, np.float64) @ MIRROR4
    return (images, masks, flip_K(K_left), flip_K(K_right), T, kps * MIRROR.diagonal().astype(np.float32),
            verts * MIRROR.diagonal().astype(np.float32), mirror_axis_angle(pose).astype(np.float32))


class SynthSetSource:
    """StereoSource over one split ('train' | 'val' | 'all') of a models.synth set; left hands mirrored."""

    def __init__(self, root: str | Path, split: str = "train"):
        from models.synth.dataset import SyntheticStereoDataset

        self.data = SyntheticStereoDataset(root, split)
        cal = self.data.calibration
        self.K = (cal.left.K.copy(), cal.right.K.copy())
        self.T_right_left = cal.right.T_cam_left.copy()

    def __len__(self) -> int:
        return len(self.data)

    def pair(self, index: int) -> RawStereoPair:
        s = self.data[index]
        arrays = (s.images, s.masks, self.K[0], self.K[1], self.T_right_left, s.keypoints_m, s.verts_m, s.pose)
        if s.is_left:
            arrays = mirror_sample_arrays(*arrays)
        images, masks, K_l, K_r, T, kps, verts, pose = arrays
        left = _view(images[0], masks[0], K_l, np.eye(4), kps, verts, pose, s.shape)
        right = _view(images[1], masks[1], K_r, T, kps, verts, pose, s.shape)
        return RawStereoPair(left, right, np.asarray(T, np.float64))
