"""torchrun with 2 CPU processes (gloo) trains exactly like one process on the same global batches.

Both runs train the image stage (batch norm in training mode: the hard case) and the stereo stage of a tiny
HandNet from the same seed for 3 + 2 steps of global batch 4; the logged global-batch losses and the final
weights must agree to float rounding.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models.training.distributed import DistInfo, GlobalBatchNorm2d, global_mean, sync_batchnorm

ROOT = Path(__file__).resolve().parents[3]


def _run(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _losses(out: Path) -> list[float]:
    return [float(r["loss"]) for r in csv.DictReader(open(out / "steps.csv"))]


@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path, tiny_config):
    cfg = tiny_config(image=(1, 1), stereo=(1, 0))
    _run(["-m", "models.train", "--config", cfg, "--out", str(tmp_path / "one")], ROOT)
    _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "models.train",
          "--config", cfg, "--out", str(tmp_path / "two")], ROOT)
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(one) == len(two) == 5
    assert one == pytest.approx(two, rel=1e-5)
    a = torch.load(tmp_path / "one" / "handnet.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "two" / "handnet.pt", weights_only=True)["model"]
    start = torch.load(tmp_path / "one" / "stage0-image.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].is_floating_point())
    moved = max(float((a[k].float() - start[k].float()).abs().max()) for k in a if a[k].is_floating_point())
    assert diff < 1e-5 and moved > 1e-4  # training changed the weights (stereo stage), identically in both


def test_single_process_fallbacks():
    bn = GlobalBatchNorm2d(3)
    x = torch.randn(4, 3, 5, 5)
    assert torch.allclose(bn(x), torch.nn.functional.batch_norm(x, None, None, training=True), atol=1e-5)
    net = sync_batchnorm(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.BatchNorm2d(3)), torch.device("cpu"))
    assert isinstance(net[1], GlobalBatchNorm2d)
    assert float(global_mean(torch.tensor(2.5), DistInfo())) == 2.5
