"""The one conversion between OpenCV camera conventions and OpenGL / renderer conventions (numpy, float64).

OpenCV camera: x right, y down, z forward (into the scene); pixel (u, v) has its centre at integer
coordinates, v grows downwards, pixel (0, 0) covers [-0.5, 0.5]^2.
OpenGL camera: x right, y up, z backward (the camera looks down -z); window coordinates (x_w, y_w) grow right
and UP from the bottom-left corner, pixel centres at half-integers. For an image of height H:
    x_w = u + 0.5,    y_w = H - (v + 0.5).
pyrender (and most GL renderers) take a camera *pose*: the camera-to-world transform of the GL camera.
"""

from __future__ import annotations

import numpy as np

# Point in the OpenCV camera frame -> the same point in the GL camera frame (and back: it is its own inverse).
CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


def opencv_to_gl_pose(T_cam_world_cv: np.ndarray) -> np.ndarray:
    """GL camera-to-world pose for pyrender's ``scene.add(camera, pose=...)`` from an OpenCV extrinsic.

    T_cam_world_cv: (4, 4) rigid, maps world points (metres) into the OpenCV camera frame. Returns (4, 4)
    float64 mapping GL-camera-frame points to world: T_world_camgl = inv(T_cam_world_cv) @ CV_TO_GL, since
    p_cv = CV_TO_GL p_gl.
    """
    T = np.asarray(T_cam_world_cv, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"opencv_to_gl_pose: expected a (4, 4) T_cam_world, got shape {T.shape}")
    R, t = T[:3, :3], T[:3, 3]
    T_world_cam = np.eye(4)
    T_world_cam[:3, :3] = R.T
    T_world_cam[:3, 3] = -R.T @ t
    return T_world_cam @ CV_TO_GL


def gl_projection_from_K(K: np.ndarray, width: int, height: int, znear: float, zfar: float) -> np.ndarray:
    """OpenGL projection matrix (4, 4) float64 reproducing the pinhole K for a width x height viewport.

    K: (3, 3) pixels (fx, fy, cx, cy, skew K[0, 1]) in the OpenCV pixel-centre convention. znear, zfar:
    positive clip distances in metres (0 < znear < zfar). Works on GL camera-frame points (x_g, y_g, z_g) =
    (X, -Y, -Z). With clip = P [x_g, y_g, z_g, 1], ndc = clip[:3] / clip[3] (clip[3] = Z) and the viewport
    x_w = (ndc_x + 1) W / 2, y_w = (ndc_y + 1) H / 2, one gets x_w = u + 0.5 and y_w = H - (v + 0.5) where
    (u, v) is the OpenCV projection with K; ndc_z runs from -1 at Z = znear to +1 at Z = zfar.

    Derivation: ndc_x = 2 (u + 0.5) / W - 1 with u = (fx X + skew Y) / Z + cx, times w_clip = Z = -z_g;
    likewise ndc_y = 1 - 2 (v + 0.5) / H. The depth rows are the standard glFrustum ones.
    This equals pyrender's ``IntrinsicsCamera(fx, fy, cx + 0.5, cy + 0.5)`` matrix when skew is zero: pyrender
    measures the principal point from the image corner, OpenCV from the centre of pixel (0, 0).
    """
    if not 0 < znear < zfar:
        raise ValueError(f"gl_projection_from_K: need 0 < znear < zfar, got znear={znear}, zfar={zfar}")
    K = np.asarray(K, dtype=np.float64)
    fx, skew, cx, fy, cy = K[0, 0], K[0, 1], K[0, 2], K[1, 1], K[1, 2]
    P = np.zeros((4, 4))
    P[0] = [2 * fx / width, -2 * skew / width, 1 - 2 * (cx + 0.5) / width, 0]
    P[1] = [0, 2 * fy / height, 2 * (cy + 0.5) / height - 1, 0]
    P[2] = [0, 0, -(zfar + znear) / (zfar - znear), -2 * zfar * znear / (zfar - znear)]
    P[3] = [0, 0, -1, 0]
    return P
