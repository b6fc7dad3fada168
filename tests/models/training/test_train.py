"""End-to-end tests of models/train.py and models/training/loop.py: the smoke preset learns, runs resume."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from models.handnet.checkpoint import CheckpointError, load_checkpoint
from models.handnet.runner import build_handnet_runner
from models.train import main as train_main

torch.set_num_threads(1)

STAGES = ["image", "keypoint", "fusion", "finalize", "segmentation", "synthetic_adaption", "stereo"]


@pytest.mark.slow
def test_smoke_preset_trains_every_stage_and_the_loss_falls(tmp_path):
    out = tmp_path / "smoke"
    assert train_main(["--config", "smoke", "--out", str(out), "--no-progress"]) == 0
    for name in ("handnet.pt", "last.pt", "steps.csv", "history.json", "loss.png", "synthetic/meta.json"):
        assert (out / name).is_file(), name
    epochs = json.loads((out / "history.json").read_text())["epochs"]
    assert [e["stage"] for e in epochs] == ["image"] * 4 + STAGES[1:]
    image = [e["loss"] for e in epochs if e["stage"] == "image"]
    assert image[-1] < 0.8 * image[0], image
    ckpt = load_checkpoint(out / "handnet.pt")
    assert ckpt.config.width == 0.25 and ckpt.train["stage"] == "stereo"
    build_handnet_runner(str(out / "handnet.pt"), "cpu")


def test_resume_continues_where_it_stopped(tmp_path, tiny_config):
    first = tiny_config("first.yaml", image=(1, 1))
    assert train_main(["--config", first, "--out", str(tmp_path), "--no-progress"]) == 0
    done = load_checkpoint(tmp_path / "last.pt").train
    assert (done["stage"], done["epoch"], done["global_step"]) == ("image", 1, 3)
    longer = tiny_config("longer.yaml", image=(2, 1), keypoint=(1, 0))
    assert train_main(["--config", longer, "--out", str(tmp_path), "--resume", str(tmp_path / "last.pt")]) == 0
    history = json.loads((tmp_path / "history.json").read_text())["epochs"]
    assert [(e["stage"], e["epoch"]) for e in history] == [("image", 0), ("image", 1), ("keypoint", 0)]
    assert load_checkpoint(tmp_path / "handnet.pt").train["global_step"] == 9


def test_resume_rejects_another_network(tmp_path, tiny_config, capsys):
    cfg = tiny_config(image=(1, 1))
    assert train_main(["--config", cfg, "--out", str(tmp_path)]) == 0
    other = tiny_config("other.yaml", image=(1, 1))
    text = (tmp_path / "other.yaml").read_text().replace("width: 0.125", "width: 0.25")
    (tmp_path / "other.yaml").write_text(text)
    assert train_main(["--config", other, "--out", str(tmp_path / "b"), "--resume", str(tmp_path / "last.pt")]) == 2
    assert "resume with the run's own config" in capsys.readouterr().err
    (tmp_path / "last.pt").write_bytes(b"broken")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "last.pt")


def test_a_stage_lr_scale_multiplies_the_learning_rate(tmp_path, tiny_config):
    """image at the base lr, keypoint at 0.1 x (no decay): the logged per-step lr shows both."""
    path = tiny_config(image=(1, 0), keypoint=(1, 0))
    text = (tmp_path / "cfg.yaml").read_text()
    (tmp_path / "cfg.yaml").write_text(text.replace("keypoint:\n    decay_epochs: 0\n    epochs: 1",
                                                    "keypoint:\n    decay_epochs: 0\n    epochs: 1\n    lr_scale: 0.1"))
    assert "lr_scale: 0.1" in (tmp_path / "cfg.yaml").read_text()
    assert train_main(["--config", path, "--out", str(tmp_path / "run"), "--no-progress", "--set", "log_every=1",
                       "--set", "optim.lr=0.001"]) == 0
    with open(tmp_path / "run" / "steps.csv") as f:
        lrs = sorted({(row["stage"], round(float(row["lr"]), 9)) for row in csv.DictReader(f)})
    assert lrs == [("image", 1e-3), ("keypoint", 1e-4)]
