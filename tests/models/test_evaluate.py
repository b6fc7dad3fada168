import json
from pathlib import Path

import numpy as np
import pytest

from calibration.rig import make_stereo
from models import evaluate
from models.eval import datasets, methods
from models.eval.metrics import PCK_2D_THRESHOLDS_PX, auc, evaluate_sample, pck_curve, summarise
from models.eval.samples import EvalSample, Prediction

REALWORLD = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / \
    "hand-graph-cnn_real_world_testset"


def _stereo_sample(i: int) -> EvalSample:
    K = np.array([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]])
    calib = make_stereo(K, np.zeros(5), K, np.zeros(5), np.eye(3), [-0.06, 0, 0], (64, 64), rectified=True)
    xyz = np.random.default_rng(i).uniform([-0.05, -0.05, 0.4], [0.05, 0.05, 0.5], size=(21, 3))
    uv = [(np.c_[xyz, np.ones(21)] @ P.T) for P in (calib.left.P, calib.right.P)]
    uv = tuple(u[:, :2] / u[:, 2:] for u in uv)
    img = np.zeros((64, 64, 3), np.uint8)
    return EvalSample(sample_id=f"s{i}", images=(img, img), uv_px=uv, K=K, xyz_cam_m=xyz, calibration=calib)


class _OffsetMethod:
    """Ground truth shifted by 1 px in u and 5 mm in x; misses every fourth sample."""

    def __init__(self, opts):
        self.calls = 0

    def __call__(self, sample):
        self.calls += 1
        if self.calls % 4 == 0:
            return Prediction(uv_px=(None, None))
        return Prediction(uv_px=tuple(u + [1.0, 0.0] for u in sample.uv_px),
                          xyz_cam_m=sample.xyz_cam_m + [0.005, 0.0, 0.0])

    def close(self):
        pass


@pytest.fixture
def fake_registry(monkeypatch):
    monkeypatch.setitem(datasets.DATASETS, "fake_stereo", lambda root, limit: (_stereo_sample(i)
                                                                               for i in range(limit or 8)))
    monkeypatch.setitem(methods.METHODS, "offset", methods.MethodSpec(_OffsetMethod, True, True))


def test_cli_writes_json_csv_and_plot_for_a_3d_method(tmp_path, fake_registry):
    out = tmp_path / "res" / "fake.json"
    rc = evaluate.main(["--dataset", "fake_stereo", "--root", str(tmp_path), "--method", "offset",
                        "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["n"] == 8 and res["detection_rate"] == pytest.approx(0.75)
    assert res["median_2d_error_px"] == pytest.approx(1.0) and res["mean_2d_error_px"] == pytest.approx(1.0)
    assert res["mpjpe_mm"] == pytest.approx(5.0, abs=1e-6)
    assert res["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-4)  # a pure translation aligns away
    rows = (tmp_path / "res" / "fake_samples.csv").read_text().splitlines()
    assert rows[0].startswith("sample_id,detected") and len(rows) == 9
    assert (tmp_path / "res" / "fake_pck.png").stat().st_size > 1000


def test_synthetic_root_without_a_set_is_a_clear_error(tmp_path, capsys):
    rc = evaluate.main(["--dataset", "synthetic", "--root", str(tmp_path), "--method", "triangulate",
                        "--json", str(tmp_path / "x.json")])
    assert rc == 2
    assert "dataset.json not found" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_realworld_root_without_annotations_is_a_clear_error(tmp_path, capsys):
    rc = evaluate.main(["--dataset", "realworld", "--root", str(tmp_path), "--method", "mediapipe",
                        "--json", str(tmp_path / "x.json")])
    assert rc == 2 and "annotations.json not found" in capsys.readouterr().err


def test_metrics_of_exact_and_missing_predictions():
    s = _stereo_sample(0)
    exact = evaluate_sample(s, Prediction(uv_px=s.uv_px, xyz_cam_m=s.xyz_cam_m), needs_3d=True)
    assert exact.detected and exact.err_2d_px == 0 and exact.err_3d_mm == pytest.approx(0, abs=1e-9)
    mono_miss = evaluate_sample(s, Prediction(uv_px=(s.uv_px[0], None)), needs_3d=False)
    assert not mono_miss.detected
    summary = summarise([exact, mono_miss], needs_3d=True, n_views=2)
    assert summary["detection_rate"] == 0.5 and summary["mpjpe_mm"] == pytest.approx(0, abs=1e-9)
    curve = pck_curve([exact.joint_err_px, None], 42, PCK_2D_THRESHOLDS_PX)
    np.testing.assert_allclose(curve, 0.5)
    assert auc(PCK_2D_THRESHOLDS_PX, curve) == pytest.approx(0.5)


def test_dropped_3d_joints_are_left_out_of_the_mean():
    s = _stereo_sample(1)
    pred = s.xyz_cam_m + [0.0, 0.0, 0.01]
    pred[3] = np.nan
    r = evaluate_sample(s, Prediction(uv_px=s.uv_px, xyz_cam_m=pred), needs_3d=True)
    assert r.err_3d_mm == pytest.approx(10.0) and np.isnan(r.joint_err_mm[3])


@pytest.mark.skipif(not REALWORLD.is_dir(), reason=f"needs the shared real data at {REALWORLD} "
                                                   "(absent: a fresh clone has no ../shared)")
def test_realworld_mediapipe_on_a_few_images(tmp_path):
    out = tmp_path / "rw.json"
    rc = evaluate.main(["--dataset", "realworld", "--root", str(REALWORLD), "--method", "mediapipe",
                        "--json", str(out), "--limit", "4"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["n"] == 4 and res["detection_rate"] == 1.0 and res["median_2d_error_px"] < 12.0
    assert "mpjpe_mm" not in res


@pytest.mark.skipif(not REALWORLD.is_dir(), reason=f"needs the shared real data at {REALWORLD}")
def test_realworld_annotations_are_read_in_metres():
    (s,) = datasets.read_dataset("realworld", REALWORLD, limit=1)
    assert s.tight_crop and not s.is_stereo and s.images[0].shape == (256, 256, 3)
    uv = s.xyz_cam_m @ s.K.T
    np.testing.assert_allclose(uv[:, :2] / uv[:, 2:], s.uv_px[0], atol=0.01)  # K_crop projects xyz to uv
    assert 0.25 < s.xyz_cam_m[0, 2] < 0.5


def test_triangulate_needs_stereo(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(datasets.DATASETS, "fake_mono", lambda root, limit: iter(
        [EvalSample("m", (np.zeros((8, 8, 3), np.uint8),), (np.zeros((21, 2)),), np.eye(3))]))
    monkeypatch.setitem(methods.METHODS, "offset", methods.MethodSpec(_OffsetMethod, True, True))
    rc = evaluate.main(["--dataset", "fake_mono", "--root", str(tmp_path), "--method", "offset",
                        "--json", str(tmp_path / "x.json")])
    assert rc == 2 and "needs a stereo dataset" in capsys.readouterr().err


def test_pad_image_places_crop_in_the_middle():
    img = np.full((4, 6, 3), 7, np.uint8)
    out = methods.pad_image(img, 3)
    assert out.shape == (10, 12, 3) and out[3:7, 3:9].min() == 7 and out.sum() == img.sum()


PHOTO = REALWORLD.parent / "mediapipe_samples_test_assets" / "hand_landmarker_android_test_image.jpg"


@pytest.mark.skipif(not PHOTO.is_file(), reason=f"needs {PHOTO} (the shared real data)")
def test_stereo_methods_on_a_shifted_real_photo():
    """The plumbing a stereo dataset will use: a real photo as the left view, shifted by 150 px as the right
    view of a rectified rig (f 500 px, baseline 63 mm -> depth 0.21 m). GT 2D = the hand's rough location."""
    import cv2

    img = cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    right = np.zeros_like(img)
    right[:, :w - 150] = img[:, 150:]
    K = np.array([[500.0, 0, w / 2], [0, 500.0, h / 2], [0, 0, 1]])
    calib = make_stereo(K, np.zeros(5), K, np.zeros(5), np.eye(3), [-0.063, 0, 0], (w, h), rectified=True)
    gt = np.tile([[250.0, 260.0]], (21, 1))
    sample = EvalSample("photo", (img, right), (gt, gt - [150.0, 0.0]), K, calibration=calib)
    tri = methods.TriangulateMethod(methods.MethodOptions())
    mp2d = methods.MediaPipeMethod(methods.MethodOptions())
    try:
        p3 = tri(sample)
        p2 = mp2d(sample)
    finally:
        tri.close()
        mp2d.close()
    assert p3.xyz_cam_m is not None and np.nanmedian(p3.xyz_cam_m[:, 2]) == pytest.approx(0.21, rel=0.1)
    assert all(u is not None and u.shape == (21, 2) for u in p2.uv_px + p3.uv_px)
    assert np.linalg.norm(p2.uv_px[0].mean(0) - p3.uv_px[0].mean(0)) < 5.0
