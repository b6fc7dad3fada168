import numpy as np
import pytest

from calibration.errors import CalibrationError
from calibration.presets import preset_rig, rig_from_spec, rig_mode_size


@pytest.mark.parametrize("name,baseline", [("zed", 0.12), ("zed-mini", 0.063), ("zed2", 0.12)])
def test_presets_are_rectified_with_their_baselines(name, baseline):
    rig = preset_rig(name, "HD720")
    assert rig.rectified and rig.baseline_m == pytest.approx(baseline)
    assert rig.left.size_wh == (1280, 720)
    np.testing.assert_allclose(rig.left.K, rig.right.K)
    # A point projects to the same row in both views.
    X = np.array([0.05, -0.03, 0.4, 1.0])
    pl, pr = rig.left.P @ X, rig.right.P @ X
    assert pl[1] / pl[2] == pytest.approx(pr[1] / pr[2])
    assert (pl[0] / pl[2] - pr[0] / pr[2]) == pytest.approx(700 * baseline / 0.4)


def test_vga_focal_and_bad_names():
    assert preset_rig("zed-mini", "VGA").left.K[0, 0] == pytest.approx(350 * 672 / 640)
    assert rig_mode_size("640x360") == (640, 360)
    with pytest.raises(CalibrationError, match="unknown rig"):
        rig_from_spec("kinect")
    with pytest.raises(CalibrationError, match="unknown rig mode"):
        rig_mode_size("huge")
