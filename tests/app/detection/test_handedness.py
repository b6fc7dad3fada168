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
