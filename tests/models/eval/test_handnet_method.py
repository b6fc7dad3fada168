"""The handnet / handnet+refine evaluation methods with a tiny randomly initialised checkpoint (saved through the
project's checkpoint format) on the toy samples of conftest.py. MediaPipe finds nothing on the toy's black images,
so the detections are given: the ground-truth keypoints stand in for MediaPipe's."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from app.config import HandModelConfig
from app.detection.crop import crop_intrinsics
from app.detection.mediapipe_hands import RawHand
from app.detection.stereo import crop_and_heatmap, make_detection
from app.pipeline.refinement import rescale_affine, resize_mask
from app.types import HandObservation
from models import evaluate
from models.eval import datasets
from models.eval.fit_methods import SeenView
from models.eval.handnet_method import HandNetEvalError, HandNetMethod
from models.eval.methods import MethodOptions
from models.eval.metrics import evaluate_sample
from models.hand_model import build_hand_model
from models.handnet.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from models.handnet.config import HandNetConfig
from models.handnet.net import build_handnet

torch.set_num_threads(1)
TINY = HandNetConfig(width=0.125, crop_size=64, regressor_hidden=(64, 32))
OPEN = {"name": "open", "mano_dir": ""}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> str:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("handnet") / "tiny.pt"
    return str(save_checkpoint(path, build_handnet(TINY), OPEN))


@pytest.fixture
def hand_sample(toy_sample):
    """hand_sample(i): toy sample i with a full open-hand mesh (778 vertices, the flat hand 0.45 m ahead) as the
    vertex ground truth."""
    with torch.no_grad():
        verts = build_hand_model(HandModelConfig(mano_dir=""))(torch.zeros(1, 48), torch.zeros(1, 10)).verts_m[0]
    verts = verts.double().numpy() + [0.0, 0.0, 0.45]
    return lambda i: dataclasses.replace(toy_sample(i), verts_cam_m=verts)


def given_detection(method: HandNetMethod, sample, views=(0, 1)):
    """(HandObservation with network inputs of the given views, the left view's RawHand or None)."""
    dets, crops, heats = [None, None], [], []
    for v in views:
        dets[v] = make_detection(sample.uv_px[v].astype(np.float32), 0.9, "right", method.det_cfg)
        crop, heat = crop_and_heatmap(sample.images[v], dets[v], method.det_cfg)
        crops.append(crop)
        heats.append(heat)
    obs = HandObservation(0, 0, dets[0], dets[1], None, None, False, tuple(crops), tuple(heats))
    raw = RawHand(sample.uv_px[0].astype(np.float32), 0.9, "right") if 0 in views else None
    return obs, raw


@pytest.fixture(scope="module")
def methods(tiny_checkpoint):
    plain = HandNetMethod(MethodOptions(checkpoint=tiny_checkpoint), refine=False)
    refine = HandNetMethod(MethodOptions(checkpoint=tiny_checkpoint, iterations=2), refine=True)
    yield plain, refine
    plain.close()
    refine.close()


def test_network_inputs_follow_the_checkpoint_crop_size(methods, hand_sample):
    plain, _ = methods
    assert plain.det_cfg.network_inputs and plain.det_cfg.crop_size == 64
    obs, _ = given_detection(plain, hand_sample(0))
    assert obs.crops[0].shape == (64, 64, 3) and obs.heatmaps[1].shape == (21, 64, 64)


def test_heatmaps_follow_the_checkpoint_training_record(tmp_path):
    """A checkpoint trained with sigma 15 / kernel 127 heatmaps is evaluated on the same heatmaps."""
    train = {"config": {"augment": {"heatmap_sigma": 15.0, "heatmap_kernel": 127, "rotate": True}}}
    path = save_checkpoint(tmp_path / "s15.pt", build_handnet(TINY), OPEN, train)
    assert load_checkpoint(path).network_inputs() == {"crop_size": 64, "heatmap_sigma": 15.0, "heatmap_kernel": 127}
    bare = save_checkpoint(tmp_path / "bare.pt", build_handnet(TINY), OPEN)
    assert load_checkpoint(bare).network_inputs() == {"crop_size": 64}
    method = HandNetMethod(MethodOptions(checkpoint=str(path)), refine=False)
    try:
        assert (method.det_cfg.heatmap_sigma, method.det_cfg.heatmap_kernel) == (15.0, 127)
    finally:
        method.close()


def test_stereo_and_mono_predictions_are_scored_as_mesh_methods(methods, hand_sample, monkeypatch):
    sample = hand_sample(0)
    for method in methods:
        monkeypatch.setattr(method, "_observe_stereo", lambda s, m=method: given_detection(m, s))
        pred = method(sample)
        r = evaluate_sample(sample, pred, needs_3d=True)
        assert r.detected and r.mono.detected
        assert pred.verts_cam_m.shape == (778, 3) and len(pred.uv_px) == 2 and len(pred.mono.uv_px) == 1
        assert np.isfinite(r.mesh.pa_mpve_mm) and np.isfinite(r.mono.mesh.pa_mpve_mm)
        assert 0.0 <= r.mesh.iou_before <= 1.0 and 0.0 <= r.mesh.iou_after <= 1.0
        if method.refine is None:
            assert r.mesh.iou_before == r.mesh.iou_after and not pred.refine_diverged


def test_one_detected_view_runs_the_mono_network_on_it(methods, hand_sample, monkeypatch):
    plain, _ = methods
    sample = hand_sample(1)
    monkeypatch.setattr(plain, "_observe_stereo", lambda s: given_detection(plain, s, views=(1,)))
    pred = plain(sample)
    r = evaluate_sample(sample, pred, needs_3d=True)
    assert r.detected and all(uv.shape == (21, 2) for uv in pred.uv_px)
    assert pred.mono.uv_px == (None,) and not r.mono.detected  # the left view saw nothing


def test_refinement_targets_are_the_network_masks(methods, hand_sample):
    _, refine = methods
    sample = hand_sample(2)
    obs, _ = given_detection(refine, sample)
    pred = refine.runner.predict(obs, sample.calibration, segment=True)
    for name, img, vp in zip(("left", "right"), sample.images, pred.views, strict=True):
        view = SeenView(img, getattr(obs, name), getattr(sample.calibration, name))
        target = refine.refine.targets.mask_target(vp.mask, view.det, view)
        assert target.mask.shape == (refine.refine.targets.size_px,) * 2
        np.testing.assert_allclose(target.mask, resize_mask(vp.mask, refine.refine.targets.size_px))
        K = crop_intrinsics(view.K, rescale_affine(view.det.crop_from_image, refine.refine.targets.scale))
        np.testing.assert_allclose(target.K, K)


def test_resize_mask_keeps_values_and_the_pixel_grid():
    m = np.zeros((64, 64), np.float32)
    m[16:48, 8:40] = 1.0
    small = resize_mask(m, 32)
    assert small.shape == (32, 32) and small.dtype == np.float32
    assert small[8:24, 4:20].min() == 1.0 and small.sum() == pytest.approx(m.sum() / 4)
    assert resize_mask(np.full((64, 64), 0.3, np.float32), 112) == pytest.approx(0.3)


def test_a_mono_sample_runs_the_single_view_network(methods, hand_sample, monkeypatch):
    plain, _ = methods
    s = hand_sample(3)
    mono = dataclasses.replace(s, images=s.images[:1], uv_px=s.uv_px[:1], masks=s.masks[:1], calibration=None)
    monkeypatch.setattr(plain, "_mono_raw", lambda smp: RawHand(smp.uv_px[0].astype(np.float32), 0.9, "left"))
    pred = plain(mono)
    r = evaluate_sample(mono, pred, needs_3d=True)
    assert r.detected and pred.mono is None and np.isfinite(r.mesh.pa_mpve_mm)


def test_a_checkpoint_of_another_hand_model_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "mano.pt", build_handnet(TINY), {"name": "mano", "mano_dir": "/x"})
    with pytest.raises(HandNetEvalError, match="hand model"):
        HandNetMethod(MethodOptions(checkpoint=str(path)), refine=False)


def test_no_checkpoint_is_refused():
    with pytest.raises(HandNetEvalError, match="--checkpoint"):
        HandNetMethod(MethodOptions(), refine=True)


@pytest.fixture
def toy_registry(monkeypatch, hand_sample):
    monkeypatch.setitem(datasets.DATASETS, "toy", lambda root, limit: (hand_sample(i) for i in range(limit or 3)))
    monkeypatch.setattr(HandNetMethod, "_observe_stereo", lambda self, s: given_detection(self, s))


@pytest.mark.parametrize("method", ["handnet", "handnet+refine"])
def test_cli_writes_the_mesh_method_json(tmp_path, toy_registry, tiny_checkpoint, method):
    out = tmp_path / f"{method}.json"
    rc = evaluate.main(["--dataset", "toy", "--root", str(tmp_path), "--method", method, "--checkpoint",
                        tiny_checkpoint, "--iterations", "1", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["n"] == 3 and res["detection_rate"] == 1.0
    for key in ("pa_mpjpe_mm", "pa_mpve_mm", "f5", "f15", "auc", "iou_before", "iou_after", "mpjpe_mm"):
        assert res[key] is not None and np.isfinite(res[key]), key
    assert res["mono"]["detection_rate"] == 1.0 and np.isfinite(res["mono"]["pa_mpve_mm"])


def _corrupt(tmp_path, ckpt):
    p = tmp_path / "corrupt.pt"
    p.write_bytes(b"\x80\x02not a torch file\n\nsecond line")
    return p


def _mismatched(tmp_path, ckpt):
    data = torch.load(ckpt, weights_only=True)
    data["model"].pop("regressor.pose.weight")
    p = tmp_path / "mismatched.pt"
    torch.save(data, p)
    return p


@pytest.mark.parametrize("make,expected", [
    (lambda tmp, ckpt: tmp / "missing.pt", "not found"),
    (_corrupt, "corrupt"),
    (_mismatched, "do not fit"),
    (lambda tmp, ckpt: "", "needs --checkpoint"),
])
def test_cli_bad_checkpoints_are_one_line_errors(tmp_path, toy_registry, tiny_checkpoint, capsys, make, expected):
    path = make(tmp_path, tiny_checkpoint)
    rc = evaluate.main(["--dataset", "toy", "--root", str(tmp_path), "--method", "handnet", "--checkpoint",
                        str(path), "--json", str(tmp_path / "x.json")])
    err = capsys.readouterr().err
    assert rc == 2 and expected in err and err.count("\n") == 1 and err.startswith("error: ")
    assert not (tmp_path / "x.json").exists()


def test_checkpoint_errors_are_value_errors():
    assert issubclass(CheckpointError, ValueError) and issubclass(HandNetEvalError, ValueError)
