"""models/synth/dataset.py: the written set reads back bit-exactly (its checksum), splits, batches and the
evaluation reader behind ``--dataset synthetic``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models import evaluate
from models.eval.datasets import read_dataset
from models.synth.dataset import (
    ANNOTATION_KEYS,
    SyntheticFormatError,
    SyntheticStereoDataset,
    collate_synthetic,
    read_annotation,
    read_synthetic,
    sample_files,
    split_indices,
)
from models.synth.generate import GenerateConfig, generate, sample_digest, set_checksum

torch.set_num_threads(1)
N = 4


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    cfg = GenerateConfig(n=N, seed=3, mode="320x180", texture_size=128, mediapipe=False, progress=False)
    summary, _ = generate(root, cfg)
    return root, summary


def test_read_back_arrays_reproduce_the_checksum(synth_set):
    root, summary = synth_set
    data = SyntheticStereoDataset(root)
    index = json.loads((root / "dataset.json").read_text())
    digests = []
    for i in range(len(data)):
        s = data[i]
        ann = read_annotation(sample_files(root, i, "png").annotation)
        digests.append(sample_digest([*s.images, *s.masks, *(ann[k] for k in ANNOTATION_KEYS)]))
        assert digests[-1] == index["entries"][i]["sha256"]
    assert set_checksum(digests) == summary["checksum"]


def test_sample_fields_have_the_documented_shapes(synth_set):
    root, _ = synth_set
    data = SyntheticStereoDataset(root)
    assert len(data) == N and data.calibration.rectified and data.calibration.left.size_wh == (320, 180)
    s = data[1]
    assert s.index == 1 and s.kind in ("back", "palm", "ego") and isinstance(s.is_left, bool)
    assert all(img.shape == (180, 320, 3) and img.dtype == np.uint8 for img in s.images)
    assert all(m.shape == (180, 320) and m.dtype == bool and m.any() for m in s.masks)
    assert s.keypoints_px.shape == (2, 21, 2) and s.keypoints_px.dtype == np.float32
    assert s.visible.shape == (2, 21) and s.visible.dtype == bool
    assert s.keypoints_m.shape == (21, 3) and s.verts_m.shape == (778, 3)
    assert s.pose.shape == (48,) and s.shape.shape == (10,) and s.transl_m.shape == (3,)
    with pytest.raises(IndexError):
        data[N]


def test_splits_partition_the_set():
    assert split_indices(25, "val") == [9, 19]
    assert sorted(split_indices(25, "train") + split_indices(25, "val")) == split_indices(25, None)
    assert split_indices(5, "all", val_every=2) == [0, 1, 2, 3, 4]
    with pytest.raises(SyntheticFormatError, match="split"):
        split_indices(5, "test")


def test_dataloader_batches_with_the_collate_function(synth_set):
    root, _ = synth_set
    data = SyntheticStereoDataset(root, split="train", val_every=2)
    assert data.indices == [0, 2]
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=2, collate_fn=collate_synthetic)))
    assert batch.images.shape == (2, 2, 180, 320, 3) and batch.masks.dtype == torch.bool
    assert batch.keypoints_px.shape == (2, 2, 21, 2) and batch.verts_m.shape == (2, 778, 3)
    assert batch.index.tolist() == [0, 2] and len(batch.kinds) == 2
    np.testing.assert_array_equal(batch.pose[1].numpy(), data[1].pose)


def test_eval_reader_yields_stereo_samples_with_the_rig(synth_set):
    root, _ = synth_set
    samples = list(read_dataset("synthetic", root, limit=2))
    assert len(samples) == 2 and all(s.is_stereo for s in samples)
    s, ref = samples[1], SyntheticStereoDataset(root)[1]
    np.testing.assert_array_equal(s.uv_px[1], ref.keypoints_px[1].astype(np.float64))
    np.testing.assert_array_equal(s.xyz_cam_m, ref.keypoints_m.astype(np.float64))
    np.testing.assert_array_equal(s.K, s.calibration.left.K)
    assert s.sample_id == "000001" and s.calibration.baseline_m == pytest.approx(0.063)
    np.testing.assert_array_equal(s.verts_cam_m, ref.verts_m.astype(np.float64))
    np.testing.assert_array_equal(s.masks[1], ref.masks[1])
    assert s.is_left == ref.is_left


def test_evaluate_cli_runs_on_the_synthetic_set(synth_set, tmp_path):
    root, _ = synth_set
    out = tmp_path / "eval.json"
    rc = evaluate.main(["--dataset", "synthetic", "--root", str(root), "--method", "triangulate", "--json",
                        str(out), "--limit", "2"])
    assert rc == 0 and json.loads(out.read_text())["n"] == 2


def test_missing_or_foreign_folders_get_a_clear_error(tmp_path):
    with pytest.raises(SyntheticFormatError, match="models.synth generate"):
        SyntheticStereoDataset(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(SyntheticFormatError, match="'format'"):
        next(read_synthetic(tmp_path))


def test_jpeg_sets_read_back_close_to_the_renders(tmp_path):
    cfg = GenerateConfig(n=1, seed=3, mode="320x180", texture_size=128, mediapipe=False, progress=False,
                         image_format="jpg")
    generate(tmp_path / "jpg", cfg)
    generate(tmp_path / "png", GenerateConfig(**{**cfg.__dict__, "image_format": "png"}))
    a, b = SyntheticStereoDataset(tmp_path / "jpg")[0], SyntheticStereoDataset(tmp_path / "png")[0]
    diff = np.abs(a.images[0].astype(int) - b.images[0].astype(int))
    assert 0 < diff.mean() < 4.0  # JPEG quality 95
    np.testing.assert_array_equal(a.masks[0], b.masks[0])  # masks stay lossless PNG
