"""The project's JSON calibration file: round trip, clear errors, fuzzing."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calibration.cli import main as calibration_main
from calibration.errors import CalibrationError
from calibration.fileio import calibration_to_dict, load_calibration_record, save_calibration
from calibration.rig import make_stereo

R, _ = cv2.Rodrigues(np.array([0.02, -0.3, 0.01]))
CALIB = make_stereo(
    [[700, 0, 320], [0, 701, 240], [0, 0, 1]],
    [-0.1, 0.02, 0.001, 0.0, 0.003],
    [[690, 0, 322], [0, 692, 238], [0, 0, 1]],
    [-0.09, 0.01, 0.0, 0.001, 0.0],
    R,
    [-0.12, 0.003, 0.01],
    (640, 480),
    name="test-rig",
)


def test_round_trip(tmp_path):
    path = save_calibration(tmp_path / "sub" / "calib.json", CALIB, rms_px=0.31, extra={"n_pairs": 20})
    rec = load_calibration_record(path)
    for a, b in ((rec.calibration.left, CALIB.left), (rec.calibration.right, CALIB.right)):
        np.testing.assert_array_equal(a.K, b.K)
        np.testing.assert_array_equal(a.dist, b.dist)
        np.testing.assert_allclose(a.T_cam_left, b.T_cam_left, atol=1e-15)
        assert a.size_wh == b.size_wh
    assert rec.rms_px == 0.31 and rec.extra == {"n_pairs": 20} and rec.calibration.name == "test-rig"
    data = json.loads(path.read_text())
    assert data["version"] == 1 and data["baseline_m"] == pytest.approx(CALIB.baseline_m)
    assert not list(tmp_path.glob("sub/*.tmp"))


def _write(tmp_path, data) -> str:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(path)


def _edited(**changes):
    data = calibration_to_dict(CALIB, 0.2)
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return data


@pytest.mark.parametrize(
    "data, words",
    [
        ("{not json", ["not a valid JSON"]),
        ([1, 2], ["top level"]),
        (_edited(format="x"), ["'format'", "import"]),
        (_edited(version=2), ["'version'", "version 1"]),
        (_edited(views=...), ["'views' is missing"]),
        (_edited(views__right__K=[[1, 0], [0, 1]]), ["views.right.K", "3x3"]),
        (_edited(views__left__K=[[-5, 0, 1], [0, 5, 1], [0, 0, 1]]), ["views.left.K", "fx, fy > 0"]),
        (_edited(views__left__dist=[0.1, 0.2, 0.3]), ["views.left.dist", "3 coefficients"]),
        (_edited(views__left__size_wh=[640.5, 480]), ["views.left.size_wh", "whole pixels"]),
        (
            _edited(views__right__R_cam_left=[[2, 0, 0], [0, 1, 0], [0, 0, 1]]),
            ["R_cam_left", "not a rotation"],
        ),
        (_edited(views__right__t_cam_left_m=["a", 0, 0]), ["views.right.t_cam_left_m"]),
        (_edited(views__left__t_cam_left_m=[0.1, 0, 0]), ["views.left", "reference"]),
        (_edited(baseline_m=0.5), ["'baseline_m'", "disagrees"]),
        (_edited(rms_px="low"), ["'rms_px'"]),
        (_edited(rectified="no"), ["'rectified' must be a bool"]),
    ],
)
def test_bad_files_name_file_and_field(tmp_path, data, words):
    path = _write(tmp_path, data)
    with pytest.raises(CalibrationError) as info:
        load_calibration_record(path)
    assert path in str(info.value)
    for w in words:
        assert w in str(info.value)


def test_missing_file_and_cli_exit_status(tmp_path, capsys):
    with pytest.raises(CalibrationError, match="not found"):
        load_calibration_record(tmp_path / "none.json")
    assert calibration_main(["show", str(tmp_path / "none.json")]) == 2
    assert "error:" in capsys.readouterr().err
    path = save_calibration(tmp_path / "ok.json", CALIB, 0.25)
    assert calibration_main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "baseline: 120" in out and "0.250 px" in out and "fx 700.00" in out


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=True)
    | st.integers(-(10**6), 10**6)
    | st.text(max_size=5),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_fuzzed_calibration_files_give_clear_errors(tmp_path, data):
    """Random replacements of fields (or of the raw bytes) raise CalibrationError, never anything else."""
    doc = calibration_to_dict(CALIB, 0.2)
    paths = [
        ("views", "left", "K"),
        ("views", "right", "R_cam_left"),
        ("views", "right", "t_cam_left_m"),
        ("views", "left", "dist"),
        ("views", "right", "size_wh"),
        ("rectified",),
        ("baseline_m",),
        ("views", "right"),
        ("views",),
        ("format",),
        ("version",),
        ("extra",),
        ("rms_px",),
    ]
    node_path = data.draw(st.sampled_from(paths))
    node = doc
    for key in node_path[:-1]:
        node = node[key]
    node[node_path[-1]] = data.draw(JSON)
    text = json.dumps(doc)
    if data.draw(st.booleans()):
        cut = data.draw(st.integers(0, len(text)))
        text = text[:cut] + data.draw(st.text(max_size=4)) + text[cut + 1 :]
    path = tmp_path / "fuzz.json"
    path.write_text(text)
    try:
        load_calibration_record(path)
    except CalibrationError as exc:
        assert str(path) in str(exc)
