import cv2
import numpy as np
import pytest

from app.detection.handedness import correct_handedness


def test_correction_table():
    assert correct_handedness("Left", input_mirrored=False) == "right"
    assert correct_handedness("Right", input_mirrored=False) == "left"
    assert correct_handedness("Left", input_mirrored=True) == "left"
    assert correct_handedness("right", input_mirrored=True) == "right"
    with pytest.raises(ValueError, match="expected 'Left' or 'Right'"):
        correct_handedness("Up", input_mirrored=False)


def test_mirrored_vs_unmirrored_image_pair(realdata):
    """MediaPipe's own sample photo of a right hand (checked by eye: thumbs up, palm side towards the camera,
    arm from the right; MediaPipe's reference output labels it 'Left'). On the raw photo the corrected label
    is 'right'; on the horizontally flipped photo (the same hand as a left hand) it swaps to 'left'; declaring
    the flipped photo a mirrored selfie view gives the person's right hand again."""
    from app.detection.config import DetectionConfig
    from app.detection.mediapipe_hands import MediaPipeHands

    path = realdata / "mediapipe_samples_test_assets" / "hand_landmarker_android_test_image.jpg"
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    flipped = np.ascontiguousarray(image[:, ::-1])
    cfg = DetectionConfig(static_image_mode=True, max_num_hands=1)
    with MediaPipeHands(cfg) as raw_cam:
        (raw_hand,) = raw_cam.process(image)
        (flip_hand,) = raw_cam.process(flipped)
    with MediaPipeHands(DetectionConfig(static_image_mode=True, max_num_hands=1, input_mirrored=True)) as sel:
        (selfie_hand,) = sel.process(flipped)
    assert raw_hand.handedness == "right"
    assert flip_hand.handedness == "left"
    assert selfie_hand.handedness == "right"
    # The same hand, at mirrored pixels (MediaPipe is not flip-equivariant on the hidden fingers: compare
    # the keypoint centroids).
    w = image.shape[1]
    mirrored_back = np.c_[w - 1 - flip_hand.keypoints_px[:, 0], flip_hand.keypoints_px[:, 1]]
    assert np.linalg.norm(mirrored_back.mean(0) - raw_hand.keypoints_px.mean(0)) < 6.0


def test_chirality_of_the_model_hands_in_random_orientations():
    import torch
    from scipy.spatial.transform import Rotation

    from app.config import HandModelConfig
    from app.detection.handedness import chirality
    from models.hand_model.layer import _load_open, build_hand_model
    from models.hand_model.pose_space import angles_to_axis_angle, sample_angles

    rng = np.random.default_rng(0)
    for side, sign in (("right", 1.0), ("left", -1.0)):
        model, data = build_hand_model(HandModelConfig(), side), _load_open(side)
        fingers = angles_to_axis_angle(sample_angles(rng, 200), data["joint_frames"])
        glob = Rotation.random(200, random_state=1).as_rotvec()
        pose = torch.tensor(np.concatenate([glob, fingers], 1), dtype=torch.float32)
        with torch.no_grad():
            kps = model(pose, torch.zeros(1, 10)).keypoints_m.numpy()
        values = np.array([chirality(k) for k in kps]) * sign
        assert np.mean(values > 0) > 0.95
        assert np.mean(values[np.abs(values) >= 0.15] > 0) > 0.99  # clear values are right
    assert np.mean(np.abs(values) >= 0.15) > 0.5  # and most poses are clear


def test_decide_handedness_falls_back_to_mediapipe_when_unclear():
    from app.detection.handedness import decide_handedness

    assert decide_handedness("left", 0.4, 0.25) == "right"
    assert decide_handedness("right", -0.4, 0.25) == "left"
    assert decide_handedness("left", 0.1, 0.25) == "left"
    assert decide_handedness("right", float("nan"), 0.25) == "right"
