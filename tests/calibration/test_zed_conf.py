"""ZED factory .conf parsing and rectification, on conf files written here from the documented format."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calibration.errors import CalibrationError
from calibration.rectify import Rectifier
from calibration.zed_conf import ZED_MODES, parse_zed_conf, read_zed_conf, zed_mode

# A ZED-like rig for HD720: slightly different eyes, small rotation, 120 mm baseline with TY/TZ offsets.
RIG = {
    "left": dict(
        fx=700.2, fy=699.5, cx=641.3, cy=358.7, k1=-0.171, k2=0.025, p1=0.0004, p2=-0.0002, k3=0.001
    ),
    "right": dict(fx=698.9, fy=698.1, cx=636.0, cy=362.4, k1=-0.168, k2=0.023, p1=-0.0003, p2=0.0001, k3=0.0),
    "baseline_mm": 119.87,
    "ty_mm": 0.21,
    "tz_mm": -0.35,
    "rvec": (0.0021, -0.0043, 0.0012),
}


def conf_text(rig=RIG, suffix="HD", per_resolution=True) -> str:
    """A factory .conf in Stereolabs' layout; other resolutions get a dummy copy to look like real files."""
    lines = []
    for sfx in ("2K", "FHD", suffix, "VGA") if suffix == "HD" else (suffix,):
        for eye in ("LEFT", "RIGHT"):
            lines.append(f"[{eye}_CAM_{sfx}]")
            lines += [f"{k}={v}" for k, v in rig[eye.lower()].items()] + [""]
    rx, cv, rz = rig["rvec"]
    tail = f"_{suffix}" if per_resolution else ""
    lines += [
        "[STEREO]",
        f"Baseline={rig['baseline_mm']}",
        f"TY{tail}={rig['ty_mm']}",
        f"TZ{tail}={rig['tz_mm']}",
        f"CV{tail}={cv}",
        f"RX{tail}={rx}",
        f"RZ{tail}={rz}",
        "",
        "[MISC]",
        "Sensor_ID=1",
        "",
    ]
    return "\n".join(lines)


def _K(c):
    return np.array([[c["fx"], 0, c["cx"]], [0, c["fy"], c["cy"]], [0, 0, 1.0]])


def _dist(c):
    return np.array([c[k] for k in ("k1", "k2", "p1", "p2", "k3")])


def project_scene(rig=RIG, n=200, seed=0):
    """Random 3D points 0.4-3 m in front, projected through the raw (distorted) cameras: (pts_l, pts_r) px."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.4, 3.0, n)
    X = np.stack([rng.uniform(-0.6, 0.6, n) * z, rng.uniform(-0.35, 0.35, n) * z, z], 1)
    T = np.array([-rig["baseline_mm"], rig["ty_mm"], rig["tz_mm"]]) / 1000
    pl, _ = cv2.projectPoints(X, np.zeros(3), np.zeros(3), _K(rig["left"]), _dist(rig["left"]))
    pr, _ = cv2.projectPoints(X, np.array(rig["rvec"]), T, _K(rig["right"]), _dist(rig["right"]))
    pl, pr = pl.reshape(-1, 2), pr.reshape(-1, 2)
    inside = np.all((pl > 0) & (pl < (1280, 720)) & (pr > 0) & (pr < (1280, 720)), axis=1)
    return pl[inside], pr[inside]


def test_conf_parsed_into_K_dist_R_T(tmp_path):
    path = tmp_path / "SN12345.conf"
    path.write_text(conf_text())
    calib = read_zed_conf(path, "HD720")
    np.testing.assert_allclose(calib.left.K, _K(RIG["left"]))
    np.testing.assert_allclose(calib.right.dist, _dist(RIG["right"]))
    R_expected, _ = cv2.Rodrigues(np.array(RIG["rvec"]))
    np.testing.assert_allclose(calib.right.T_cam_left[:3, :3], R_expected, atol=1e-12)
    np.testing.assert_allclose(calib.right.T_cam_left[:3, 3], [-0.11987, 0.00021, -0.00035])
    assert calib.left.size_wh == (1280, 720) and not calib.rectified and "12345" in calib.name


def test_plain_stereo_keys_and_missing_distortion_terms():
    rig = {**RIG, "left": {k: v for k, v in RIG["left"].items() if k not in ("p1", "p2", "k3")}}
    calib = parse_zed_conf(conf_text(rig, per_resolution=False), ZED_MODES["HD720"])
    np.testing.assert_allclose(calib.left.dist, [RIG["left"]["k1"], RIG["left"]["k2"], 0, 0, 0])
    assert calib.baseline_m == pytest.approx(np.linalg.norm([0.11987, 0.00021, 0.00035]))


def test_rectification_puts_scene_points_on_same_row_and_keeps_baseline():
    rect = Rectifier(parse_zed_conf(conf_text(), ZED_MODES["HD720"], "SN1.conf"))
    pl, pr = project_scene()
    assert len(pl) > 100
    ql, qr = rect.rectify_points("left", pl), rect.rectify_points("right", pr)
    assert np.max(np.abs(ql[:, 1] - qr[:, 1])) < 0.5
    cal = rect.calibration
    assert cal.rectified and np.all(cal.left.dist == 0) and np.array_equal(cal.left.K, cal.right.K)
    true_b = np.linalg.norm([RIG["baseline_mm"], RIG["ty_mm"], RIG["tz_mm"]]) / 1000
    assert cal.baseline_m == pytest.approx(true_b, rel=0.005)
    assert cal.right.T_cam_left[0, 3] < 0  # right camera sits at +x: X_right = X_left - b


def test_rectified_images_match_rectified_points():
    """A raw image with one bright dot is remapped to where rectify_points says it goes."""
    raw = parse_zed_conf(conf_text(), ZED_MODES["HD720"])
    rect = Rectifier(raw)
    img = np.zeros((720, 1280), np.uint8)
    cv2.circle(img, (900, 200), 6, 255, -1)
    out, _ = rect.rectify_pair(img, img)
    m = cv2.moments(out, binaryImage=False)
    np.testing.assert_allclose(
        [m["m10"] / m["m00"], m["m01"] / m["m00"]], rect.rectify_points("left", [[900, 200]])[0], atol=0.5
    )


@pytest.mark.parametrize(
    "bad, words",
    [
        ("", ["LEFT_CAM_HD", "missing"]),
        (conf_text().replace("fx=700.2", "fx=abc"), ["LEFT_CAM_HD", "fx", "not a number"]),
        (conf_text().replace("fy=699.5\n", ""), ["fy", "missing", "LEFT_CAM_HD"]),
        (conf_text().replace("Baseline=119.87", "Baseline=-3"), ["Baseline", "> 0"]),
        (conf_text().replace("Baseline=119.87\n", ""), ["Baseline", "STEREO", "missing"]),
        (conf_text().replace("CV_HD=-0.0043", "CV_HD=1.5"), ["radians"]),
        ("no section header\nfx=1", ["INI"]),
    ],
)
def test_bad_conf_names_file_field_and_fix(bad, words):
    with pytest.raises(CalibrationError) as info:
        parse_zed_conf(bad, ZED_MODES["HD720"], "SN7.conf")
    assert "SN7.conf" in str(info.value)
    for w in words:
        assert w in str(info.value)


def test_missing_file_and_unknown_mode(tmp_path):
    with pytest.raises(CalibrationError, match="calib.stereolabs.com"):
        read_zed_conf(tmp_path / "SN9.conf", "HD720")
    with pytest.raises(CalibrationError, match="HD1080"):
        zed_mode("HD4K")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_conf_gives_calibration_error_or_a_rig(data):
    text = conf_text()
    cut = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.text(max_size=30))
    mutated = data.draw(
        st.sampled_from(
            [text[:cut], text[:cut] + junk + text[cut:], text[:cut] + text[cut + len(junk) :], junk]
        )
    )
    try:
        calib = parse_zed_conf(mutated, ZED_MODES["HD720"], "SN3.conf")
    except CalibrationError as exc:
        assert "SN3.conf" in str(exc)
    else:
        assert np.all(np.isfinite(calib.right.T_cam_left))
