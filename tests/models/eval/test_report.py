import csv
import json

import numpy as np
import pytest

from models import evaluate
from models.eval import datasets, methods
from models.eval.report import CSV_COLUMNS, write_json
from models.eval.samples import Prediction


class _ShiftedMesh:
    """A mesh method stand-in: the truth shifted by 2 mm; its options are recorded; mono half misses sample 1."""

    def __init__(self, opts):
        self.opts, self.calls = opts, 0
        _ShiftedMesh.last_opts = opts

    def __call__(self, sample):
        self.calls += 1
        sil = sample.masks[0].copy()
        sil[10:30, 20:30] = False  # half the true mask
        mono = Prediction(uv_px=(None,)) if self.calls == 2 else Prediction(
            uv_px=sample.uv_px[:1], xyz_cam_m=sample.xyz_cam_m, verts_cam_m=sample.verts_cam_m)
        return Prediction(uv_px=sample.uv_px, xyz_cam_m=sample.xyz_cam_m + 0.002,
                          verts_cam_m=sample.verts_cam_m + 0.002, silhouette_init=sil, silhouette=sample.masks[0],
                          mediapipe_world_m=sample.xyz_cam_m, mono=mono)

    def close(self):
        pass


@pytest.fixture
def fake_mesh_registry(monkeypatch, toy_sample):
    monkeypatch.setitem(datasets.DATASETS, "fake_mesh", lambda root, limit: (toy_sample(i) for i in range(limit or 5)))
    monkeypatch.setitem(methods.METHODS, "shifted", methods.MethodSpec(_ShiftedMesh, True, False, True))


def test_cli_writes_mesh_figures_with_nested_mono_and_passes_its_flags(tmp_path, fake_mesh_registry, capsys):
    out = tmp_path / "mesh.json"
    rc = evaluate.main(["--dataset", "fake_mesh", "--root", str(tmp_path), "--method", "shifted", "--json", str(out),
                        "--iterations", "7", "--side", "fit", "--limit", "4"])
    assert rc == 0
    assert _ShiftedMesh.last_opts.iterations == 7 and _ShiftedMesh.last_opts.side == "fit"
    res = json.loads(out.read_text())
    assert res["n"] == 4 and res["mpjpe_mm"] == pytest.approx(2 * np.sqrt(3))
    assert res["pa_mpjpe_mm"] == pytest.approx(0, abs=1e-6) and res["pa_mpve_mm"] == pytest.approx(0, abs=1e-6)
    assert res["f5"] == 1.0 and res["f15"] == 1.0 and res["auc"] > 0.99
    assert res["iou_before"] == pytest.approx(0.5) and res["iou_after"] == 1.0
    assert res["baseline_mediapipe_pa_mpjpe_mm"] == pytest.approx(0, abs=1e-6)
    mono = res["mono"]
    assert mono["detection_rate"] == 0.75 and mono["mpjpe_mm"] == pytest.approx(0, abs=1e-9)
    assert mono["iou_before"] is None and mono["baseline_mediapipe_pa_mpjpe_mm"] is None  # NaN -> null
    assert "mono.pa_mpve_mm=" in capsys.readouterr().out
    rows = list(csv.reader((tmp_path / "mesh_samples.csv").open()))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 5
    assert rows[2][CSV_COLUMNS.index("mono_detected")] == "0" and rows[1][CSV_COLUMNS.index("iou_before")] == "0.5"


def test_json_writes_null_for_nan_at_any_depth(tmp_path):
    path = tmp_path / "x.json"
    write_json(path, {"a": float("nan"), "b": 1.5, "mono": {"c": float("inf"), "d": 2}, "e": None})
    assert json.loads(path.read_text()) == {"a": None, "b": 1.5, "mono": {"c": None, "d": 2}, "e": None}
