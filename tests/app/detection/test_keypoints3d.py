import cv2
import numpy as np

from app.detection.keypoints3d import drop_outliers, triangulate_pair, undistort_px
from app.types import CameraView


def test_exact_pair_recovers_metric_points(hand_points, general_rig, projector):
    X = hand_points([0.03, 0.05, 0.45], yaw_deg=20)
    P_l, P_r = general_rig.left.P, general_rig.right.P
    tri = triangulate_pair(projector(P_l, X), projector(P_r, X), P_l, P_r)
    np.testing.assert_allclose(tri.points_m, X, atol=1e-6)
    assert tri.points_m.dtype == np.float32 and tri.residual_px.shape == (21,)
    assert np.all(tri.residual_px < 1e-4)
    assert abs(tri.palm_m - 0.09) < 1e-5


def test_outlier_keypoint_is_dropped(hand_points, rectified_rig, projector):
    X = hand_points([0.0, 0.0, 0.4])
    P_l, P_r = rectified_rig.left.P, rectified_rig.right.P
    rng = np.random.default_rng(0)
    px_l = projector(P_l, X) + rng.normal(0, 0.5, (21, 2))
    px_r = projector(P_r, X) + rng.normal(0, 0.5, (21, 2))
    px_r[8, 1] += 25.0  # a keypoint on the wrong row in one view
    tri = triangulate_pair(px_l, px_r, P_l, P_r, min_px=4.0, factor=4.0)
    assert np.isnan(tri.points_m[8]).all() and tri.residual_px[8] > 10
    kept = np.isfinite(tri.points_m).all(1)
    assert kept.sum() == 20
    assert np.max(np.linalg.norm(tri.points_m[kept] - X[kept], axis=1)) < 0.01


def test_drop_outliers_threshold():
    r = np.array([1.0, 1.2, 0.8, 1.1, 30.0, np.nan])
    np.testing.assert_array_equal(drop_outliers(r, 4.0, 4.0), [True, True, True, True, False, False])


def test_undistort_matches_opencv():
    K = np.array([[700.0, 0, 640], [0, 700, 360], [0, 0, 1]])
    dist = np.array([-0.1, 0.02, 0.001, -0.0005, 0.0])
    view = CameraView(K=K, dist=dist, T_cam_left=np.eye(4), size_wh=(1280, 720))
    px = np.random.default_rng(1).uniform([100, 100], [1180, 620], size=(21, 2))
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)
    ref = cv2.undistortPointsIter(px.reshape(-1, 1, 2), K, dist, None, K, criteria).reshape(-1, 2)
    np.testing.assert_allclose(undistort_px(view, px), ref, atol=1e-3)
    flat = CameraView(K=K, dist=np.zeros(5), T_cam_left=np.eye(4), size_wh=(1280, 720))
    np.testing.assert_array_equal(undistort_px(flat, px), px)
