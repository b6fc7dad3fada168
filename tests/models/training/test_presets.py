"""Tests for models/training/presets.py, config.py and the CLI's argument handling (models/train.py)."""

from __future__ import annotations

import pytest

from app.config import ConfigError
from models.train import main as train_main
from models.train import parse_sets
from models.training.config import TrainConfig
from models.training.datasets import data_kind
from models.training.presets import PRESETS, load_train_config


def test_presets_build():
    thesis = load_train_config("thesis")
    assert thesis.stages.image.epochs == 120 and thesis.stages.finalize.decay_epochs == 100
    assert thesis.optim.lr == 2e-4 and (thesis.optim.beta1, thesis.optim.beta2) == (0.9, 0.99)
    assert thesis.mano_loss.joints2d == 100 and thesis.augment.heatmap_dropout == 0.3
    smoke, learn = load_train_config("smoke"), load_train_config("cpu-learn")
    assert smoke.handnet.width == 0.25 and smoke.device == "cpu"
    assert learn.data.synthetic.count >= 2000 and learn.handnet.width == smoke.handnet.width == 0.25
    assert learn.handnet.crop_size == learn.augment.crop_size == 128 and learn.augment.heatmap_kernel % 2 == 1
    assert set(PRESETS) == {"thesis", "smoke", "cpu-learn"}


def test_yaml_base_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("base: smoke\noptim: {batch_size: 6}\nstages: {image: {epochs: 2, decay_epochs: 1}}\n")
    cfg = load_train_config(str(path), {"optim.lr": "1e-3", "handnet.blocks": "1,2,2,1"})
    assert cfg.optim.batch_size == 6 and cfg.optim.lr == 1e-3 and cfg.stages.image.epochs == 2
    assert cfg.handnet.blocks == (1, 2, 2, 1) and cfg.handnet.width == 0.25


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="optim.batchsize"):
        load_train_config("smoke", {"optim.batchsize": "3"})
    with pytest.raises(ConfigError, match="not a preset"):
        load_train_config("nonsense")
    with pytest.raises(ConfigError, match="crop_size"):
        load_train_config("smoke", {"augment.crop_size": "128"})
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_sets(["optim.lr"])
    with pytest.raises(ValueError, match="crop_size"):
        TrainConfig(augment=TrainConfig().augment.__class__(crop_size=96))


def test_data_kind(tmp_path):
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "training_K.json").write_text("[]")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "meta.json").write_text("{}")
    assert data_kind(tmp_path / "f") == "freihand" and data_kind(tmp_path / "s") == "synthetic"
    with pytest.raises(ValueError, match="neither"):
        data_kind(tmp_path)


def test_cli_reports_bad_input(tmp_path, capsys):
    assert train_main(["--config", "smoke", "--out", str(tmp_path), "--set", "optim.nope=1"]) == 2
    assert "optim.nope" in capsys.readouterr().err
    assert train_main(["--config", "smoke", "--out", str(tmp_path), "--resume", str(tmp_path / "x.pt"),
                       "--set", "data.generate_synthetic=false", "--data", str(tmp_path)]) == 2
    assert "neither a FreiHAND root" in capsys.readouterr().err
