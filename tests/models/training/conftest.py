"""Shared fixtures of the training tests: a tiny rendered synthetic stereo set and a tiny run configuration."""

from __future__ import annotations

import pytest
import yaml

from models.data.synthetic_adapter import SynthAdapterConfig, open_stereo_source

TINY_SYNTH = {"count": 8, "seed": 3, "window_size": 96}


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
    """A rendered 8-pair synthetic stereo set (96 px windows)."""
    d = tmp_path_factory.mktemp("synthetic")
    open_stereo_source(d, SynthAdapterConfig(**TINY_SYNTH), progress=False)
    return d


@pytest.fixture
def tiny_config(tmp_path, tiny_synthetic):
    """tiny_config(**stage_epochs) -> path of a YAML run config: 64 px tiny HandNet, batch 4, 3 steps/epoch,
    only the stages given (name=(epochs, decay)) enabled."""

    def make(name: str = "cfg.yaml", **stages) -> str:
        names = ("image", "keypoint", "fusion", "finalize", "segmentation", "synthetic_adaption", "stereo")
        data = {
            "base": "smoke",
            "handnet": {"width": 0.125, "crop_size": 64, "regressor_hidden": [64, 32]},
            "augment": {"crop_size": 64, "heatmap_kernel": 15, "heatmap_sigma": 2.0},
            "stages": {n: dict(zip(("epochs", "decay_epochs"), stages.get(n, (0, 0)), strict=True)) for n in names},
            "optim": {"batch_size": 4, "max_steps_per_epoch": 3},
            "data": {"synthetic_dir": str(tiny_synthetic), "synthetic": TINY_SYNTH, "num_workers": 0},
            "progress": False,
        }
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data))
        return str(path)

    return make
