"""Frozen dataclasses carried across stage boundaries.

Conventions (written once here, see docs/ARCHITECTURE.md):
- Units: metres, seconds (timestamps in integer nanoseconds from ``time.monotonic_ns``), pixels.
- Camera frame: OpenCV (x right, y down, z forward). The left camera is the reference frame.
- Images: (H, W, 3) uint8 RGB, row-major, pixel centres at integer coordinates.
- Keypoints: MediaPipe's 21 (0 wrist, 1-4 thumb CMC..tip, 5-8 index MCP..tip, 9-12 middle, 13-16 ring,
  17-20 pinky).

Every array field is checked for shape and dtype in ``__post_init__`` so a bad value fails where it is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

N_KEYPOINTS = 21
N_POSE = 48
N_SHAPE = 10


def check_array(name: str, arr: np.ndarray, shape: tuple, dtype=None) -> None:
    """Raise ValueError unless ``arr`` is an ndarray of ``shape`` (None = any size) and ``dtype`` kind."""
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, got {type(arr).__name__}")
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape, strict=False)):
        raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
    if dtype is not None and arr.dtype != np.dtype(dtype):
        raise ValueError(f"{name}: expected dtype {np.dtype(dtype)}, got {arr.dtype}")


@dataclass(frozen=True)
class CameraView:
    """One calibrated camera of a rig.

    K: (3, 3) float64, pixels. dist: (N,) float64 OpenCV order (k1 k2 p1 p2 k3 ...), zeros when rectified.
    T_cam_left: (4, 4) float64, metres; maps points from the left-camera frame into this camera's frame.
    size_wh: image (width, height) in pixels.
    """

    K: np.ndarray
    dist: np.ndarray
    T_cam_left: np.ndarray
    size_wh: tuple[int, int]

    def __post_init__(self):
        check_array("K", self.K, (3, 3), np.float64)
        check_array("dist", self.dist, (None,), np.float64)
        check_array("T_cam_left", self.T_cam_left, (4, 4), np.float64)
        if len(self.size_wh) != 2 or min(self.size_wh) <= 0:
            raise ValueError(f"size_wh: expected (width, height) > 0, got {self.size_wh}")

    @property
    def P(self) -> np.ndarray:
        """(3, 4) float64 projection matrix from left-camera-frame metres to this view's pixels."""
        return self.K @ self.T_cam_left[:3, :]


@dataclass(frozen=True)
class StereoCalibration:
    """A calibrated two-view rig. ``rectified`` means both views share rows (pure x baseline, no distortion)."""

    left: CameraView
    right: CameraView
    rectified: bool
    name: str = "custom"

    def __post_init__(self):
        if not np.allclose(self.left.T_cam_left, np.eye(4)):
            raise ValueError("StereoCalibration.left.T_cam_left must be identity: the left camera is the reference")

    @property
    def baseline_m(self) -> float:
        """Distance between the two optical centres in metres."""
        return float(np.linalg.norm(self.right.T_cam_left[:3, 3]))


@dataclass(frozen=True)
class StereoFrame:
    """One synchronised stereo pair. left/right: (H, W, 3) uint8 RGB in the calibration's image size."""

    frame_id: int
    t_capture_ns: int
    left: np.ndarray
    right: np.ndarray
    calibration: StereoCalibration

    def __post_init__(self):
        w, h = self.calibration.left.size_wh
        check_array("StereoFrame.left", self.left, (h, w, 3), np.uint8)
        wr, hr = self.calibration.right.size_wh
        check_array("StereoFrame.right", self.right, (hr, wr, 3), np.uint8)


@dataclass(frozen=True)
class HandDetection:
    """One hand in one view.

    keypoints_px: (21, 2) float32, full-image pixels, MediaPipe order.
    handedness: 'left' or 'right' for the person's hand (already corrected for a non-mirrored camera).
    crop_box_xywh: (4,) float32 crop box in full-image pixels.
    crop_from_image: (2, 3) float64 affine mapping full-image pixels into the 224x224 crop.
    world_landmarks_m: (21, 3) float32 or None: MediaPipe's metric world landmarks, metres, origin near the
    hand's centre, axes of this view's camera (x right, y down, z forward), never mirrored.
    """

    keypoints_px: np.ndarray
    score: float
    handedness: str
    crop_box_xywh: np.ndarray
    crop_from_image: np.ndarray
    world_landmarks_m: np.ndarray | None = None

    def __post_init__(self):
        check_array("keypoints_px", self.keypoints_px, (N_KEYPOINTS, 2), np.float32)
        check_array("crop_box_xywh", self.crop_box_xywh, (4,), np.float32)
        check_array("crop_from_image", self.crop_from_image, (2, 3), np.float64)
        if self.world_landmarks_m is not None:
            check_array("world_landmarks_m", self.world_landmarks_m, (N_KEYPOINTS, 3), np.float32)
        if self.handedness not in ("left", "right"):
            raise ValueError(f"handedness: expected 'left' or 'right', got {self.handedness!r}")


@dataclass(frozen=True)
class HandObservation:
    """One hand seen by one or both views.

    keypoints_cam_m: (21, 3) float32, metres, left-camera frame (NaN rows where triangulation failed);
    None for a mono observation. residual_px: (21,) float32 reprojection residuals or None.
    crops: per view (224, 224, 3) float32 in [-1, 1]; heatmaps: per view (21, 224, 224) float32 in [-1, 1].
    is_left: True when the crops were mirrored from a left hand.
    """

    frame_id: int
    t_capture_ns: int
    left: HandDetection | None
    right: HandDetection | None
    keypoints_cam_m: np.ndarray | None
    residual_px: np.ndarray | None
    is_left: bool
    crops: tuple[np.ndarray, ...] = ()
    heatmaps: tuple[np.ndarray, ...] = ()

    def __post_init__(self):
        if self.left is None and self.right is None:
            raise ValueError("HandObservation needs a detection in at least one view")
        if self.keypoints_cam_m is not None:
            check_array("keypoints_cam_m", self.keypoints_cam_m, (N_KEYPOINTS, 3), np.float32)
        if self.residual_px is not None:
            check_array("residual_px", self.residual_px, (N_KEYPOINTS,), np.float32)

    @property
    def is_mono(self) -> bool:
        return self.left is None or self.right is None


@dataclass(frozen=True)
class HandState:
    """Hand model parameters. pose: (48,) float32 axis-angle (3 global + 15x3 joints, MANO order);
    shape: (10,) float32; transl_m: (3,) float32 metres, left-camera frame; is_left: left hand."""

    pose: np.ndarray
    shape: np.ndarray
    transl_m: np.ndarray
    is_left: bool

    def __post_init__(self):
        check_array("pose", self.pose, (N_POSE,), np.float32)
        check_array("shape", self.shape, (N_SHAPE,), np.float32)
        check_array("transl_m", self.transl_m, (3,), np.float32)


@dataclass(frozen=True)
class HandMesh:
    """A posed hand surface. verts_m: (V, 3) float32 metres, left-camera frame; faces: (F, 3) int64;
    joints_m: (21, 3) float32 metres, left-camera frame, MediaPipe keypoint order."""

    frame_id: int
    t_capture_ns: int
    verts_m: np.ndarray
    faces: np.ndarray
    joints_m: np.ndarray
    state: HandState
    fit_residual: float = float("nan")

    def __post_init__(self):
        check_array("verts_m", self.verts_m, (None, 3), np.float32)
        check_array("faces", self.faces, (None, 3), np.int64)
        check_array("joints_m", self.joints_m, (N_KEYPOINTS, 3), np.float32)


@dataclass(frozen=True)
class TextureMap:
    """rgb: (S, S, 3) float32 in [0, 1], row 0 = top (UV v=1); weight: (S, S) float32 confidence."""

    rgb: np.ndarray
    weight: np.ndarray
    n_updates: int = 0

    def __post_init__(self):
        check_array("rgb", self.rgb, (None, None, 3), np.float32)
        s = self.rgb.shape[0]
        check_array("weight", self.weight, (s, s), np.float32)


@dataclass(frozen=True)
class ViewerSnapshot:
    """Numpy-only copy of what the viewer draws. timings_ms: stage name -> latest latency in ms."""

    frame_id: int
    t_capture_ns: int
    image: np.ndarray
    meshes: tuple[HandMesh, ...] = ()
    texture: TextureMap | None = None
    timings_ms: dict = field(default_factory=dict)
