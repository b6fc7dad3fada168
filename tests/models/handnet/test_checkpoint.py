"""Tests for models/handnet/checkpoint.py: round trip, and clear errors for bad files."""

from __future__ import annotations

import pytest
import torch

from models.handnet import HandNetConfig, build_handnet
from models.handnet.checkpoint import (
    CHECKPOINT_VERSION,
    CheckpointError,
    load_checkpoint,
    load_handnet,
    save_checkpoint,
)

torch.set_num_threads(1)

TINY = HandNetConfig(width=0.125, blocks=(1, 1, 1, 1), crop_size=64, regressor_hidden=(64, 32))
HAND = {"name": "open", "mano_dir": ""}


@pytest.fixture
def saved(tmp_path):
    net = build_handnet(TINY)
    return save_checkpoint(tmp_path / "a.pt", net, HAND, {"stage_index": 2, "epoch": 1}), net


def test_round_trip(saved):
    path, net = saved
    loaded, ckpt = load_handnet(path)
    assert ckpt.config == TINY and ckpt.hand_model == HAND and ckpt.train["stage_index"] == 2
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in net.state_dict().items())
    assert not loaded.training
    assert not (path.parent / "a.pt.tmp").exists()


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_truncated_file(saved):
    path, _ = saved
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "g.pt"
    path.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


def test_foreign_torch_file(tmp_path):
    path = tmp_path / "f.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="not a HandNet checkpoint"):
        load_checkpoint(path)


def test_newer_version(saved):
    path, _ = saved
    data = torch.load(path, weights_only=True)
    data["format_version"] = CHECKPOINT_VERSION + 1
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="format version"):
        load_checkpoint(path)


def test_bad_config(saved):
    path, _ = saved
    data = torch.load(path, weights_only=True)
    data["handnet_config"]["width"] = -1
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="handnet_config"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_config(saved):
    path, _ = saved
    data = torch.load(path, weights_only=True)
    data["handnet_config"]["width"] = 0.25  # the stored weights are 0.125-wide
    del data["model"]["stereo.fc.bias"]
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="missing.*wrong shape"):
        load_handnet(path)
