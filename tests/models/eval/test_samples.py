import numpy as np
import pytest

from calibration.rig import make_stereo
from models.eval.samples import EvalSample, Prediction

K = np.array([[100.0, 0, 16], [0, 100.0, 12], [0, 0, 1]])
CALIB = make_stereo(K, np.zeros(5), K, np.zeros(5), np.eye(3), [-0.06, 0, 0], (32, 24), rectified=True)
IMG = np.zeros((24, 32, 3), np.uint8)
UV = np.zeros((21, 2))


def _stereo(**kw) -> EvalSample:
    return EvalSample(sample_id="x", images=(IMG, IMG), uv_px=(UV, UV + 1), K=K, xyz_cam_m=np.zeros((21, 3)),
                      calibration=CALIB, **kw)


def test_first_view_is_the_left_half_of_a_stereo_sample():
    masks = (np.zeros((24, 32), bool), np.ones((24, 32), bool))
    mono = _stereo(verts_cam_m=np.ones((5, 3)), masks=masks, is_left=True).first_view()
    assert not mono.is_stereo and mono.calibration is None and len(mono.masks) == 1 and not mono.masks[0].any()
    np.testing.assert_array_equal(mono.uv_px[0], UV)
    assert mono.verts_cam_m.shape == (5, 3) and mono.is_left


def test_optional_ground_truth_is_checked():
    with pytest.raises(ValueError, match="one .H, W. bool mask per image"):
        _stereo(masks=(np.zeros((24, 32), bool),))
    with pytest.raises(ValueError, match="masks\\[1\\]"):
        _stereo(masks=(np.zeros((24, 32), bool), np.zeros((24, 31), bool)))
    with pytest.raises(ValueError, match="verts_cam_m"):
        _stereo(verts_cam_m=np.zeros((5, 3), np.float32))


def test_prediction_outputs_are_checked():
    with pytest.raises(ValueError, match="silhouette"):
        Prediction(uv_px=(None,), silhouette=np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="mediapipe_world_m"):
        Prediction(uv_px=(None,), mediapipe_world_m=np.zeros((20, 3)))
    with pytest.raises(ValueError, match="xyz_cam_m"):
        Prediction(uv_px=(None,), xyz_cam_m=np.zeros((21, 3), np.float32))
