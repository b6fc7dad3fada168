"""The animated synthetic source: ``synthetic[?seed=S&frames=N&fps=F&rig=zed-mini&mode=640x360&hands=1|2&
pace=realtime|fast&aa=0|1]`` (docs/CAPTURE.md, section "Synthetic source").

A textured open-model hand (and its forearm) plays a seeded loop of gestures (``app/capture/synthetic_motion.py``)
in front of a nominal rectified ZED-family rig (``calibration/presets.py``), over a static background plane
1.5 m away whose two views have the plane's exact stereo parallax. Everything (skin tone and texture, hand shape,
lights, background, the order and timing of gestures, the wrist path) is deterministic from the seed; frame
``i`` shows the motion at ``i / fps`` seconds whatever the pacing, so ``ground_truth(frame_id)`` is exact.

Speed (docs/PERFORMANCE.md, "Synthetic source"): one pyrender scene is built once and reused (one camera node per
view, lights fixed in the left-camera frame); per frame the hands' vertex buffers are rewritten in place and the
forearms' node poses set. The hand is rendered over a transparent clear and composited over the precomputed
background images, so GL shades only the hand's pixels; single-sample by default (``aa=1``: pyrender's 4x
multisampling). The pyrender renderer is made lean (``app/offscreen/lean.py``): the directional-light-only
fragment shader of ``app/offscreen/shaders/directional.frag`` (pyrender's BRDF; its own shader's light loops made
Mesa's llvmpipe several times slower), no full-frame colour and depth read-back (only the box the hands and
forearms project into is read, ``view_box``, and composited with OpenCV's uint8 arithmetic), and the view matrix
inverted in closed form (numpy's LAPACK inverse woke OpenBLAS's threads every pass). The segmentation pass for
masks runs only when ``ground_truth`` asks for masks.

Lights: directions of travel in the left-camera frame, placed as pyrender nodes directly in that (world) frame
(``light_pose``); ``app/offscreen/renderer.py`` multiplies its light poses by CV_TO_GL, which flips their y and z.

Threads: every GL call runs on one worker thread owned by the source (an EGL context can be current in only one
thread), each frame's pose-and-render or pose-and-segment as one job, so the source may be opened, read and
closed from different threads, and ``ground_truth`` may be called from another thread than ``read``; ``read``
itself is for one consumer. Model calls run on one torch thread (``one_torch_thread``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.sparse
import torch

from app.capture.base import ClosingMixin
from app.capture.errors import CaptureError
from app.capture.synthetic_motion import (
    HandMotion,
    MotionSample,
    WristBox,
    build_motion,
    mirror_sample,
    pose_vectors,
    sample_motion,
)
from app.capture.uri import SourceURI
from app.geometry.gl import opencv_to_gl_pose
from app.offscreen import use_offscreen_platform
from app.offscreen.kept_scene import Patch, read_box, write_vertex_buffer
from app.offscreen.lean import lean_offscreen_renderer
from app.offscreen.renderer import set_multisample_count, srgb_to_linear
from app.types import N_KEYPOINTS, N_POSE, N_SHAPE, HandState, StereoCalibration, StereoFrame, check_array
from calibration.errors import CalibrationError
from calibration.presets import RIG_PRESETS, preset_rig
from models.hand_model.layer import HandModel, _load_open
from models.hand_model.uv import unweld
from models.synth.appearance import random_background
from models.synth.forearm import forearm_mesh
from models.synth.scene import Lighting
from models.synth.skin import SkinPainter, SkinTexture

PARAMS = ("seed", "frames", "fps", "rig", "mode", "hands", "pace", "aa")
PACES = ("realtime", "fast")
MAX_FPS = 240.0
MAX_SIDE_PX = 4096
ZNEAR_M = 0.02  # the cameras' near plane, metres
BOX_MARGIN_PX = 2  # read-back box margin around the projected hand and forearm vertices


# ---------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------


def config_problem(seed: int, frames: int, fps: float, rig: str, mode: str, hands: int, pace: str, **_) -> str | None:
    """What is wrong with these parameters (worded as URI parameters, with the fix), or None."""
    if seed < 0:
        return f"seed={seed}: give an integer >= 0"
    if frames < 0:
        return f"frames={frames}: give a positive frame count, or 0 (the default) for an endless source"
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        return f"fps={fps:g}: give a frame rate above 0 and at most {MAX_FPS:g}, e.g. fps=30"
    if hands not in (1, 2):
        return f"hands={hands}: give hands=1 (a right hand) or hands=2 (both hands, mirrored motion)"
    if pace not in PACES:
        return f"pace={pace!r} is unknown; use pace=realtime (frames at fps, the default) or pace=fast"
    if rig.lower() not in RIG_PRESETS:
        return f"rig={rig!r} is unknown; use one of {', '.join(sorted(RIG_PRESETS))} (default zed-mini)"
    try:
        w, h = preset_rig(rig, mode).left.size_wh
    except CalibrationError as exc:
        return f"mode={mode!r}: {exc}"
    if max(w, h) > MAX_SIDE_PX or min(w, h) < 32:
        return f"mode={mode!r}: {w}x{h} per eye is out of range; use 32 to {MAX_SIDE_PX} pixels a side"
    return None


@dataclass(frozen=True)
class SyntheticConfig:
    """The synthetic source's settings (the URI parameters; frames 0 = endless; antialias = ``aa=1``: pyrender's
    4x multisampling, 1.5-2x the frame time on a CPU renderer). texture_size: skin texture side in texels;
    background_depth_m: distance of the background plane from the left camera."""

    seed: int = 0
    frames: int = 0
    fps: float = 30.0
    rig: str = "zed-mini"
    mode: str = "640x360"
    hands: int = 1
    pace: str = "realtime"
    antialias: bool = False
    texture_size: int = 512
    background_depth_m: float = 1.5

    def __post_init__(self):
        problem = config_problem(**self.__dict__)
        if problem:
            raise CaptureError(f"synthetic source: {problem}")
        if not 0.8 <= self.background_depth_m <= 10.0 or self.texture_size < 64:
            raise CaptureError("synthetic source: background_depth_m must be 0.8-10 m and texture_size >= 64")


def config_from_uri(uri: SourceURI) -> SyntheticConfig:
    """SyntheticConfig from ``synthetic?...``; CaptureError naming the URI, the parameter and the fix."""
    uri.check_params(PARAMS)
    if uri.target:
        raise CaptureError(f"source {uri.text!r}: 'synthetic' takes no target; write e.g. synthetic?seed=1")
    values = dict(seed=uri.number("seed", 0, int), frames=uri.number("frames", 0, int),
                  fps=uri.number("fps", 30.0, float), rig=uri.params.get("rig") or "zed-mini",
                  mode=uri.params.get("mode") or "640x360", hands=uri.number("hands", 1, int),
                  pace=(uri.params.get("pace") or "realtime").lower(), antialias=uri.flag("aa", False))
    problem = config_problem(**values)
    if problem:
        raise CaptureError(f"source {uri.text!r}: {problem}")
    return SyntheticConfig(**values)


# ---------------------------------------------------------------------------------------------------------
# Ground truth
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticTruth:
    """One hand in one frame of the synthetic source.

    frame_id: the StereoFrame's id; is_left: the left hand (the open left model, motion mirrored across the rig's
    centre plane); gesture: the gesture being played.
    pose: (48,) float32 axis-angle radians (3 global + 15 x 3 joints, MANO order) of the open model of that side;
    shape: (10,) float32 betas; transl_m: (3,) float32 metres, the model's translation (root joint = rest root +
    transl), left-camera frame.
    verts_m: (V, 3) float32 metres and keypoints_m: (21, 3) float32 metres (MediaPipe order), left-camera frame.
    keypoints_px: (2, 21, 2) float32 pixels in the left and the right view (projection through each view's P).
    masks: (2, H, W) bool per view, True where this hand's surface is the visible one (the other hand and the
    forearms occlude it), or None when not requested.
    """

    frame_id: int
    is_left: bool
    gesture: str
    pose: np.ndarray
    shape: np.ndarray
    transl_m: np.ndarray
    verts_m: np.ndarray
    keypoints_m: np.ndarray
    keypoints_px: np.ndarray
    masks: np.ndarray | None = None

    def __post_init__(self):
        check_array("pose", self.pose, (N_POSE,), np.float32)
        check_array("shape", self.shape, (N_SHAPE,), np.float32)
        check_array("transl_m", self.transl_m, (3,), np.float32)
        check_array("verts_m", self.verts_m, (None, 3), np.float32)
        check_array("keypoints_m", self.keypoints_m, (N_KEYPOINTS, 3), np.float32)
        check_array("keypoints_px", self.keypoints_px, (2, N_KEYPOINTS, 2), np.float32)
        if self.masks is not None:
            check_array("masks", self.masks, (2, None, None), bool)

    @property
    def state(self) -> HandState:
        """The hand's parameters as the pipeline's HandState."""
        return HandState(self.pose, self.shape, self.transl_m, self.is_left)


def project_views(points_m: np.ndarray, calibration: StereoCalibration) -> np.ndarray:
    """points_m: (N, 3) metres, left-camera frame -> (2, N, 2) float64 pixels in the left and right views
    (through each view's P = K [R | t]; the rig is rectified, so no distortion)."""
    X = np.concatenate([points_m, np.ones((len(points_m), 1))], axis=1)
    out = []
    for view in (calibration.left, calibration.right):
        p = X @ view.P.T
        out.append(p[:, :2] / p[:, 2:3])
    return np.stack(out)


# ---------------------------------------------------------------------------------------------------------
# Hands: model, shape, render topology
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HandFrame:
    """One hand posed for one frame. pose (48,) float32; transl_m (3,) float32; verts_m (V, 3) float32 and
    keypoints_m (21, 3) float32 metres, left-camera frame; arm_pose: (4, 4) float64 rigid transform of the
    forearm's rest vertices into the left-camera frame; gesture: name."""

    pose: np.ndarray
    transl_m: np.ndarray
    verts_m: np.ndarray
    keypoints_m: np.ndarray
    arm_pose: np.ndarray
    gesture: str


@contextlib.contextmanager
def one_torch_thread():
    """Run small model calls on one torch thread, restoring the previous count after: on busy cores a (1, 48)
    forward took 114 ms with 2 threads and 0.6 ms with 1 (CONTRIBUTING). A no-op when the entry point already
    set one thread, as the live app does; CLIs such as ``python -m app.capture`` do not."""
    previous = torch.get_num_threads()
    if previous != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if previous != 1:
            torch.set_num_threads(previous)


@functools.lru_cache(maxsize=2)
def open_hand_model(side: str) -> HandModel:
    """The embedded open model of ``side``, built once per process (read-only use, inference only)."""
    return HandModel(_load_open(side), is_left=side == "left", name="open")


@functools.lru_cache(maxsize=2)
def skin_painter(size: int) -> SkinPainter:
    """The right model's SkinPainter (its per-texel maps take a second or two), built once per process;
    ``paint`` does not change it."""
    return SkinPainter(_load_open("right"), size)


class HandKit:
    """One side's open hand model with the source's shape, its render topology (UV seams split) and forearm."""

    def __init__(self, side: str, shape: np.ndarray):
        data = _load_open(side)
        self.is_left = side == "left"
        self.model = open_hand_model(side)
        self.joint_frames = np.asarray(data["joint_frames"], np.float64)
        self.shape = np.asarray(shape, np.float32)
        self._shape_t = torch.from_numpy(self.shape[None])
        with torch.no_grad(), one_torch_thread():
            self.root_rest_m = self.model.rest_joints(self._shape_t)[0, 0].numpy().astype(np.float64)
        self.faces = np.asarray(data["f"], np.int64)
        self.ft = np.asarray(data["ft"], np.int64)
        self.render = unweld(self.faces, self.ft)
        self.vertex_faces = vertex_face_incidence(self.faces, len(data["v_template"]))
        arm_v, arm_f = forearm_mesh()
        # The left model is the right mirrored in model x: mirror the arm too, re-wound to stay outward.
        self.arm_verts_m = arm_v * np.array([-1.0, 1.0, 1.0]) if self.is_left else arm_v
        self.arm_faces = arm_f[:, ::-1].copy() if self.is_left else arm_f

    def pose_model(self, sample: MotionSample):
        """Model inputs and output for a motion sample of N times: (pose (N, 48) float32, transl (N, 3) float32,
        HandModelOutput); the wrist (root joint) lands on sample.wrist_m."""
        pose = pose_vectors(sample, self.joint_frames).astype(np.float32)
        transl = (sample.wrist_m - self.root_rest_m).astype(np.float32)
        with torch.no_grad(), one_torch_thread():
            out = self.model(torch.from_numpy(pose), self._shape_t, torch.from_numpy(transl))
        return pose, transl, out

    def pose_frame(self, sample: MotionSample) -> HandFrame:
        """The hand posed as a motion sample of one time says, with its forearm's pose."""
        pose, transl, out = self.pose_model(sample)
        R, wrist = _quat_matrix(sample.quat_xyzw[0]), sample.wrist_m[0]
        arm = np.eye(4)
        arm[:3, :3], arm[:3, 3] = R, wrist - R @ self.root_rest_m
        arrays = [pose[0], transl[0], out.verts_m[0].numpy(), out.keypoints_m[0].numpy(), arm]
        for a in arrays:  # cached and handed out in SyntheticTruth: nobody may change them in place
            a.setflags(write=False)
        return HandFrame(*arrays, sample.labels[0])


def _quat_matrix(q: np.ndarray) -> np.ndarray:
    """(4,) unit quaternion (x, y, z, w) -> (3, 3) rotation matrix."""
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def vertex_face_incidence(faces: np.ndarray, n_verts: int) -> scipy.sparse.csr_matrix:
    """(V, F) sparse 0/1 matrix: vertex v touches face f. ``A @ face_values`` sums over each vertex's faces."""
    rows = faces.ravel()
    cols = np.repeat(np.arange(len(faces)), 3)
    return scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_verts, len(faces)))


def vertex_normals(verts_m: np.ndarray, faces: np.ndarray, incidence: scipy.sparse.csr_matrix) -> np.ndarray:
    """(V, 3) float32 unit normals, area-weighted average of the faces around each vertex (outward winding)."""
    v = verts_m.astype(np.float64)
    fn = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    vn = incidence @ fn
    return (vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# Appearance: lights and the background plane
# ---------------------------------------------------------------------------------------------------------


def sample_stereo_lighting(rng: np.random.Generator) -> Lighting:
    """A key light from the camera side and above (travelling into the scene, +z, and down, +y) and a fill light
    from one side; directions of travel in the left-camera frame."""
    key = np.array([rng.normal(0, 0.3), rng.uniform(0.1, 0.6), 1.0])
    fill = np.array([rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0), rng.normal(0, 0.3), rng.uniform(0.3, 1.0)])
    dirs = np.stack([key, fill])
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return Lighting(dirs, np.array([rng.uniform(2.0, 3.0), rng.uniform(0.5, 1.5)]), float(rng.uniform(0.25, 0.4)))


def plane_extent(calibration: StereoCalibration, depth_m: float, margin: float = 0.05) -> np.ndarray:
    """(2, 2) [[x0, x1], [y0, y1]] metres: the part of the plane z = depth_m (left-camera frame) that either view
    sees, grown by ``margin`` of its size."""
    pts = []
    for view in (calibration.left, calibration.right):
        w, h = view.size_wh
        corners = np.array([[-0.5, -0.5, 1], [w - 0.5, -0.5, 1], [w - 0.5, h - 0.5, 1], [-0.5, h - 0.5, 1.0]])
        R, t = view.T_cam_left[:3, :3], view.T_cam_left[:3, 3]
        rays = corners @ np.linalg.inv(view.K).T @ R  # directions in the left-camera frame (R^T d)
        centre = -R.T @ t
        s = (depth_m - centre[2]) / rays[:, 2]
        pts.append(centre[:2] + rays[:, :2] * s[:, None])
    pts = np.concatenate(pts)
    lo, hi = pts.min(0), pts.max(0)
    pad = (hi - lo) * margin
    return np.stack([lo - pad, hi + pad], axis=1)


def plane_to_view_homography(view, extent: np.ndarray, tex_wh: tuple[int, int], depth_m: float) -> np.ndarray:
    """(3, 3) homography from texture pixels (centres at integers) of a texture spanning ``extent`` on the plane
    z = depth_m (left-camera frame) to the view's pixels: p ~ K [R | t] (x0 + s sx, y0 + t sy, depth, 1)."""
    (x0, x1), (y0, y1) = extent
    sx, sy = (x1 - x0) / tex_wh[0], (y1 - y0) / tex_wh[1]
    R, t = view.T_cam_left[:3, :3], view.T_cam_left[:3, 3]
    origin = np.array([x0 + 0.5 * sx, y0 + 0.5 * sy, depth_m])
    return view.K @ np.stack([R[:, 0] * sx, R[:, 1] * sy, R @ origin + t], axis=1)


def plane_backgrounds(rng: np.random.Generator, calibration: StereoCalibration, depth_m: float) -> np.ndarray:
    """(2, H, W, 3) uint8: a random_background texture on the plane z = depth_m seen by the left and right view
    (each view's image warped through its exact plane homography, so the views have the plane's parallax)."""
    extent = plane_extent(calibration, depth_m)
    px_per_m = max(calibration.left.K[0, 0], calibration.left.K[1, 1]) / depth_m
    tex_wh = tuple(int(np.ceil(s * px_per_m)) for s in extent[:, 1] - extent[:, 0])
    texture = random_background(rng, *tex_wh)
    out = []
    for view in (calibration.left, calibration.right):
        H = plane_to_view_homography(view, extent, tex_wh, depth_m)
        out.append(cv2.warpPerspective(texture, H, view.size_wh, flags=cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


def composite_premultiplied(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 render over a transparent clear (after the multisample resolve the colour is already
    scaled by coverage) over (H, W, 3) uint8 background -> (H, W, 3) uint8: rgb + background * (1 - alpha),
    rounded to the nearest level; only the pixels the render covers change."""
    out = background.copy()
    composite_over(out, Patch(rgba, 0, 0))
    return out


def composite_over(image: np.ndarray, patch: Patch) -> None:
    """Lay a premultiplied RGBA patch ((h, w, 4) uint8 at patch.x0, patch.y0, inside the image) over ``image``
    (H, W, 3) uint8 in place: rgb + round(image * (255 - alpha) / 255), saturated at 255; pixels with alpha 0
    keep their value (the clear is transparent black). OpenCV's saturating uint8 arithmetic rounds exactly as
    ``(x * (255 - a) + 127) // 255`` (no ties: 255 is odd) and runs ~10x faster than numpy on channel views."""
    h, w = patch.rgba.shape[:2]
    if h == 0 or w == 0:
        return
    region = image[patch.y0:patch.y0 + h, patch.x0:patch.x0 + w]
    inv_alpha = cv2.cvtColor(255 - cv2.extractChannel(patch.rgba, 3), cv2.COLOR_GRAY2RGB)
    under = cv2.multiply(region, inv_alpha, scale=1.0 / 255.0)
    cv2.add(cv2.cvtColor(patch.rgba, cv2.COLOR_RGBA2RGB), under, dst=region)


def view_box(points_m: np.ndarray, view, margin_px: int = BOX_MARGIN_PX) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) pixels (x1, y1 exclusive) of the view holding the projection of points_m (N, 3) metres,
    left-camera frame, through the view's P (no distortion: the rig is rectified), grown by ``margin_px``; the
    whole image when a point is not in front of the near plane; None when the projection misses the image."""
    w, h = view.size_wh
    p = points_m @ view.T_cam_left[:3, :3].T + view.T_cam_left[:3, 3]
    if not np.isfinite(p).all() or (p[:, 2] <= ZNEAR_M).any():
        return 0, 0, w, h
    uv = p[:, :2] / p[:, 2:3] @ view.K[:2, :2].T + view.K[:2, 2]
    lo = np.floor(uv.min(0)).astype(int) - margin_px
    hi = np.ceil(uv.max(0)).astype(int) + 1 + margin_px
    x0, y0, x1, y1 = max(lo[0], 0), max(lo[1], 0), min(hi[0], w), min(hi[1], h)
    return None if x0 >= x1 or y0 >= y1 else (int(x0), int(y0), int(x1), int(y1))


# ---------------------------------------------------------------------------------------------------------
# The persistent stereo scene (GL thread only)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HandLook:
    """What the renderer needs of one hand: render topology (seams split) and the forearm's rest mesh.
    vertex_index: (R,) int model vertex of each render vertex; uv: (R, 2) float32; faces: (F, 3) int64 render
    faces; arm_verts_m: (N, 3) float64 metres, model rest frame; arm_faces: (M, 3) int64."""

    vertex_index: np.ndarray
    uv: np.ndarray
    faces: np.ndarray
    arm_verts_m: np.ndarray
    arm_faces: np.ndarray


class StereoSceneRenderer:
    """One pyrender scene for both views of a rig, built once: skin material (one texture upload), hand meshes
    whose vertex buffers are rewritten in place, forearm nodes moved by pose, lights fixed in the left-camera
    frame, a camera node per view. Each view reads back only the box its hands and forearms project into.
    ``samples``: multisamples per pixel actually used (0 unless ``antialias``). Not thread-safe: create, use and
    close it on one thread (SyntheticSource keeps it on its GL thread)."""

    def __init__(self, calibration: StereoCalibration, looks: list[HandLook], skin: SkinTexture,
                 arm_rgb: np.ndarray, lighting: Lighting, backgrounds: np.ndarray, antialias: bool = False):
        use_offscreen_platform()
        import pyrender

        self._pr, self._looks, self.backgrounds = pyrender, looks, backgrounds
        self._views = (calibration.left, calibration.right)
        self._renderer = lean_offscreen_renderer(*calibration.left.size_wh, len(lighting.dirs_cam))
        self._scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=[lighting.ambient] * 3)
        self._cams = [self._scene.add(_camera(pyrender, v), pose=opencv_to_gl_pose(v.T_cam_left))
                      for v in self._views]
        for d, inten in zip(lighting.dirs_cam, lighting.intensity, strict=True):
            self._scene.add(pyrender.DirectionalLight(intensity=float(inten)), pose=light_pose(d))
        tex = pyrender.Texture(source=np.ascontiguousarray(skin.image), source_channels="RGB")
        self._skin = pyrender.MetallicRoughnessMaterial(metallicFactor=0.0, roughnessFactor=0.65,
                                                        baseColorFactor=[1.0] * 4, baseColorTexture=tex)
        arm_mat = pyrender.MetallicRoughnessMaterial(metallicFactor=0.0, roughnessFactor=0.7,
                                                     baseColorFactor=[*srgb_to_linear(arm_rgb), 1.0])
        self._arms = [self._scene.add(_arm_mesh(pyrender, lk, arm_mat)) for lk in looks]
        self._hands = [self._scene.add(pyrender.Mesh([self._hand_primitive(lk)])) for lk in looks]
        self._points_m: np.ndarray | None = None  # what is drawn (hand and forearm vertices), for the read boxes
        self._pass(self._cams[0], pyrender.RenderFlags.RGBA)  # uploads the scene and creates the framebuffers
        self.samples = 4 if antialias or not set_multisample_count(self._renderer, 0) else 0

    def _hand_primitive(self, look: HandLook):
        """A hand's primitive with placeholder vertices (all at the origin: draws nothing); ``set_hands`` rewrites
        its vertex buffer."""
        n = len(look.vertex_index)
        normals = np.tile(np.array([0.0, 0.0, -1.0], np.float32), (n, 1))
        return self._pr.Primitive(positions=np.zeros((n, 3), np.float32), normals=normals, texcoord_0=look.uv,
                                  indices=look.faces, material=self._skin, mode=self._pr.constants.GLTF.TRIANGLES)

    def set_hands(self, verts_m: list[np.ndarray], normals: list[np.ndarray], arm_poses: list[np.ndarray]) -> None:
        """Rewrite each hand's vertex buffer in place (verts/normals (V, 3) float32, left-camera frame, model
        vertex order) and move each forearm (arm_poses (4, 4) rest -> left-camera frame)."""
        self._renderer._platform.make_current()
        points = []
        for node, arm, lk, v, n, T in zip(self._hands, self._arms, self._looks, verts_m, normals, arm_poses,
                                          strict=True):
            write_vertex_buffer(node.mesh.primitives[0], hand_vertex_data(lk, v, n))
            self._scene.set_pose(arm, T)
            points += [np.asarray(v, np.float64), lk.arm_verts_m @ T[:3, :3].T + T[:3, 3]]
        self._points_m = np.concatenate(points)

    def render_views(self) -> tuple[np.ndarray, np.ndarray]:
        """(left, right) (H, W, 3) uint8 RGB: the shaded hands over each view's background."""
        out = []
        for cam, view, bg in zip(self._cams, self._views, self.backgrounds, strict=True):
            frame = bg.copy()
            patch = self._render_box(cam, view, self._pr.RenderFlags.RGBA)
            if patch is not None:
                composite_over(frame, patch)
            out.append(frame)
        return out[0], out[1]

    def render_masks(self) -> np.ndarray:
        """(n_hands, 2, H, W) bool: per hand and view, the pixels where that hand is the visible surface
        (flat segmentation pass, no antialiasing; forearms drawn as occluders)."""
        seg = {node: np.array([i + 1, 0, 0]) for i, node in enumerate(self._hands)}
        seg.update({node: np.zeros(3) for node in self._arms})
        codes = []
        for cam, view in zip(self._cams, self._views, strict=True):
            w, h = view.size_wh
            code = np.zeros((h, w), np.uint8)
            patch = self._render_box(cam, view, self._pr.RenderFlags.SEG, seg)
            if patch is not None:
                ph, pw = patch.rgba.shape[:2]
                code[patch.y0:patch.y0 + ph, patch.x0:patch.x0 + pw] = patch.rgba[..., 0]
            codes.append(code)
        return np.stack([np.stack([c == i + 1 for c in codes]) for i in range(len(self._hands))])

    def _render_box(self, cam, view, flags, seg_node_map=None) -> Patch | None:
        """Render the scene from camera node ``cam`` and read the box of ``view`` that the hands and forearms
        project into: Patch (h, w, 4) uint8 RGBA, rows from the top; None when nothing lands in view."""
        box = None if self._points_m is None else view_box(self._points_m, view)
        if box is None:
            return None
        self._pass(cam, flags, seg_node_map)
        self._renderer._platform.make_current()
        return Patch(read_box(self._renderer, box), box[0], box[1])

    def _pass(self, cam, flags, seg_node_map=None) -> None:
        """pyrender's forward pass from camera node ``cam`` (its read-back skipped)."""
        self._scene.main_camera_node = cam
        self._renderer.render(self._scene, flags=flags, seg_node_map=seg_node_map)

    def close(self) -> None:
        from OpenGL.error import GLError

        try:
            self._renderer.delete()
        except (GLError, AssertionError):
            # pyrender terminates the process-wide EGL display whenever any of its renderers is deleted, so a
            # renderer closed earlier (another source, a viewer) may have taken this context's display with it;
            # the context's resources went with the display.
            pass


def hand_vertex_data(look: HandLook, verts_m: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """(R, 8) float32 [position, normal, uv] per render vertex from model-order verts_m and normals (V, 3):
    the interleaved layout of pyrender's buffer for a primitive with positions, normals and texcoord_0."""
    idx = look.vertex_index
    return np.concatenate([verts_m[idx], normals[idx], look.uv], axis=1, dtype=np.float32)


def _camera(pr, view):
    """pyrender camera of a view's K; +0.5 because GL windows put pixel centres at half-integers (as in
    app/offscreen/renderer.py and app/geometry/gl.py)."""
    K = view.K
    return pr.IntrinsicsCamera(K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5, znear=ZNEAR_M, zfar=20.0)


def light_pose(direction: np.ndarray) -> np.ndarray:
    """(4, 4) node pose of a pyrender directional light travelling along ``direction`` (left-camera frame): the
    scene's world frame is the left camera's OpenCV frame and pyrender lights shine along their node's -z."""
    z = -np.asarray(direction, np.float64) / np.linalg.norm(direction)
    x = np.cross([0.0, 1.0, 0.0], z)
    if np.linalg.norm(x) < 1e-6:
        x = np.cross([1.0, 0.0, 0.0], z)
    x /= np.linalg.norm(x)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    return pose


def _arm_mesh(pr, look: HandLook, material):
    import trimesh

    tm = trimesh.Trimesh(look.arm_verts_m, look.arm_faces, process=False)
    prim = pr.Primitive(positions=look.arm_verts_m.astype(np.float32), normals=tm.vertex_normals.astype(np.float32),
                        indices=look.arm_faces, material=material, mode=pr.constants.GLTF.TRIANGLES)
    return pr.Mesh([prim])


# ---------------------------------------------------------------------------------------------------------
# Pacing
# ---------------------------------------------------------------------------------------------------------


class FramePacer:
    """Which frame comes next, and when.

    realtime: frame i is due at t0 + i / fps (t0 = the clock at the first call). ``next()`` sleeps until the next
    frame is due; when the consumer fell behind it skips to the newest frame already due (the skipped ones count
    in ``dropped``), as a camera that keeps only the latest image would. Timestamps: t0 + i / fps, monotonic ns.
    fast: every frame in turn without waiting; timestamps i / fps from 0, like a video file.
    ``clock`` (monotonic ns) and ``sleep`` (seconds) are injectable for tests.
    """

    def __init__(self, fps: float, realtime: bool, clock: Callable[[], int] = time.monotonic_ns,
                 sleep: Callable[[float], None] = time.sleep):
        self.fps, self.realtime, self._clock, self._sleep = float(fps), realtime, clock, sleep
        self._t0_ns: int | None = None
        self._last = -1
        self.dropped = 0

    def due_ns(self, index: int) -> int:
        """Nominal time of frame ``index`` after the first: index / fps seconds, in ns."""
        return int(round(index * 1e9 / self.fps))

    def next(self) -> tuple[int, int]:
        """(frame index, t_capture_ns) of the frame to emit now."""
        if not self.realtime:
            self._last += 1
            return self._last, self.due_ns(self._last)
        if self._t0_ns is None:
            self._t0_ns, self._last = self._clock(), 0
            return 0, self._t0_ns
        index = max(self._last + 1, int((self._clock() - self._t0_ns) * self.fps // 1e9))
        wait_ns = self._t0_ns + self.due_ns(index) - self._clock()
        if wait_ns > 0:
            self._sleep(wait_ns / 1e9)
        self.dropped += index - self._last - 1
        self._last = index
        return index, self._t0_ns + self.due_ns(index)


# ---------------------------------------------------------------------------------------------------------
# The source
# ---------------------------------------------------------------------------------------------------------


def wrist_box(hands: int, centre_x_m: float) -> WristBox:
    """Where the right wrist wanders: centred on the rig for one hand; on the image's left half for two (the
    left hand mirrors it across x = centre_x_m, keeping the hands about 0.2 m apart)."""
    if hands == 1:
        return WristBox((centre_x_m - 0.12, centre_x_m + 0.12), (0.03, 0.10), (0.33, 0.55))
    return WristBox((centre_x_m - 0.22, centre_x_m - 0.13), (0.03, 0.10), (0.42, 0.58))


class SyntheticSource(ClosingMixin):
    """``synthetic?...``: an animated textured hand (or two) seen by a nominal ZED-family rig.

    calibration: the rectified rig; frames_total: N or None (endless, looping); nominal_fps; is_live: True for
    pace=realtime and for endless sources (a consumer should not wait for their end); skin: the SkinTexture
    painted once for this source (the right hand's UV layout; the left hand wears the same image through its
    mirrored UV faces); motion: the right hand's HandMotion (period ``motion.period_s``).
    ``read()`` -> StereoFrame (frame_id = index of the motion frame at frame_id / fps seconds; realtime skips ids
    when the consumer falls behind); ``ground_truth(frame_id, hand)`` -> SyntheticTruth.
    """

    def __init__(self, config: SyntheticConfig, clock: Callable[[], int] = time.monotonic_ns,
                 sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.calibration = preset_rig(config.rig, config.mode)
        self.nominal_fps = float(config.fps)
        self.frames_total = config.frames or None
        self.is_live = config.pace == "realtime" or config.frames == 0
        look_rng, shape_rng, motion_rng, light_rng, bg_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(5))
        shape = np.clip(shape_rng.normal(0.0, 1.0, N_SHAPE), -2.0, 2.0)
        self._kits = [HandKit(side, shape) for side in ("right", "left")[: config.hands]]
        self.skin = skin_painter(config.texture_size).paint(look_rng)
        self._centre_x_m = self.calibration.baseline_m / 2.0
        self.motion: HandMotion = build_motion(motion_rng, wrist_box(config.hands, self._centre_x_m))
        self._pacer = FramePacer(config.fps, config.pace == "realtime", clock, sleep)
        self._frames_cache: OrderedDict[int, list[HandFrame]] = OrderedDict()
        self._masks_cache: tuple[int, np.ndarray] | None = None
        self._cache_lock = threading.Lock()  # read() and ground_truth() may come from different threads
        self._ended = self._closed = False
        backgrounds = plane_backgrounds(bg_rng, self.calibration, config.background_depth_m)
        self._start_renderer(sample_stereo_lighting(light_rng), backgrounds)

    def _start_renderer(self, lighting: Lighting, backgrounds: np.ndarray) -> None:
        """The GL thread and the scene on it; CaptureError saying what to install when GL is unavailable."""
        self._gl = ThreadPoolExecutor(1, thread_name_prefix="synthetic-gl")
        looks = [HandLook(k.render.vertex_index, self.skin.vt[k.render.uv_index], k.render.faces, k.arm_verts_m,
                          k.arm_faces) for k in self._kits]
        try:
            self._scene = self._on_gl(StereoSceneRenderer, self.calibration, looks, self.skin, self.skin.tone,
                                      lighting, backgrounds, self.config.antialias)
        except Exception as exc:  # EGL/GL missing or broken: say what to install instead of a GL traceback
            self._gl.shutdown(wait=False)
            raise CaptureError(f"synthetic source: offscreen OpenGL is unavailable ({type(exc).__name__}: {exc}); "
                               "install Mesa's EGL and GL drivers (libegl1, libgl1-mesa-dri)") from exc

    def _on_gl(self, fn, *args):
        """Run fn(*args) on the source's GL thread and return its result (exceptions propagate)."""
        return self._gl.submit(fn, *args).result()

    @property
    def dropped_frames(self) -> int:
        return self._pacer.dropped

    @property
    def antialias_samples(self) -> int:
        """Multisamples per pixel of the colour render: 0 (aa=0, the default) or 4 (aa=1)."""
        return self._scene.samples

    @property
    def backgrounds(self) -> np.ndarray:
        """(2, H, W, 3) uint8: the static background of the left and the right view."""
        return self._scene.backgrounds

    def read(self) -> StereoFrame | None:
        """The next frame, None after ``frames`` frames (never for an endless source)."""
        if self._closed:
            raise CaptureError("synthetic source: read() after close(); open a new source")
        if self._ended:
            return None
        index, t_ns = self._pacer.next()
        if self.frames_total is not None and index >= self.frames_total:
            self._ended = True
            return None
        hands = self._hand_frames(index)
        left, right = self._on_gl(self._render, hands)
        return StereoFrame(index, t_ns, left, right, self.calibration)

    def _render(self, hands: list[HandFrame]) -> tuple[np.ndarray, np.ndarray]:
        self._set_scene(hands)
        return self._scene.render_views()

    def _set_scene(self, hands: list[HandFrame]) -> None:
        normals = [vertex_normals(h.verts_m, k.faces, k.vertex_faces) for h, k in zip(hands, self._kits, strict=True)]
        self._scene.set_hands([h.verts_m for h in hands], normals, [h.arm_pose for h in hands])

    def _hand_frames(self, frame_id: int) -> list[HandFrame]:
        """Every hand posed for frame ``frame_id`` (the motion at frame_id / fps s), cached for a few frames."""
        with self._cache_lock:
            hands = self._frames_cache.get(frame_id)
        if hands is None:
            sample = sample_motion(self.motion, np.array([frame_id / self.nominal_fps]))
            samples = [sample, mirror_sample(sample, self._centre_x_m)][: len(self._kits)]
            hands = [k.pose_frame(s) for k, s in zip(self._kits, samples, strict=True)]
            with self._cache_lock:
                self._frames_cache[frame_id] = hands
                while len(self._frames_cache) > 8:
                    self._frames_cache.popitem(last=False)
        return hands

    def keypoints_m(self, frame_ids) -> np.ndarray:
        """(N, n_hands, 21, 3) float32 metres, left-camera frame, MediaPipe order: every hand's keypoints in
        frames ``frame_ids`` (N,) ints >= 0, from one batched model evaluation per hand (no rendering); the same
        values as ``ground_truth(i, hand).keypoints_m``, for scoring whole sequences cheaply."""
        ids = np.asarray(frame_ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu" or (ids.size and ids.min() < 0):
            raise CaptureError(f"synthetic source: frame_ids must be a 1-D array of ints >= 0, got {ids!r:.80}")
        sample = sample_motion(self.motion, ids / self.nominal_fps)
        samples = [sample, mirror_sample(sample, self._centre_x_m)][: len(self._kits)]
        kps = [k.pose_model(s)[2].keypoints_m.numpy() for k, s in zip(self._kits, samples, strict=True)]
        return np.stack(kps, axis=1)

    def ground_truth(self, frame_id: int, hand: int = 0, masks: bool = True) -> SyntheticTruth:
        """Ground truth of hand ``hand`` (0: the right hand, 1: the left when hands=2) in frame ``frame_id``;
        ``masks=False`` skips the segmentation render (the rest costs a model evaluation)."""
        return self.hands_truth(frame_id, masks)[self._check_hand(hand)]

    def hands_truth(self, frame_id: int, masks: bool = True) -> tuple[SyntheticTruth, ...]:
        """Ground truth of every hand in frame ``frame_id`` (one segmentation pass for all of them)."""
        self._check_frame_id(frame_id)
        hands = self._hand_frames(frame_id)
        all_masks = self._masks(frame_id, hands) if masks else [None] * len(hands)
        return tuple(self._truth(frame_id, k, h, m) for k, h, m in zip(self._kits, hands, all_masks, strict=True))

    def _truth(self, frame_id: int, kit: HandKit, h: HandFrame, masks: np.ndarray | None) -> SyntheticTruth:
        px = project_views(h.keypoints_m.astype(np.float64), self.calibration).astype(np.float32)
        return SyntheticTruth(frame_id, kit.is_left, h.gesture, h.pose, kit.shape, h.transl_m, h.verts_m,
                              h.keypoints_m, px, masks)

    def _masks(self, frame_id: int, hands: list[HandFrame]) -> np.ndarray:
        cached = self._masks_cache
        if cached is None or cached[0] != frame_id:
            cached = self._masks_cache = (frame_id, self._on_gl(self._render_masks, hands))
        return cached[1]

    def _render_masks(self, hands: list[HandFrame]) -> np.ndarray:
        self._set_scene(hands)
        return self._scene.render_masks()

    def _check_frame_id(self, frame_id) -> None:
        if self._closed:
            raise CaptureError("synthetic source: ground_truth() after close(); open a new source")
        if isinstance(frame_id, bool) or not isinstance(frame_id, int | np.integer) or frame_id < 0:
            raise CaptureError(f"synthetic source: frame_id {frame_id!r} must be an int >= 0 (a StereoFrame.frame_id)")
        if self.frames_total is not None and frame_id >= self.frames_total:
            raise CaptureError(f"synthetic source: frame_id {frame_id} is past the source's {self.frames_total} frames")

    def _check_hand(self, hand: int) -> int:
        if hand not in range(len(self._kits)):
            raise CaptureError(f"synthetic source: hand={hand!r}; this source has {len(self._kits)} hand(s): "
                               f"0 (right){' or 1 (left)' if len(self._kits) == 2 else ''}")
        return hand

    def close(self) -> None:
        """Free the GL context and stop the GL thread; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._on_gl(self._scene.close)
        finally:
            self._gl.shutdown(wait=True)


def open_synthetic(uri: SourceURI) -> SyntheticSource:
    """The registry factory for ``synthetic?...``."""
    return SyntheticSource(config_from_uri(uri))
