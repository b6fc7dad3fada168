"""End to end on a real photo: the same image as both views, the right one shifted by a known disparity."""

import cv2
import numpy as np
import pytest

from app.detection import DetectionConfig, build_detector
from app.detection.crop import apply_affine
from app.detection.mirror import is_mirrored
from app.detection.stereo import make_detection, track_keys
from app.types import StereoFrame
from calibration.rig import make_stereo

F_PX, BASELINE_M, DISPARITY_PX = 500.0, 0.063, 150  # the photo's hand is large: a near hand


def _frame(image: np.ndarray, frame_id: int = 0) -> StereoFrame:
    h, w = image.shape[:2]
    right = np.zeros_like(image)
    right[:, : w - DISPARITY_PX] = image[:, DISPARITY_PX:]  # a scene point at u appears at u - d on the right
    K = np.array([[F_PX, 0, w / 2], [0, F_PX, h / 2], [0, 0, 1]])
    calib = make_stereo(K, np.zeros(5), K, np.zeros(5), np.eye(3), [-BASELINE_M, 0, 0], (w, h),
                        rectified=True)
    return StereoFrame(frame_id=frame_id, t_capture_ns=frame_id * 16_666_667, left=image, right=right,
                       calibration=calib)


@pytest.fixture(scope="module")
def photo():
    from pathlib import Path

    root = Path(__file__).resolve().parents[3].parent / "shared" / "realdata"
    path = root / "mediapipe_samples_test_assets" / "hand_landmarker_android_test_image.jpg"
    if not path.is_file():
        pytest.skip(f"needs {path} (the shared real data; absent in a fresh clone)")
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("flip", [False, True])
def test_stereo_observation_of_real_photo(photo, flip):
    image = np.ascontiguousarray(photo[:, ::-1]) if flip else photo
    cfg = DetectionConfig(static_image_mode=True, max_num_hands=1, parallel_views=not flip)
    with build_detector(cfg) as det:
        (obs,) = det.detect(_frame(image))
    assert not obs.is_mono and obs.is_left == flip
    assert obs.left.handedness == ("left" if flip else "right")
    assert is_mirrored(obs.left.crop_from_image) == flip and is_mirrored(obs.right.crop_from_image) == flip
    z_expected = F_PX * BASELINE_M / DISPARITY_PX
    # MediaPipe is not exactly shift-invariant (its ROI snaps differently): keypoints move by a few px.
    assert np.nanmedian(obs.keypoints_cam_m[:, 2]) == pytest.approx(z_expected, rel=0.1)
    assert np.isfinite(obs.keypoints_cam_m).all(1).sum() >= 18 and np.nanmedian(obs.residual_px) < 8.0
    assert [c.shape for c in obs.crops] == [(224, 224, 3)] * 2
    assert [h.shape for h in obs.heatmaps] == [(21, 224, 224)] * 2
    assert all(c.min() >= -1 and c.max() <= 1 for c in obs.crops + obs.heatmaps)
    # The hand is centred in its crop (box scaled x2 about the keypoint box centre).
    kps_crop = apply_affine(obs.left.crop_from_image, obs.left.keypoints_px)
    centre = (kps_crop.min(0) + kps_crop.max(0)) / 2
    np.testing.assert_allclose(centre, [111.5, 111.5], atol=1e-3)


def test_make_detection_mirrors_left_hands_only():
    kps = np.random.default_rng(0).uniform(100, 200, size=(21, 2)).astype(np.float32)
    cfg = DetectionConfig()
    assert is_mirrored(make_detection(kps, 0.9, "left", cfg).crop_from_image)
    assert not is_mirrored(make_detection(kps, 0.9, "right", cfg).crop_from_image)


def test_track_keys_unique():
    assert track_keys(["right", "left", "right"]) == ["right", "left", "right#1"]
