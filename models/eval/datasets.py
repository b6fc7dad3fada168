"""Dataset readers of the evaluation, by name. A reader is ``read(root: Path, limit: int | None)``
returning an iterator of ``EvalSample`` (images loaded lazily, one sample at a time).

- ``realworld``: the layout of hand-graph-cnn's real-world test set (Ge et al. CVPR 2019), as in
  ../shared/realdata/hand-graph-cnn_real_world_testset: ``images/*.jpg`` (256x256 tight crops) and
  ``annotations.json`` = {"images": [{"image", "K_crop" (3x3 px), "xyz_cam_cm" (21x3, centimetres, camera
  frame, x right / y down / z forward), "uv_crop_px" (21x2, the projection of xyz with K_crop)}, ...]}, joint
  order identical to MediaPipe's. Mono.
- ``synthetic``: the folder written by ``models.synth generate`` (stereo; format in docs/SYNTHETIC.md, reader in
  models/synth/dataset.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from models.eval.samples import EvalSample
from models.synth.dataset import read_synthetic

Reader = Callable[[Path, "int | None"], Iterator[EvalSample]]


class DatasetError(ValueError):
    """A dataset folder is missing, malformed or not supported yet; the message says what to do."""


DATASETS: dict[str, Reader] = {}


def register_dataset(name: str, reader: Reader) -> None:
    """Add (or replace) the reader of ``--dataset name``."""
    DATASETS[name] = reader


def read_dataset(name: str, root: str | Path, limit: int | None = None) -> Iterator[EvalSample]:
    """Samples of dataset ``name`` under ``root`` (at most ``limit``)."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    return DATASETS[name](Path(root), limit)


def load_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file, with a clear error when it cannot be read."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DatasetError(f"cannot read image {path}; check that the file exists and is a JPEG/PNG")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _realworld_entries(root: Path) -> list[dict]:
    ann = root / "annotations.json"
    if not ann.is_file():
        raise DatasetError(f"{ann} not found; --root must be a folder with images/ and annotations.json "
                           "(the layout of hand-graph-cnn_real_world_testset)")
    try:
        entries = json.loads(ann.read_text())["images"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DatasetError(f"{ann}: expected a JSON object with an 'images' list ({exc})") from exc
    return entries


def _realworld_sample(root: Path, entry: dict) -> EvalSample:
    try:
        K = np.asarray(entry["K_crop"], np.float64)
        xyz_m = np.asarray(entry["xyz_cam_cm"], np.float64) / 100.0  # centimetres -> metres
        uv = np.asarray(entry["uv_crop_px"], np.float64)
        name = entry["image"]
    except KeyError as exc:
        raise DatasetError(f"{root / 'annotations.json'}: an entry lacks the field {exc}; each needs image, "
                           "K_crop, xyz_cam_cm and uv_crop_px") from exc
    return EvalSample(sample_id=Path(name).stem, images=(load_rgb(root / name),), uv_px=(uv,), K=K,
                      xyz_cam_m=xyz_m, tight_crop=True)


def read_realworld(root: Path, limit: int | None = None) -> Iterator[EvalSample]:
    """Mono samples of the hand-graph-cnn real-world test-set layout (see the module docstring)."""
    entries = _realworld_entries(root)
    for entry in entries[:limit]:
        yield _realworld_sample(root, entry)


register_dataset("realworld", read_realworld)
register_dataset("synthetic", read_synthetic)  # models/synth/dataset.py, format in docs/SYNTHETIC.md
