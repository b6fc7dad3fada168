import sys

import pytest

from app.config import AppConfig, ConfigError, ReconstructionSettings
from app.pipeline.build import checkpoint_note, optional_module, resolve_device, with_checkpoint_inputs


def test_optional_module_missing_gives_none():
    assert optional_module("app.no_such_package.module") is None
    assert optional_module("json") is sys.modules["json"]


def test_optional_module_reraises_a_broken_import_inside_an_existing_module(tmp_path, monkeypatch):
    pkg = tmp_path / "brokenpkg_rh"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import no_such_dependency_rh\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_rh"):
        optional_module("brokenpkg_rh")


def test_resolve_device():
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--device cuda: torch sees no CUDA device.*--device cpu"):
            resolve_device("cuda")


def test_checkpoint_note_says_handnet_initialises():
    assert checkpoint_note("") is None
    assert "HandNet initialises the hands" in checkpoint_note("w.pt")
    cfg = AppConfig(reconstruction=ReconstructionSettings(checkpoint="w.pt"))
    assert cfg.reconstruction.checkpoint == "w.pt"


def test_a_bad_checkpoint_is_a_config_error(tmp_path):
    from app.pipeline.build import build_handnet_initialiser

    bad = tmp_path / "w.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="--checkpoint .*w.pt"):
        build_handnet_initialiser(str(bad), "cpu", fitter=None, segment=True)
    with pytest.raises(ConfigError, match="--checkpoint .*missing.pt"):
        build_handnet_initialiser(str(tmp_path / "missing.pt"), "cpu", fitter=None, segment=False)



def test_detection_follows_the_checkpoint_inputs(tmp_path):
    """Crops at the network's input size, heatmaps with the Gaussian it was trained on; no checkpoint: unchanged."""
    from models.handnet.checkpoint import save_checkpoint
    from models.handnet.config import HandNetConfig
    from models.handnet.net import build_handnet

    train = {"config": {"augment": {"heatmap_sigma": 3.0, "heatmap_kernel": 29}}}
    path = save_checkpoint(tmp_path / "w.pt", build_handnet(HandNetConfig(
        width=0.125, blocks=(1, 1, 1, 1), crop_size=128, regressor_hidden=(64, 32))), {"name": "open"}, train)
    cfg = with_checkpoint_inputs(AppConfig(reconstruction=ReconstructionSettings(checkpoint=str(path))))
    assert (cfg.detection.crop_size, cfg.detection.heatmap_sigma, cfg.detection.heatmap_kernel) == (128, 3.0, 29)
    assert with_checkpoint_inputs(AppConfig()) == AppConfig()
    missing = AppConfig(reconstruction=ReconstructionSettings(checkpoint=str(tmp_path / "nothing.pt")))
    with pytest.raises(ConfigError, match="--checkpoint .*nothing.pt"):
        with_checkpoint_inputs(missing)
