"""Held-out evaluation (models/handnet/evaluate.py): metrics against slow references, held-out checks, the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from models.data.synthetic_adapter import SynthAdapterConfig, open_stereo_source
from models.handnet.__main__ import main
from models.handnet.checkpoint import save_checkpoint
from models.handnet.config import handnet_preset
from models.handnet.evaluate import (
    HeldOutError,
    eval_loader,
    evaluate,
    hand_iou,
    mean_class_iou,
    mean_hand,
    open_eval_data,
    pa_error_mm,
    paired_difference,
    untrained_handnet,
)

TINY_NET = dataclasses.replace(handnet_preset("reduced"), width=0.125, crop_size=64, regressor_hidden=(64, 32))
HELD_OUT = {"count": 3, "seed": 5000, "window_size": 96}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """3 stand-in stereo pairs with pair seeds 5000..5002 (the smoke preset's data path)."""
    d = tmp_path_factory.mktemp("held_out")
    open_stereo_source(d, SynthAdapterConfig(**HELD_OUT), progress=False)
    return d


def _checkpoint(path, trained_seeds: tuple[int, int], seed: int = 0):
    """The untrained tiny net as a 'trained' checkpoint whose run trained on pair seeds (start, count)."""
    train = {"config": {"seed": seed, "data": {"synthetic": {"seed": trained_seeds[0], "count": trained_seeds[1]}}}}
    return save_checkpoint(path, untrained_handnet(TINY_NET, seed), {"name": "open", "mano_dir": ""}, train)


# ------------------------------------------------------------------------------------------------ metrics


def _slow_iou(prob, gt, threshold=0.5) -> float:
    inter = union = 0
    for p, g in zip(prob.ravel().tolist(), gt.ravel().tolist(), strict=True):
        inter += (p > threshold) and (g > threshold)
        union += (p > threshold) or (g > threshold)
    return 1.0 if union == 0 else inter / union


def test_hand_iou_matches_a_per_pixel_loop():
    rng = np.random.default_rng(0)
    prob = rng.random((5, 1, 9, 7)).astype(np.float32)
    gt = (rng.random((5, 1, 9, 7)) > 0.6).astype(np.float32)
    prob[3], gt[3] = 0.1, 0.0  # both empty -> 1
    gt[4] = 0.0  # predicted hand, none there -> 0
    got = hand_iou(prob, gt)
    want = [_slow_iou(p, g) for p, g in zip(prob, gt, strict=True)]
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert got[3] == 1.0 and got[4] == 0.0


def test_mean_class_iou_averages_hand_and_background():
    rng = np.random.default_rng(1)
    prob = rng.random((4, 8, 8))
    gt = (rng.random((4, 8, 8)) > 0.5).astype(np.float64)
    want = [(_slow_iou(p, g) + _slow_iou(p <= 0.5, g <= 0.5, 0.5)) / 2 for p, g in zip(prob, gt, strict=True)]
    np.testing.assert_allclose(mean_class_iou(prob, gt), want, atol=1e-12)


def _slow_pa_mm(pred: np.ndarray, target: np.ndarray) -> float:
    """FreiHAND eval.py's recipe, one sample: centre, Frobenius-normalise, Kabsch rotation + scale, mean error."""
    p, t = pred - pred.mean(0), target - target.mean(0)
    p_n, t_n = np.linalg.norm(p), np.linalg.norm(t)
    p, t = p / p_n, t / t_n
    U, S, Vt = np.linalg.svd(p.T @ t)
    d = np.sign(np.linalg.det(Vt.T @ U.T))
    D = np.diag([1.0, 1.0, d])
    R = Vt.T @ D @ U.T
    aligned = (S * np.diag(D)).sum() * p @ R.T * t_n + target.mean(0)
    return float(np.mean([np.linalg.norm(a - b) for a, b in zip(aligned, target, strict=True)]) * 1000)


def test_pa_error_matches_a_per_sample_reference():
    rng = np.random.default_rng(2)
    target = rng.normal(0, 0.05, (4, 30, 3))
    pred = target + rng.normal(0, 0.01, (4, 30, 3))
    got = pa_error_mm(torch.from_numpy(pred).float(), torch.from_numpy(target).float())
    want = [_slow_pa_mm(p, t) for p, t in zip(pred.astype(np.float32), target.astype(np.float32), strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert 1.0 < got.min()  # noise of 10 mm per axis does not vanish under alignment


def test_paired_difference_against_a_loop():
    a, b = np.array([1.0, 4.0, 2.0, 7.0]), np.array([2.0, 3.0, 2.5, 5.0])
    d = [x - y for x, y in zip(a, b, strict=True)]
    mean = sum(d) / 4
    se = (sum((x - mean) ** 2 for x in d) / 3) ** 0.5 / 2
    got = paired_difference(a, b)
    assert got["pa_mpve_mean_diff_mm"] == pytest.approx(mean) and got["pa_mpve_diff_se_mm"] == pytest.approx(se)
    assert got["a_better_fraction"] == 0.5


def test_pa_error_ignores_a_similarity_transform():
    rng = np.random.default_rng(3)
    target = torch.from_numpy(rng.normal(0, 0.05, (2, 21, 3)))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    R = torch.from_numpy(q * np.sign(np.linalg.det(q)))
    pred = 1.7 * target @ R.T + torch.tensor([0.1, -0.2, 0.5], dtype=torch.float64)
    assert pa_error_mm(pred, target).max() < 1e-6


# ------------------------------------------------------------------------------------------------ evaluation


def test_untrained_report_has_every_view_and_sane_values(held_out):
    report = evaluate(open_eval_data(held_out), config=TINY_NET, seed=0, batch_size=2)
    net = report["networks"]["untrained"]
    assert report["samples"] == 3 and "comparison" not in report
    for view in ("mono_left", "mono_right", "stereo"):
        assert 0 < net[view]["pa_mpve_mm"] < 200 and 0 < net[view]["pa_mpjpe_mm"] < 200
    for side in ("left", "right", "both"):
        assert 0 <= net["segmentation"][side]["iou"] <= 1


def test_checkpoint_of_the_initialisation_shows_no_reduction(held_out, tmp_path):
    """The untrained net is rebuilt from the checkpoint's seed: a checkpoint of that very init changes nothing."""
    ckpt = _checkpoint(tmp_path / "init.pt", (0, 100), seed=7)
    report = evaluate(open_eval_data(held_out), str(ckpt), batch_size=3)
    assert report["seed"] == 7 and "disjoint" in report["data"]["held_out"]
    assert "same generator settings" in report["data"]["held_out"]
    for view, reduction in report["comparison"]["pa_mpve_reduction"].items():
        assert abs(reduction) < 1e-6, view


def test_heatmaps_follow_the_checkpoint_training_record(held_out, tmp_path):
    """A net trained on sigma 2 / kernel 15 heatmaps is evaluated on those, not on the 5 / 49 default."""
    train = {"config": {"seed": 0, "data": {"synthetic": {"seed": 0, "count": 100}},
                        "augment": {"heatmap_sigma": 2.0, "heatmap_kernel": 15}}}
    ckpt = save_checkpoint(tmp_path / "s2.pt", untrained_handnet(TINY_NET, 0), {"name": "open", "mano_dir": ""}, train)
    report = evaluate(open_eval_data(held_out), str(ckpt), untrained=False, batch_size=3)
    assert "'heatmap_sigma': 2.0" in report["heatmaps"] and "'heatmap_kernel': 15" in report["heatmaps"]
    narrow = next(iter(eval_loader(open_eval_data(held_out).source, 64, 3, 1, {"heatmap_sigma": 2.0,
                                                                              "heatmap_kernel": 15})))
    wide = next(iter(eval_loader(open_eval_data(held_out).source, 64, 3, 1)))
    above_floor = [(b.left.heatmap > -0.9).float().mean() for b in (narrow, wide)]
    assert above_floor[0] < above_floor[1]  # narrower Gaussians light fewer pixels


def test_another_seed_is_another_network(held_out, tmp_path):
    ckpt = _checkpoint(tmp_path / "init.pt", (0, 100), seed=7)
    other = evaluate(open_eval_data(held_out), config=TINY_NET, seed=8, batch_size=3)["networks"]["untrained"]
    same = evaluate(open_eval_data(held_out), str(ckpt), batch_size=3)["networks"]["trained"]
    assert other["mono_left"]["pa_mpve_mm"] != same["mono_left"]["pa_mpve_mm"]


def test_overlapping_training_seeds_are_refused(held_out, tmp_path):
    ckpt = _checkpoint(tmp_path / "leak.pt", (4000, 1001))  # trained on seeds 4000..5000: pair 0 leaks
    with pytest.raises(HeldOutError, match="overlap"):
        evaluate(open_eval_data(held_out), str(ckpt))


def test_stand_in_set_has_only_a_val_split(held_out):
    with pytest.raises(HeldOutError, match="split val"):
        open_eval_data(held_out, "train")


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_writes_the_documented_keys(held_out, tmp_path, capsys):
    ckpt = _checkpoint(tmp_path / "net.pt", (0, 2000))
    out = tmp_path / "eval.json"
    rc = main(["evaluate", "--checkpoint", str(ckpt), "--data", str(held_out), "--split", "val",
               "--json", str(out), "--batch-size", "3"])
    assert rc == 0 and "PA-MPVE" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert {"data", "samples", "checkpoint", "seed", "crops", "heatmaps", "networks", "comparison"} <= set(report)
    assert set(report["networks"]) == {"untrained", "trained"}
    for net in report["networks"].values():
        assert {"mono_left", "mono_right", "stereo", "segmentation"} <= set(net)
        assert {"pa_mpve_mm", "pa_mpjpe_mm", "pa_mpve_median_mm"} <= set(net["stereo"])
        assert {"iou", "mean_class_iou"} <= set(net["segmentation"]["left"])
        assert {"pa_mpve_mean_diff_mm", "pa_mpve_diff_se_mm", "a_better_fraction"} <= set(net["stereo_minus_mono_left"])
    assert set(report["comparison"]["targets"]) == {"pa_mpve_reduction_ge_0.30", "seg_iou_ge_0.8",
                                                    "stereo_beats_mono", "stereo_beats_mono_by_2_se"}


def test_cli_errors_name_the_problem(held_out, tmp_path, capsys):
    assert main(["evaluate", "--data", str(held_out)]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "missing.pt"), "--data", str(held_out)]) == 2
    assert "not found" in capsys.readouterr().err


def test_mean_hand_baseline_averages_the_labels(held_out, tmp_path, capsys):
    source = open_eval_data(held_out).source
    pose, shape = mean_hand(source)
    poses = [source.pair(i).right.pose for i in range(len(source))]
    want = sum(p[3:].astype(np.float64) for p in poses) / len(poses)
    np.testing.assert_allclose(pose[3:].numpy(), want, atol=1e-6)
    assert pose[:3].abs().max() == 0
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--untrained", "--data", str(held_out), "--mean-from", str(held_out),
                 "--json", str(out), "--batch-size", "3"]) == 0
    baseline = json.loads(out.read_text())["baselines"]["mean_hand"]
    assert 0 < baseline["pa_mpve_mm"] < 100 and 0 < baseline["pa_mpjpe_mm"] < 100
