import cv2
import numpy as np
import pytest

from app.detection.crop import (
    apply_affine,
    crop_affine,
    crop_intrinsics,
    crop_to_image,
    cut_crop,
    invert_affine,
    keypoint_box,
    normalise_crop,
)
from app.geometry.weak_perspective import crop_to_image_px

S = 224


def _keypoints(seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform([300, 200], [420, 380], size=(21, 2)).astype(np.float32)


def test_box_is_tight_box_scaled_about_centre():
    kps = _keypoints()
    kps[4] = np.nan
    box = keypoint_box(kps, 2.0)
    finite = kps[np.isfinite(kps).all(1)]
    lo, hi = finite.min(0), finite.max(0)
    assert box.dtype == np.float32 and box[2] == box[3]
    assert box[2] == pytest.approx(2.0 * (hi - lo).max(), rel=1e-6)
    np.testing.assert_allclose(box[:2] + box[2:] / 2, (lo + hi) / 2, atol=1e-3)
    with pytest.raises(ValueError, match="no finite keypoints"):
        keypoint_box(np.full((21, 2), np.nan), 2.0)


def test_affine_maps_box_onto_crop_extent():
    box = keypoint_box(_keypoints(), 2.0).astype(np.float64)
    A = crop_affine(box, S)
    corners = np.array([box[:2], box[:2] + box[2:], box[:2] + box[2:] / 2])
    np.testing.assert_allclose(apply_affine(A, corners), [[-0.5, -0.5], [S - 0.5, S - 0.5],
                                                         [(S - 1) / 2, (S - 1) / 2]], atol=1e-9)


@pytest.mark.parametrize("mirror", [False, True])
def test_crop_round_trip_to_full_image(mirror):
    box = keypoint_box(_keypoints(1), 2.0)
    A = crop_affine(box, S)
    if mirror:
        A = np.array([[-1.0, 0, S - 1], [0, 1, 0]]) @ np.vstack([A, [0, 0, 1]])
    pts_crop = np.random.default_rng(2).uniform(-10, S + 10, size=(500, 2))
    back = apply_affine(A, crop_to_image(A, pts_crop))
    np.testing.assert_allclose(back, pts_crop, atol=1e-4)
    np.testing.assert_allclose(invert_affine(invert_affine(A)), A, atol=1e-12)


@pytest.mark.parametrize("mirror", [False, True])
def test_cut_crop_agrees_with_affine(mirror):
    """Reference: cv2 bilinear sampling of the image x and y coordinates at each crop pixel must return the
    full-image position ``crop_to_image`` gives (cv2 quantises sample positions to 1/32 px)."""
    h, w = 480, 640
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    coords = np.dstack([xs, ys, np.zeros_like(xs)])
    A = crop_affine(np.array([250.5, 130.25, 173.3, 173.3]), S)
    if mirror:
        A = np.array([[-1.0, 0, S - 1], [0, 1, 0]]) @ np.vstack([A, [0, 0, 1]])
    crop = cut_crop(coords, A, S)
    jj, ii = np.mgrid[0:S, 0:S]
    expected = crop_to_image(A, np.c_[ii.ravel(), jj.ravel()].astype(np.float64)).reshape(S, S, 2)
    np.testing.assert_allclose(crop[..., :2], expected, atol=1 / 32 + 1e-3)


def test_crop_pixels_match_geometry_crop_camera():
    """app.geometry.weak_perspective counts crop pixels from the crop's left edge (u_edge = u_centre + 0.5);
    the same box maps the same points to the same full-image pixels."""
    box = keypoint_box(_keypoints(3), 2.0).astype(np.float64)
    A = crop_affine(box, S)
    pts = np.random.default_rng(4).uniform(0, S - 1, size=(50, 2))
    np.testing.assert_allclose(crop_to_image(A, pts), crop_to_image_px(pts + 0.5, box[:3], S), atol=1e-4)


def test_crop_intrinsics_project_into_crop():
    K = np.array([[700.0, 0, 640], [0, 710, 360], [0, 0, 1]])
    X = np.random.default_rng(5).uniform([-0.1, -0.1, 0.3], [0.1, 0.1, 0.6], size=(30, 3))
    px = (X @ K.T)[:, :2] / X[:, 2:]
    A = crop_affine(keypoint_box(px, 2.0), S)
    Kc = crop_intrinsics(K, A)
    pc = (X @ Kc.T)[:, :2] / X[:, 2:]
    np.testing.assert_allclose(pc, apply_affine(A, px), atol=1e-9)


def test_normalise_crop_range():
    img = np.array([[[0, 127, 255]]], dtype=np.uint8)
    out = normalise_crop(img)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], [-1.0, 127 / 127.5 - 1, 1.0], atol=1e-6)


def test_cut_crop_of_uint8_image_shape_and_content():
    img = np.zeros((360, 640, 3), np.uint8)
    cv2.circle(img, (320, 180), 20, (255, 255, 255), -1)
    A = crop_affine(np.array([270.0, 130.0, 100.0, 100.0]), S)
    crop = cut_crop(img, A, S)
    assert crop.shape == (S, S, 3) and crop.dtype == np.uint8
    assert crop[(S - 1) // 2, (S - 1) // 2].min() == 255 and crop[0, 0].max() == 0
