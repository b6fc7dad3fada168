"""Tests for models/data/freihand.py on a tiny fake FreiHAND written here in the official layout."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from models.data.freihand import FreiHANDConfig, FreiHANDError, FreiHANDReader, split_unique_ids

N_UNIQUE = 10


def _write_fake(root, n=N_UNIQUE, variants=4, masks=True, verts=True, part="training"):
    """n unique samples x ``variants`` colour variants; variant k of sample i is filled with grey 20 k + i."""
    rng = np.random.default_rng(0)
    (root / part / "rgb").mkdir(parents=True)
    (root / part / "mask").mkdir()
    for k in range(variants):
        for i in range(n):
            img = np.full((224, 224, 3), 20 * k + i, np.uint8)
            cv2.imwrite(str(root / part / "rgb" / f"{k * n + i:08d}.jpg"), img)
    for i in range(n):
        if masks:
            m = np.zeros((224, 224), np.uint8)
            m[50:150, 60:160] = 255
            cv2.imwrite(str(root / part / "mask" / f"{i:08d}.jpg"), m)
    K = [[[500.0 + i, 0, 112], [0, 500.0 + i, 112], [0, 0, 1]] for i in range(n)]
    mano = [[list(rng.normal(0, 0.3, 61))] for _ in range(n)]
    xyz = [list(rng.normal(0, 0.03, (21, 3)) + [0, 0, 0.6]) for _ in range(n)]
    files = {"K": K, "mano": mano, "xyz": [np.asarray(x).tolist() for x in xyz]}
    if verts:
        files["verts"] = rng.normal(0, 0.03, (n, 778, 3)).tolist()
    for name, data in files.items():
        (root / f"{part}_{name}.json").write_text(json.dumps(data))
    return files


@pytest.fixture
def fake(tmp_path):
    return tmp_path, _write_fake(tmp_path)


def test_split_by_unique_sample_covers_all_variants(fake):
    root, _ = fake
    train = FreiHANDReader(FreiHANDConfig(str(root), "train"))
    val = FreiHANDReader(FreiHANDConfig(str(root), "val"))
    assert len(train) == 4 * 7 and len(val) == 4 * 3
    train_ids = {train.unique_id(i) for i in range(len(train))}
    val_ids = {val.unique_id(i) for i in range(len(val))}
    assert train_ids.isdisjoint(val_ids) and train_ids | val_ids == set(range(N_UNIQUE))
    # every colour variant of a unique sample sits in the same split
    grey = {(int(train.view(i).image[0, 0, 0]) % 20) for i in range(len(train))}
    assert grey == train_ids


def test_view_content(fake):
    root, files = fake
    reader = FreiHANDReader(FreiHANDConfig(str(root), "train", load_verts=True))
    i = len(reader.unique_ids) * 2 + 1  # colour variant 2 of the second training sample
    uid = reader.unique_id(i)
    v = reader.view(i)
    assert v.image.shape == (224, 224, 3) and abs(int(v.image[100, 100, 0]) - (40 + uid)) <= 2
    np.testing.assert_allclose(v.K, files["K"][uid])
    np.testing.assert_allclose(v.keypoints_m, files["xyz"][uid], atol=1e-6)
    np.testing.assert_allclose(v.pose, files["mano"][uid][0][:48], atol=1e-6)
    np.testing.assert_allclose(v.shape, files["mano"][uid][0][48:58], atol=1e-6)
    assert v.verts_m.shape == (778, 3)
    assert v.mask[100, 100] == 1 and v.mask[10, 10] == 0


def test_hands_mean_is_added_to_the_fingers_only(fake):
    root, files = fake
    mean = np.linspace(-0.5, 0.5, 45).astype(np.float32)
    reader = FreiHANDReader(FreiHANDConfig(str(root), "train"), hands_mean=mean)
    v = reader.view(0)
    raw = np.asarray(files["mano"][reader.unique_id(0)][0][:48], np.float32)
    np.testing.assert_allclose(v.pose[:3], raw[:3], atol=1e-6)
    np.testing.assert_allclose(v.pose[3:], raw[3:] + mean, atol=1e-6)


def test_evaluation_split_reads_every_sample(tmp_path):
    files = _write_fake(tmp_path, n=4, variants=1, part="evaluation")
    reader = FreiHANDReader(FreiHANDConfig(str(tmp_path), "evaluation"))
    assert len(reader) == 4 and [reader.unique_id(i) for i in range(4)] == [0, 1, 2, 3]
    np.testing.assert_allclose(reader.view(3).keypoints_m, files["xyz"][3], atol=1e-6)


def test_split_is_deterministic_and_seeded():
    a = split_unique_ids(100, "val", 0.3, seed=1)
    assert np.array_equal(a, split_unique_ids(100, "val", 0.3, seed=1)) and len(a) == 30
    assert not np.array_equal(a, split_unique_ids(100, "val", 0.3, seed=2))


def test_fewer_variants_and_missing_masks(tmp_path):
    _write_fake(tmp_path, variants=1, masks=False, verts=False)
    reader = FreiHANDReader(FreiHANDConfig(str(tmp_path), "train"))
    assert len(reader) == 7 and reader.view(0).mask is None and reader.view(0).verts_m is None


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FreiHANDError, match="training_K.json"):
        FreiHANDReader(FreiHANDConfig(str(tmp_path), "train"))
    _write_fake(tmp_path)
    (tmp_path / "training_xyz.json").write_text(json.dumps(np.zeros((3, 21, 3)).tolist()))
    with pytest.raises(FreiHANDError, match="disagree"):
        FreiHANDReader(FreiHANDConfig(str(tmp_path), "train"))
    (tmp_path / "training_xyz.json").write_text("{broken")
    with pytest.raises(FreiHANDError, match="not valid JSON"):
        FreiHANDReader(FreiHANDConfig(str(tmp_path), "train"))
    with pytest.raises(FreiHANDError, match="split"):
        FreiHANDReader(FreiHANDConfig(str(tmp_path), "test"))


def test_index_out_of_range(fake):
    root, _ = fake
    reader = FreiHANDReader(FreiHANDConfig(str(root), "val"))
    with pytest.raises(IndexError):
        reader.view(len(reader))
