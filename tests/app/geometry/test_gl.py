"""app/geometry/gl.py: the GL pose + projection + viewport reproduce OpenCV's projection with K."""

import cv2
import numpy as np
import pytest

from app.geometry.gl import CV_TO_GL, gl_projection_from_K, opencv_to_gl_pose

W, H = 1280, 720
K = np.array([[700.0, 0.0, 641.7], [0.0, 705.0, 358.2], [0.0, 0.0, 1.0]])
ZNEAR, ZFAR = 0.05, 10.0


def _T_cam_world():
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(np.array([0.3, -0.5, 0.2]))[0]
    T[:3, 3] = [0.1, -0.2, 1.5]
    return T


def _world_points(T_cam_world, n=40):
    rng = np.random.default_rng(0)
    cam = np.c_[rng.uniform(-0.4, 0.4, (n, 2)), rng.uniform(0.3, 3.0, n)]  # in front of the camera
    T_world_cam = np.linalg.inv(T_cam_world)
    return cam @ T_world_cam[:3, :3].T + T_world_cam[:3, 3]


def _gl_to_cv_pixels(points_world, pose_gl, P):
    """Render pipeline on the CPU: view = inv(pose), clip = P view p, perspective divide, viewport."""
    view = np.linalg.inv(pose_gl)
    clip = np.c_[points_world, np.ones(len(points_world))] @ (P @ view).T
    ndc = clip[:, :3] / clip[:, 3:]
    x_w, y_w = (ndc[:, 0] + 1) * W / 2, (ndc[:, 1] + 1) * H / 2
    return np.c_[x_w - 0.5, H - y_w - 0.5], ndc[:, 2]


@pytest.mark.parametrize("skew", [0.0, 1.5])
def test_gl_projection_matches_cv2(skew):
    T = _T_cam_world()
    Ks = K.copy()
    Ks[0, 1] = skew
    pts = _world_points(T)
    uv, _ = _gl_to_cv_pixels(pts, opencv_to_gl_pose(T), gl_projection_from_K(Ks, W, H, ZNEAR, ZFAR))
    if skew == 0.0:  # cv2.projectPoints ignores skew
        ref = cv2.projectPoints(pts, cv2.Rodrigues(T[:3, :3])[0], T[:3, 3], Ks, None)[0][:, 0]
    else:
        cam = pts @ T[:3, :3].T + T[:3, 3]
        ref = (cam / cam[:, 2:]) @ Ks[:2].T
    np.testing.assert_allclose(uv, ref, atol=1e-6)


def test_depth_range_maps_to_ndc():
    T = np.eye(4)
    pts = np.array([[0.0, 0.0, ZNEAR], [0.1, 0.1, ZFAR]])
    _, ndc_z = _gl_to_cv_pixels(pts, opencv_to_gl_pose(T), gl_projection_from_K(K, W, H, ZNEAR, ZFAR))
    np.testing.assert_allclose(ndc_z, [-1.0, 1.0], atol=1e-9)


def test_pose_axes():
    T = _T_cam_world()
    pose = opencv_to_gl_pose(T)
    T_world_cam = np.linalg.inv(T)
    np.testing.assert_allclose(pose[:3, 3], T_world_cam[:3, 3], atol=1e-12)  # same optical centre
    np.testing.assert_allclose(-pose[:3, 2], T_world_cam[:3, 2], atol=1e-12)  # GL looks down -z = CV +z
    np.testing.assert_allclose(-pose[:3, 1], T_world_cam[:3, 1], atol=1e-12)  # GL up = CV -y
    np.testing.assert_allclose(CV_TO_GL @ CV_TO_GL, np.eye(4))
    assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)


def test_matches_pyrender_intrinsics_camera_with_half_pixel_shift():
    try:
        import pyrender
    except Exception as exc:  # pyrender may fail to import without a GL platform
        pytest.skip(f"pyrender unavailable: {exc}")
    cam = pyrender.IntrinsicsCamera(K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5, znear=ZNEAR, zfar=ZFAR)
    np.testing.assert_allclose(gl_projection_from_K(K, W, H, ZNEAR, ZFAR), cam.get_projection_matrix(W, H),
                               atol=1e-12)


def test_rejects_bad_clip_planes():
    with pytest.raises(ValueError, match="znear"):
        gl_projection_from_K(K, W, H, 0.0, 1.0)
