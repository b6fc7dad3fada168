"""FreiHAND reader for its official layout (Zimmermann et al. 2019, v2 release).

Layout under ``root``:
  training/rgb/%08d.jpg      4 x N images: the N unique samples, then 3 colour variants of each (index k N + i)
  training/mask/%08d.jpg     N masks (one per unique sample)
  training_K.json            N x (3 x 3) intrinsics, pixels
  training_mano.json         N x [[61]]: pose (48) | shape (10) | uv_root (2) | scale (1)
  training_xyz.json          N x (21 x 3) keypoints, metres, camera frame
  training_verts.json        N x (778 x 3) vertices, metres, camera frame
  evaluation/rgb/%08d.jpg + evaluation_K.json (+ evaluation_{mano,xyz,verts}.json, evaluation/segmap or mask
  when the labels are present)
N = 32,560 for the real set. FreiHAND's 21 keypoints are in MediaPipe's order (wrist, thumb .. pinky, base to tip).

Pose: FreiHAND's 45 finger values are relative to MANO's mean hand pose (``flat_hand_mean=False``); this
project's HandModel uses the flat hand as zero, so the reader adds ``hands_mean`` (the hand model's, (45,)) when it
is given. The labels are MANO's: train on FreiHAND with real MANO (REALHANDS_MANO_DIR), not the open model.

Splits: 'train' and 'val' split the N unique samples 70 / 30 (seeded permutation), with every colour variant of a
unique sample on the same side; 'evaluation' is the official evaluation set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.data.types import RawView

N_VARIANTS = 4
SPLITS = ("train", "val", "evaluation")


class FreiHANDError(ValueError):
    """The FreiHAND folder is missing files or has inconsistent annotations; the message says which."""


@dataclass(frozen=True)
class FreiHANDConfig:
    """root: folder with ``training/`` and ``training_*.json``; split: train | val | evaluation; val_fraction:
    unique samples held out (0.3); seed: of the split permutation; load_verts: read the (large, ~1 GB JSON)
    vertex file (only the stereo loss needs vertices)."""

    root: str
    split: str = "train"
    val_fraction: float = 0.3
    seed: int = 0
    load_verts: bool = False


def _read_json(path: Path, what: str):
    if not path.is_file():
        raise FreiHANDError(f"FreiHAND: {path} ({what}) not found; point the data root at the folder that holds "
                            "training/, training_K.json, training_mano.json and training_xyz.json")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise FreiHANDError(f"FreiHAND: {path} is not valid JSON ({exc}); re-download or re-extract it") from None


def _array(data, shape_tail: tuple, path: Path) -> np.ndarray:
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim != len(shape_tail) + 1 or arr.shape[1:] != shape_tail:
        raise FreiHANDError(f"FreiHAND: {path.name} holds shape {arr.shape}, expected (N, "
                            f"{', '.join(map(str, shape_tail))})")
    return arr


def split_unique_ids(n_unique: int, split: str, val_fraction: float, seed: int) -> np.ndarray:
    """Sorted unique-sample ids of 'train' (first 1 - val_fraction of a seeded permutation) or 'val' (the rest)."""
    perm = np.random.default_rng(seed).permutation(n_unique)
    n_val = int(round(n_unique * val_fraction))
    ids = perm[n_val:] if split == "train" else perm[:n_val]
    return np.sort(ids)


class FreiHANDReader:
    """MonoSource over one split: ``len()`` views (unique samples x colour variants), ``view(i) -> RawView``.

    hands_mean: (45,) the hand model's mean finger pose (HandModel.hands_mean), added to FreiHAND's finger
    values so poses are relative to the flat hand; None keeps FreiHAND's raw values. View i is colour variant
    i // n of unique sample unique_ids[i % n] (n unique samples in the split).
    """

    def __init__(self, cfg: FreiHANDConfig, hands_mean: np.ndarray | None = None):
        if cfg.split not in SPLITS:
            raise FreiHANDError(f"FreiHAND split {cfg.split!r} unknown; use one of {SPLITS}")
        self.cfg = cfg
        self.root = Path(cfg.root)
        self.part = "evaluation" if cfg.split == "evaluation" else "training"
        self._load_labels()
        self.hands_mean = None if hands_mean is None else np.asarray(hands_mean, np.float32).reshape(45)
        self.variants = self._count_variants()
        if cfg.split == "evaluation":
            self.unique_ids = np.arange(self.n_unique)
        else:
            self.unique_ids = split_unique_ids(self.n_unique, cfg.split, cfg.val_fraction, cfg.seed)

    def _load_labels(self) -> None:
        p = self.root / f"{self.part}"
        self.K = _array(_read_json(Path(f"{p}_K.json"), "intrinsics"), (3, 3), Path(f"{p}_K.json"))
        self.n_unique = len(self.K)
        mano = np.asarray(_read_json(Path(f"{p}_mano.json"), "MANO parameters"), np.float32)
        self.mano = mano.reshape(len(mano), -1)
        xyz_path = Path(f"{p}_xyz.json")
        self.xyz = _array(_read_json(xyz_path, "3D keypoints"), (21, 3), xyz_path)
        self.verts = None
        if self.cfg.load_verts:
            vp = Path(f"{p}_verts.json")
            self.verts = _array(_read_json(vp, "vertices"), (778, 3), vp)
        self._check_counts()

    def _check_counts(self) -> None:
        counts = {"K": len(self.K), "mano": len(self.mano), "xyz": len(self.xyz)}
        if self.verts is not None:
            counts["verts"] = len(self.verts)
        if len(set(counts.values())) != 1:
            raise FreiHANDError(f"FreiHAND: annotation files disagree on the sample count {counts}; the download "
                                "is incomplete or files come from different releases")
        if self.mano.shape[1] != 61:
            raise FreiHANDError(f"FreiHAND: {self.part}_mano.json rows hold {self.mano.shape[1]} values, expected "
                                "61 (pose 48, shape 10, uv_root 2, scale 1)")

    def _rgb_path(self, image_index: int) -> Path:
        return self.root / self.part / "rgb" / f"{image_index:08d}.jpg"

    def _count_variants(self) -> int:
        """How many colour variants exist (the first image of each variant block is probed)."""
        n = sum(1 for k in range(N_VARIANTS) if self._rgb_path(k * self.n_unique).is_file())
        if n == 0:
            raise FreiHANDError(f"FreiHAND: no images at {self._rgb_path(0)}; expected {self.part}/rgb/%08d.jpg")
        return n

    def __len__(self) -> int:
        return len(self.unique_ids) * self.variants

    def unique_id(self, index: int) -> int:
        """Unique-sample id of view ``index`` (its colour variant is index // len(unique_ids))."""
        return int(self.unique_ids[index % len(self.unique_ids)])

    def _mask(self, uid: int, shape_hw: tuple) -> np.ndarray | None:
        for path in (self.root / self.part / "mask" / f"{uid:08d}.jpg",
                     self.root / self.part / "segmap" / f"{uid:08d}.png"):
            if path.is_file():
                m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
                if m is None or m.shape != shape_hw:
                    raise FreiHANDError(f"FreiHAND: mask {path} is unreadable or not {shape_hw}")
                return (m > 127).astype(np.uint8)
        return None

    def _pose(self, uid: int) -> np.ndarray:
        pose = self.mano[uid, :48].copy()
        if self.hands_mean is not None:
            pose[3:] += self.hands_mean  # FreiHAND's fingers are relative to MANO's mean pose
        return pose

    def view(self, index: int) -> RawView:
        if not 0 <= index < len(self):
            raise IndexError(f"FreiHAND {self.cfg.split}: index {index} out of range [0, {len(self)})")
        uid = self.unique_id(index)
        variant = index // len(self.unique_ids)
        path = self._rgb_path(variant * self.n_unique + uid)
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FreiHANDError(f"FreiHAND: cannot read image {path}")
        image = np.ascontiguousarray(bgr[..., ::-1])
        verts = None if self.verts is None else self.verts[uid]
        return RawView(image=image, mask=self._mask(uid, image.shape[:2]), K=self.K[uid].astype(np.float64),
                       keypoints_m=self.xyz[uid], verts_m=verts, pose=self._pose(uid),
                       shape=self.mano[uid, 48:58].copy())
