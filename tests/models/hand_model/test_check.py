"""The MediaPipe check: visibility rule, summary arithmetic, and the CLI end to end on a few renders."""

import json

import numpy as np

from models.hand_model.__main__ import main
from models.hand_model.check import keypoint_visibility, normalised_error, summarise


def test_visibility_uses_own_finger_or_palm_for_palm_keypoints():
    labels = np.full((10, 10), -1, np.int16)
    labels[:, :5] = 0  # palm on the left half
    labels[:, 5:] = 2  # index finger (1 + finger index 1) on the right half
    kps = np.zeros((21, 2))
    kps[:] = [7, 5]  # everything on the index finger
    kps[0] = [2, 5]  # wrist on the palm: visible
    kps[5] = [2, 5]  # index MCP on the palm: visible (on-palm keypoint)
    kps[8] = [2, 5]  # index tip on the palm: hidden (not an on-palm keypoint)
    kps[12] = [20, 5]  # outside the image: hidden
    vis = keypoint_visibility(kps, labels)
    assert vis[0] and vis[5] and vis[6] and vis[7]
    assert not vis[8] and not vis[12]
    assert not vis[9]  # middle finger keypoint on the index finger's surface


def test_error_is_normalised_by_the_box_diagonal():
    true = np.array([[0.0, 0.0], [30.0, 40.0]] + [[15.0, 20.0]] * 19)
    assert normalised_error(true + [3.0, 4.0], true) == np.float64(5.0 / 50.0)


def test_summary_rates_over_the_visible_stratum():
    recs = [{"visible_frac": 0.9, "detected": True, "error": 0.05, "kind": "back"},
            {"visible_frac": 0.8, "detected": False, "error": float("nan"), "kind": "palm"},
            {"visible_frac": 0.2, "detected": True, "error": 0.07, "kind": "ego"}]
    s = summarise(recs, 778, 1552)
    assert s["mediapipe_detection_rate"] == 0.5 and s["renders_visible"] == 2
    assert abs(s["mediapipe_detection_rate_all"] - 2 / 3) < 1e-12
    assert abs(s["mediapipe_median_kp_error"] - 0.06) < 1e-12


def test_check_cli_writes_the_documented_keys(tmp_path):
    out = tmp_path / "check.json"
    assert main(["check", "--n", "6", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["joints"] == 16 and data["keypoints"] == 21 and data["vertices"] == 778
    for key in ("mediapipe_detection_rate", "mediapipe_detection_rate_all", "mediapipe_median_kp_error"):
        assert key in data
    assert data["renders"] == 6
