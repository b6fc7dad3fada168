"""The texture benchmark end to end on a short synthetic sequence (ground-truth pose), its scores, and the
torch reference's compiled kernels against its eager ones (slow: torch.compile; set REALHANDS_SLOW_TESTS=1)."""

import json
import os

import numpy as np
import pytest
import torch

from app.texture.__main__ import main
from app.texture.bench import gain_corrected, psnr_db

torch.set_num_threads(1)


def test_psnr_and_gain_correction():
    truth = np.full((10, 3), 0.5)
    assert psnr_db(truth + 0.1, truth) == pytest.approx(20.0)
    np.testing.assert_allclose(gain_corrected(truth * 0.8, truth), truth)


def test_bench_cli_on_a_short_sequence(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--json", str(out), "--gt-pose", "--frames", "3", "--size", "256"]) == 0
    result = json.loads(out.read_text())
    assert result["frames_textured"] == 3 and result["pose"] == "gt"
    assert result["psnr_db"] > 25.0
    assert 0.1 < result["coverage"] < 1.0
    assert result["ms_per_update"] > 0 and result["ms_per_update_p95"] >= result["ms_per_update"]
    from PIL import Image

    assert Image.open(out.with_suffix(".png")).size == (512, 256)
    assert "psnr_db" in capsys.readouterr().out


@pytest.mark.skipif(not os.environ.get("REALHANDS_SLOW_TESTS"), reason="torch.compile takes a minute; set "
                    "REALHANDS_SLOW_TESTS=1")
def test_compiled_kernels_match_eager(hand_model, open_scene):
    from app.texture.accumulator import TextureAccumulator
    from app.texture.config import TextureConfig

    textures = []
    for compiled in (False, True):
        acc = TextureAccumulator(TextureConfig(size=128, kernels="torch", compile=compiled), hand_model)
        acc.update(open_scene.mesh, open_scene.frame)
        textures.append(acc.update(open_scene.mesh, open_scene.frame))
        if compiled:
            assert not any(getattr(k, "failed", False) for k in vars(acc.kernels).values())
    np.testing.assert_allclose(textures[0].rgb, textures[1].rgb, atol=1e-5)
    np.testing.assert_array_equal(textures[0].weight, textures[1].weight)
