"""Reader of the synthetic stereo set written by ``python -m models.synth generate`` (format: docs/SYNTHETIC.md).

- ``SyntheticStereoDataset(root, split)``: a torch Dataset of ``SyntheticSample`` (numpy arrays, one stereo
  pair of one hand); ``collate_synthetic`` stacks them into a ``SyntheticBatch`` of tensors for a DataLoader.
- ``read_synthetic(root, limit)``: the same samples as ``models.eval.samples.EvalSample`` for
  ``python -m models.evaluate --dataset synthetic``.

Layout (root): dataset.json (index), calibration.json (the rig), images/{left,right}/NNNNNN.{png,jpg},
masks/{left,right}/NNNNNN.png, annotations/NNNNNN.npz.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from app.types import StereoCalibration
from models.eval.samples import EvalSample

FORMAT_NAME = "realhands-synthetic-stereo"
FORMAT_VERSION = 1
INDEX_FILE = "dataset.json"
CALIBRATION_FILE = "calibration.json"
VIEWS = ("left", "right")
SPLITS = ("all", "train", "val")
# The arrays of annotations/NNNNNN.npz, in the order they enter the checksum (after images and masks).
ANNOTATION_KEYS = ("keypoints_px", "visible", "keypoints_m", "verts_m", "pose", "shape", "transl_m", "is_left")
GENERATE_HINT = "python -m models.synth generate --out DIR --n N"


class SyntheticFormatError(ValueError):
    """The folder is not (or not completely) a synthetic stereo set; the message says what to do."""


@dataclass(frozen=True)
class SampleFiles:
    """Paths of one sample: images and masks as (left, right); annotation: the .npz."""

    images: tuple[Path, Path]
    masks: tuple[Path, Path]
    annotation: Path


def sample_files(root: Path, index: int, image_ext: str) -> SampleFiles:
    """Where sample ``index`` lives under ``root`` (image_ext: 'png' or 'jpg')."""
    name = f"{index:06d}"
    root = Path(root)
    return SampleFiles(tuple(root / "images" / v / f"{name}.{image_ext}" for v in VIEWS),
                       tuple(root / "masks" / v / f"{name}.png" for v in VIEWS),
                       root / "annotations" / f"{name}.npz")


@dataclass(frozen=True)
class SyntheticSample:
    """One stereo pair of one hand (views ordered left, right).

    images: per view (H, W, 3) uint8 RGB. masks: per view (H, W) bool, the hand without the forearm.
    keypoints_px: (2, 21, 2) float32 pixels (pixel centres at integers), MediaPipe order, per view.
    visible: (2, 21) bool, the surface at the keypoint's pixel is its own finger segment or the palm.
    keypoints_m: (21, 3) float32 and verts_m: (V, 3) float32, metres, left-camera frame.
    pose: (48,) float32 axis-angle radians (3 global in the left-camera frame + 15 x 3 joints, MANO order) of
    the hand's own model (the left model when is_left); shape: (10,) float32 betas; transl_m: (3,) float32
    metres: HandModel(side).forward(pose, shape, transl_m) gives verts_m and keypoints_m.
    kind: view kind ('back', 'palm', 'ego'); index: sample number in the set.
    """

    index: int
    images: tuple[np.ndarray, np.ndarray]
    masks: tuple[np.ndarray, np.ndarray]
    keypoints_px: np.ndarray
    visible: np.ndarray
    keypoints_m: np.ndarray
    verts_m: np.ndarray
    pose: np.ndarray
    shape: np.ndarray
    transl_m: np.ndarray
    is_left: bool
    kind: str


@dataclass(frozen=True)
class SyntheticBatch:
    """B samples stacked as torch tensors (same meaning as SyntheticSample, leading batch dimension B).

    images: (B, 2, H, W, 3) uint8; masks: (B, 2, H, W) bool; keypoints_px: (B, 2, 21, 2) float32; visible:
    (B, 2, 21) bool; keypoints_m: (B, 21, 3); verts_m: (B, V, 3); pose: (B, 48); shape: (B, 10); transl_m:
    (B, 3), float32; is_left: (B,) bool; index: (B,) int64; kinds: B strings.
    """

    index: torch.Tensor
    images: torch.Tensor
    masks: torch.Tensor
    keypoints_px: torch.Tensor
    visible: torch.Tensor
    keypoints_m: torch.Tensor
    verts_m: torch.Tensor
    pose: torch.Tensor
    shape: torch.Tensor
    transl_m: torch.Tensor
    is_left: torch.Tensor
    kinds: tuple[str, ...]


def load_index(root: str | Path) -> dict:
    """dataset.json of a set, checked for format and version."""
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        raise SyntheticFormatError(f"{path} not found: {root} is not a finished synthetic stereo set; "
                                   f"make one with `{GENERATE_HINT}` (an interrupted run leaves no index)")
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SyntheticFormatError(f"{path}: not valid JSON ({exc}); regenerate the set") from exc
    if not isinstance(index, dict) or index.get("format") != FORMAT_NAME:
        raise SyntheticFormatError(f"{path}: field 'format' must be {FORMAT_NAME!r}; this folder holds "
                                   "something else, point --root at a folder written by models.synth generate")
    if index.get("version") != FORMAT_VERSION:
        raise SyntheticFormatError(f"{path}: version {index.get('version')!r}, this reader reads version "
                                   f"{FORMAT_VERSION}; regenerate the set with this version")
    return index


def load_set_calibration(root: str | Path) -> StereoCalibration:
    """The rig of a set (calibration.json)."""
    from calibration.fileio import load_calibration

    return load_calibration(Path(root) / CALIBRATION_FILE)


def split_indices(n: int, split: str | None, val_every: int = 10) -> list[int]:
    """Sample numbers of a split: 'val' = every val_every-th sample (i % val_every == val_every - 1), 'train' =
    the others, None or 'all' = every sample. Fixed per sample, so growing a set never moves a sample."""
    split = split or "all"
    if split not in SPLITS:
        raise SyntheticFormatError(f"split: expected one of {SPLITS} (or None), got {split!r}")
    if split == "all":
        return list(range(n))
    is_val = split == "val"
    return [i for i in range(n) if (i % val_every == val_every - 1) == is_val]


def _read_image(path: Path, flags: int) -> np.ndarray:
    img = cv2.imread(str(path), flags)
    if img is None:
        raise SyntheticFormatError(f"cannot read {path}; the set is incomplete or damaged, regenerate it")
    return img


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file."""
    return np.ascontiguousarray(cv2.cvtColor(_read_image(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))


def read_mask(path: Path) -> np.ndarray:
    """(H, W) bool of a mask PNG (0 = not hand, 255 = hand)."""
    return _read_image(path, cv2.IMREAD_GRAYSCALE) > 127


def read_annotation(path: Path) -> dict[str, np.ndarray]:
    """The arrays of one annotations/NNNNNN.npz (ANNOTATION_KEYS)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ANNOTATION_KEYS}
    except (OSError, ValueError, KeyError) as exc:
        raise SyntheticFormatError(f"{path}: unreadable annotation ({exc}); regenerate the set") from exc
    return arrays


def read_sample(root: Path, index: int, image_ext: str, kind: str) -> SyntheticSample:
    """Sample ``index`` of the set under ``root`` from disk."""
    files = sample_files(root, index, image_ext)
    a = read_annotation(files.annotation)
    return SyntheticSample(index, tuple(read_rgb(p) for p in files.images), tuple(read_mask(p) for p in files.masks),
                           a["keypoints_px"], a["visible"], a["keypoints_m"], a["verts_m"], a["pose"], a["shape"],
                           a["transl_m"], bool(a["is_left"]), kind)


class SyntheticStereoDataset(torch.utils.data.Dataset):
    """The samples of one split of a synthetic stereo set. ``calibration``: the rig (StereoCalibration);
    ``index``: the parsed dataset.json; ``indices``: sample numbers of this split, in order."""

    def __init__(self, root: str | Path, split: str | None = None, val_every: int = 10):
        self.root = Path(root)
        self.index = load_index(self.root)
        self.calibration = load_set_calibration(self.root)
        self.indices = split_indices(int(self.index["samples"]), split, val_every)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> SyntheticSample:
        if not -len(self) <= item < len(self):
            raise IndexError(f"sample {item} out of range for a split of {len(self)} samples")
        i = self.indices[item]
        return read_sample(self.root, i, self.index["image_format"], self.index["entries"][i]["kind"])


def collate_synthetic(samples: list[SyntheticSample]) -> SyntheticBatch:
    """Stack samples (all of one image size) into a SyntheticBatch; use as a DataLoader's collate_fn."""

    def stack(get, dtype=None):
        return torch.as_tensor(np.stack([get(s) for s in samples]), dtype=dtype)

    return SyntheticBatch(
        index=torch.tensor([s.index for s in samples], dtype=torch.int64),
        images=stack(lambda s: np.stack(s.images)), masks=stack(lambda s: np.stack(s.masks)),
        keypoints_px=stack(lambda s: s.keypoints_px), visible=stack(lambda s: s.visible),
        keypoints_m=stack(lambda s: s.keypoints_m), verts_m=stack(lambda s: s.verts_m),
        pose=stack(lambda s: s.pose), shape=stack(lambda s: s.shape), transl_m=stack(lambda s: s.transl_m),
        is_left=torch.tensor([s.is_left for s in samples]), kinds=tuple(s.kind for s in samples))


def eval_sample(sample: SyntheticSample, calibration: StereoCalibration) -> EvalSample:
    """A stereo EvalSample (left, right) of a synthetic sample: ground-truth keypoints in both views and in 3D,
    the mesh vertices, both hand masks and the handedness."""
    return EvalSample(sample_id=f"{sample.index:06d}", images=sample.images,
                      uv_px=tuple(sample.keypoints_px[v].astype(np.float64) for v in range(2)),
                      K=calibration.left.K.copy(), xyz_cam_m=sample.keypoints_m.astype(np.float64),
                      calibration=calibration, tight_crop=False, verts_cam_m=sample.verts_m.astype(np.float64),
                      masks=sample.masks, is_left=sample.is_left)


def read_synthetic(root: Path, limit: int | None = None) -> Iterator[EvalSample]:
    """The evaluation reader of ``--dataset synthetic``: every sample of the set (at most ``limit``), in order."""
    data = SyntheticStereoDataset(root)
    n = len(data) if limit is None else min(limit, len(data))
    for k in range(n):
        yield eval_sample(data[k], data.calibration)
