import numpy as np

from app.detection.crop import apply_affine, crop_affine, crop_to_image, cut_crop, keypoint_box
from app.detection.mirror import (
    is_mirrored,
    mirror_detection_to_right,
    unmirror_detection,
    unmirror_points_cam,
    unmirror_pose,
)
from app.types import HandDetection

S = 224


def _det(handedness):
    kps = np.random.default_rng(0).uniform([200, 100], [300, 220], size=(21, 2)).astype(np.float32)
    box = keypoint_box(kps, 2.0)
    return HandDetection(keypoints_px=kps, score=0.9, handedness=handedness, crop_box_xywh=box,
                         crop_from_image=crop_affine(box, S))


def test_left_hand_crop_and_keypoints_are_mirrored():
    det = _det("left")
    m = mirror_detection_to_right(det, S)
    assert is_mirrored(m.crop_from_image) and not is_mirrored(det.crop_from_image)
    plain = apply_affine(det.crop_from_image, det.keypoints_px)
    mirrored = apply_affine(m.crop_from_image, m.keypoints_px)
    np.testing.assert_allclose(mirrored[:, 0], S - 1 - plain[:, 0], atol=1e-9)
    np.testing.assert_allclose(mirrored[:, 1], plain[:, 1], atol=1e-9)
    np.testing.assert_array_equal(m.keypoints_px, det.keypoints_px)  # full-image keypoints untouched
    # Anything predicted in the mirrored crop maps back onto the real hand.
    np.testing.assert_allclose(crop_to_image(m.crop_from_image, mirrored), det.keypoints_px, atol=1e-4)
    img = np.random.default_rng(1).integers(0, 255, size=(360, 640, 3), dtype=np.uint8)
    np.testing.assert_array_equal(cut_crop(img, m.crop_from_image, S)[:, ::-1],
                                  cut_crop(img, det.crop_from_image, S))


def test_mirror_round_trip_and_right_hand_untouched():
    det = _det("left")
    back = unmirror_detection(mirror_detection_to_right(det, S), S)
    np.testing.assert_allclose(back.crop_from_image, det.crop_from_image, atol=1e-12)
    right = _det("right")
    assert mirror_detection_to_right(right, S) is right
    m = mirror_detection_to_right(det, S)
    assert mirror_detection_to_right(m, S) is m  # idempotent


def test_unmirror_pose_and_points():
    pose = np.arange(48, dtype=np.float32)
    out = unmirror_pose(pose).reshape(16, 3)
    np.testing.assert_array_equal(out[:, 0], pose.reshape(16, 3)[:, 0])
    np.testing.assert_array_equal(out[:, 1:], -pose.reshape(16, 3)[:, 1:])
    np.testing.assert_array_equal(unmirror_pose(unmirror_pose(pose)), pose)
    pts = np.array([[0.1, 0.2, 0.5]])
    np.testing.assert_allclose(unmirror_points_cam(pts), [[-0.1, 0.2, 0.5]])
