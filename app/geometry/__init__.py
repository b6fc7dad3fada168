"""Pure geometry (numpy and torch, no cv2): cameras, triangulation, rotations, Procrustes, crop camera, GL.

Conventions: OpenCV camera frame (x right, y down, z forward), metres, pixels (centres at integers); the left
camera is the reference frame; ``T_b_a`` (4, 4) maps points from frame a into frame b. The OpenGL conversion
lives only in :mod:`app.geometry.gl`.
"""

from app.geometry.camera import (
    invert_transform,
    project,
    project_distorted,
    transform_points,
    undistort_points,
    unproject,
)
from app.geometry.gl import CV_TO_GL, gl_projection_from_K, opencv_to_gl_pose
from app.geometry.procrustes import mpjpe, pa_mpjpe, procrustes_align
from app.geometry.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    mirror_axis_angle,
    mirror_points_x,
)
from app.geometry.triangulation import reprojection_residuals, triangulate_dlt, triangulate_rectified
from app.geometry.weak_perspective import (
    crop_to_image_px,
    image_to_crop_px,
    translation_to_weak_perspective,
    weak_perspective_project,
    weak_perspective_to_translation,
)

__all__ = [
    "CV_TO_GL",
    "axis_angle_to_matrix",
    "crop_to_image_px",
    "gl_projection_from_K",
    "image_to_crop_px",
    "invert_transform",
    "matrix_to_axis_angle",
    "mirror_axis_angle",
    "mirror_points_x",
    "mpjpe",
    "opencv_to_gl_pose",
    "pa_mpjpe",
    "procrustes_align",
    "project",
    "project_distorted",
    "reprojection_residuals",
    "transform_points",
    "translation_to_weak_perspective",
    "triangulate_dlt",
    "triangulate_rectified",
    "undistort_points",
    "unproject",
    "weak_perspective_project",
    "weak_perspective_to_translation",
]
