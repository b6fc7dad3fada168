"""HandNet inference on detection output: ``build_handnet_runner(checkpoint, device).predict(obs, calibration)``.

Input: a ``HandObservation`` (app/types.py) whose ``crops`` / ``heatmaps`` hold one entry per detected view in
(left, right) order, each (S, S, 3) / (21, S, S) float32 in [-1, 1], S = the network's crop size; left hands are
already mirrored to right ones by the detection stage. Output: a ``HandNetPrediction`` with each view's raw
network output and, when the rig's calibration is known, the hand as a ``HandState`` in the left camera frame
(stereo-fused when both views saw the hand; thesis 4.3).

Frames. The network was trained on crops whose camera looks straight through the crop centre (augmentation's
crop camera); a detection crop is an axis-aligned cut of the rectified image whose principal point lies
elsewhere. Its predictions are therefore read in the crop's virtual centred camera V, with X_V = R_pp M X_cam
(M = diag(-1, 1, 1) for a mirrored left-hand crop, else I; R_pp turns the ray through the crop centre onto the
optical axis), and mapped back to the camera, unmirrored, and moved into the left camera frame.

Placement (``placement``). The network's pose and shape fix the hand's articulation and metric size; where it
stands and which way it faces come either from the detection's keypoints ('keypoints', default) or from the
network's weak-perspective camera and global rotation alone ('camera', the paper's reading, METHOD.md step 4).
'keypoints': 1. with the stereo triangulated keypoints of a two-view observation, the global rotation is turned
(about the wrist) so the predicted palm keypoints align with the triangulated ones (Kabsch); a single view uses
its MediaPipe world landmarks (metric, camera axes) the same way when it has them; 2. the translation
places the predicted hand's 21 keypoints on the MediaPipe pixels of every seeing view by linear least squares
(both views give the metric depth, like triangulation of the whole hand; one view gives it from the predicted
hand size). The camera's
scale is learnt only through the 2D keypoint loss, and a net whose 3D pose is still poor learns a scale that
shrinks towards 0 (the least-squares answer for uncorrelated points): a CPU-trained checkpoint placed hands
~12 m away that way, while its pose and shape were usable.

Devices: CPU float32, or CUDA in half precision with channels-last tensors (the stereo head and all geometry in
float32). A corrupt or mismatching checkpoint raises ``CheckpointError`` naming the problem.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from app.detection.crop import crop_intrinsics
from app.detection.keypoints3d import undistort_px, world_landmarks_in_left_axes
from app.detection.mirror import is_mirrored
from app.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle, mirror_axis_angle
from app.geometry.weak_perspective import weak_perspective_to_translation
from app.reconstruction.initialise import align_to_points, translation_from_pixels
from app.types import HandDetection, HandObservation, HandState, StereoCalibration
from models.handnet.checkpoint import Checkpoint, load_handnet
from models.handnet.crop_camera import rotation_onto_axis
from models.handnet.net import HandNet, HandNetOutput, StereoGeometry

MIRROR = np.diag([-1.0, 1.0, 1.0])
PLACEMENTS = ("keypoints", "camera")


@dataclass(frozen=True)
class ViewPrediction:
    """One view's network output, in that crop's virtual centred camera (mirrored for a left hand).

    view: 'left' | 'right'. pose: (48,) float32 axis-angle radians; shape: (10,) float32; cam: (3,) float32
    (tx, ty crop-normalised, s per metre); mask: (S, S) float32 hand probability over the crop, or None;
    state: this view alone as a HandState (left camera frame), or None without calibration.
    """

    view: str
    pose: np.ndarray
    shape: np.ndarray
    cam: np.ndarray
    mask: np.ndarray | None
    state: HandState | None


@dataclass(frozen=True)
class HandNetPrediction:
    """views: per detected view; stereo_weights: (48,) float32 fusion weights w (right-view share) or None for a
    mono observation; state: the fused (stereo) or single-view hand in the left camera frame, None without
    calibration."""

    views: tuple[ViewPrediction, ...]
    stereo_weights: np.ndarray | None
    state: HandState | None


@dataclass(frozen=True)
class CropView:
    """A detection crop as a camera: K_V (3, 3) float64 centred intrinsics (crop pixels); R_V_cam (3, 3) float64,
    camera frame -> V (= R_pp M, a reflection for mirrored crops); mirrored; T_left_cam (4, 4) float64 metres,
    this view's camera frame -> the left camera frame."""

    K_V: np.ndarray
    R_pp: np.ndarray
    mirrored: bool
    T_left_cam: np.ndarray

    @property
    def R_V_cam(self) -> np.ndarray:
        return self.R_pp @ (MIRROR if self.mirrored else np.eye(3))


def crop_view(det: HandDetection, K: np.ndarray, T_cam_left: np.ndarray, crop_size: int) -> CropView:
    """The virtual centred camera of a detection's crop (module doc). K: (3, 3) full-image intrinsics, pixels;
    T_cam_left: (4, 4) the view's extrinsics (left camera -> this camera)."""
    mirrored = is_mirrored(det.crop_from_image)
    K_pos = crop_intrinsics(K, det.crop_from_image) @ (MIRROR if mirrored else np.eye(3))
    c = (crop_size - 1) / 2
    R_pp = rotation_onto_axis(np.linalg.solve(K_pos, [c, c, 1.0]))
    f = (abs(K_pos[0, 0]) + K_pos[1, 1]) / 2
    K_V = np.array([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]])
    return CropView(K_V, R_pp, mirrored, np.linalg.inv(T_cam_left))


def palm_rotation(kp_m: np.ndarray, root_m: np.ndarray, points_m: np.ndarray) -> np.ndarray | None:
    """(3, 3) Kabsch rotation about the root taking the predicted keypoints ``kp_m`` (21, 3) onto ``points_m``
    (21, 3, NaN rows missing; only their shape and orientation count) on the palm, or None when fewer than three
    keypoints are valid."""
    try:
        R, _ = align_to_points(kp_m, root_m, np.asarray(points_m, np.float64))
    except ValueError:
        return None
    return R


def crop_box(crop_size: int) -> np.ndarray:
    """(3,) the crop as its own 'full image' for the weak-perspective helpers: (x0, y0, side) = (-0.5, -0.5, S)."""
    return np.array([-0.5, -0.5, float(crop_size)])


def root_in_view(cam: np.ndarray, view: CropView, crop_size: int) -> np.ndarray:
    """(3,) metres: the root (wrist) position in V implied by a weak-perspective camera (tx, ty, s)."""
    return weak_perspective_to_translation(cam.astype(np.float64), crop_box(crop_size), view.K_V, crop_size)


def to_left_camera(pose_V: np.ndarray, root_V: np.ndarray, view: CropView) -> tuple[np.ndarray, np.ndarray]:
    """A right-hand pose / root in V -> the real hand's pose (48,) and root (3,) in the left camera frame
    (unmirrored: a left hand's pose comes back in the left hand model's convention)."""
    G_m = view.R_pp.T @ axis_angle_to_matrix(pose_V[:3].astype(np.float64))
    pose = np.concatenate([matrix_to_axis_angle(G_m), pose_V[3:]])
    root = view.R_pp.T @ root_V
    if view.mirrored:
        pose, root = mirror_axis_angle(pose), MIRROR @ root
    R, t = view.T_left_cam[:3, :3], view.T_left_cam[:3, 3]
    glob = matrix_to_axis_angle(R @ axis_angle_to_matrix(pose[:3]))
    return np.concatenate([glob, pose[3:]]), R @ root + t


def _V_from_left(view: CropView) -> np.ndarray:
    """(4, 4) left-camera points -> this view's V frame: R_V_cam T_cam_left."""
    A = np.eye(4)
    A[:3, :3] = view.R_V_cam
    return A @ np.linalg.inv(view.T_left_cam)


def right_from_left(left: CropView, right: CropView) -> np.ndarray:
    """(4, 4) float64 rigid map from the left view's V frame into the right view's V frame (metres); the two
    mirror reflections of a left hand cancel, so this is a proper rotation plus translation."""
    return _V_from_left(right) @ np.linalg.inv(_V_from_left(left))


class HandNetRunner:
    """Runs a loaded HandNet on HandObservations (see module doc)."""

    def __init__(self, net: HandNet, ckpt: Checkpoint, device: torch.device, hand_models: dict,
                 calibration: StereoCalibration | None = None, placement: str = "keypoints"):
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
        self.placement = placement
        self.net = net
        self.ckpt = ckpt
        self.device = device
        self.hand_models = hand_models
        self.calibration = calibration
        self.crop_size = net.cfg.crop_size
        self.half = device.type == "cuda"

    def _inputs(self, obs: HandObservation) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.crop_size
        if len(obs.crops) != len(obs.heatmaps) or not obs.crops:
            raise ValueError("HandObservation has no network inputs (crops/heatmaps); enable "
                             "detection.network_inputs")
        for crop, heat in zip(obs.crops, obs.heatmaps, strict=True):
            if crop.shape != (s, s, 3) or heat.shape[1:] != (s, s):
                raise ValueError(f"crop {crop.shape} / heatmap {heat.shape} do not fit this HandNet's {s} px "
                                 f"input; set detection.crop_size={s}")
        img = torch.from_numpy(np.stack(obs.crops).transpose(0, 3, 1, 2).copy())
        heat = torch.from_numpy(np.stack(obs.heatmaps).copy())
        dtype = torch.float16 if self.half else torch.float32
        fmt = torch.channels_last if self.half else torch.contiguous_format
        return (img.to(self.device, dtype).contiguous(memory_format=fmt),
                heat.to(self.device, dtype).contiguous(memory_format=fmt))

    @torch.no_grad()
    def _forward(self, obs: HandObservation, segment: bool) -> HandNetOutput:
        """Every present view in one batch; outputs as float32."""
        img, heat = self._inputs(obs)
        out = self.net(img, heat, "fused", segment=segment)
        seg = None if out.seg_logits is None else out.seg_logits.float()
        return HandNetOutput(out.pose.float(), out.shape.float(), out.cam.float(), out.features.float(), seg)

    def _views(self, obs: HandObservation, calib: StereoCalibration | None) -> list:
        """[(name, CropView or None, (P (3, 4), undistorted keypoints (21, 2) px) or None, world landmarks turned
        into the left camera's axes (21, 3) metres or None)] of the present views, left first."""
        cams = (None, None) if calib is None else (calib.left, calib.right)
        out = []
        for name, det, cam in zip(("left", "right"), (obs.left, obs.right), cams, strict=True):
            if det is None:
                continue
            if cam is None:
                out.append((name, None, None, None))
                continue
            out.append((name, crop_view(det, cam.K, cam.T_cam_left, self.crop_size),
                        (cam.P, undistort_px(cam, det.keypoints_px)),
                        world_landmarks_in_left_axes(cam, det.world_landmarks_m)))
        return out

    def _placed(self, state: HandState, pixels: list, points_m: np.ndarray | None = None) -> HandState:
        """``state`` placed by the detection (module doc, 'keypoints'): turned onto ``points_m`` (21, 3) metres in
        the left camera's axes (triangulated keypoints, or world landmarks: only their shape and orientation count),
        NaN rows missing, when given; then translated onto the views' keypoint pixels.
        Unchanged for placement 'camera'."""
        if self.placement == "camera":
            return state
        model = self.hand_models["left" if state.is_left else "right"]
        pose = state.pose.astype(np.float64)
        shape_t = torch.as_tensor(state.shape[None])
        with torch.no_grad():
            kp = model(torch.as_tensor(state.pose[None]), shape_t).keypoints_m[0].cpu().numpy().astype(np.float64)
            root = model.rest_joints(shape_t)[0, 0].cpu().numpy().astype(np.float64) if points_m is not None else None
        R = None if points_m is None else palm_rotation(kp, root, points_m)
        if R is not None:
            # global rotation turns the hand about its root joint, which it leaves in place: turning the
            # keypoints directly equals re-posing the model with the turned rotation
            pose = np.concatenate([matrix_to_axis_angle(R @ axis_angle_to_matrix(pose[:3])), pose[3:]])
            kp = (kp - root) @ R.T + root
        t = translation_from_pixels(kp, pixels)
        return dataclasses.replace(state, pose=pose.astype(np.float32), transl_m=t.astype(np.float32))

    def _state(self, pose_V, shape, cam, view: CropView, is_left: bool) -> HandState:
        pose, root = to_left_camera(pose_V, root_in_view(cam, view, self.crop_size), view)
        model = self.hand_models["left" if is_left else "right"]
        j0 = model.rest_joints(torch.as_tensor(shape[None], dtype=torch.float32))[0, 0].cpu().numpy()
        return HandState(pose.astype(np.float32), shape.astype(np.float32), (root - j0).astype(np.float32), is_left)

    def predict(self, obs: HandObservation, calibration: StereoCalibration | None = None,
                segment: bool = True) -> HandNetPrediction:
        """Network outputs per view, stereo fusion for a two-view observation, HandStates when calibrated."""
        calib = calibration or self.calibration
        out = self._forward(obs, segment)
        views = self._views(obs, calib)
        per_view = []
        for i, (name, view, pixels, world) in enumerate(views):
            arr = [t[i].cpu().numpy() for t in (out.pose, out.shape, out.cam)]
            mask = None if out.seg_logits is None else torch.sigmoid(out.seg_logits[i, 0]).cpu().numpy()
            state = None if view is None else self._placed(self._state(*arr, view, obs.is_left), [pixels],
                                                                 world)
            per_view.append(ViewPrediction(name, *arr, mask, state))
        if len(views) == 1:
            return HandNetPrediction(tuple(per_view), None, per_view[0].state)
        return self._fused(out, views, per_view, obs)

    def _fused(self, out: HandNetOutput, views: list, per_view: list, obs: HandObservation) -> HandNetPrediction:
        (_, left_v, left_px, _), (_, right_v, right_px, _) = views
        rot = geo = None
        if left_v is not None:
            T = torch.as_tensor(right_from_left(left_v, right_v), dtype=torch.float32, device=self.device)[None]
            rot = T[:, :3, :3]
            box = torch.as_tensor(crop_box(self.crop_size), dtype=torch.float32, device=self.device)[None]
            geo = StereoGeometry(box, box, *(torch.as_tensor(v.K_V, dtype=torch.float32, device=self.device)[None]
                                             for v in (left_v, right_v)), T)
        left, right = (HandNetOutput(out.pose[i:i + 1], out.shape[i:i + 1], out.cam[i:i + 1],
                                     out.features[i:i + 1]) for i in (0, 1))
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            fused = self.net.fuse_views(left, right, rot, geo)
        pose, shape, cam = (t[0].cpu().numpy() for t in (fused.pose, fused.shape, fused.cam))
        state = None
        if right_v is not None:
            state = self._placed(self._state(pose, shape, cam, right_v, obs.is_left), [left_px, right_px],
                                 obs.keypoints_cam_m)
        return HandNetPrediction(tuple(per_view), fused.weights[0].cpu().numpy(), state)


def _device(spec: str | torch.device) -> torch.device:
    if isinstance(spec, torch.device):
        return spec
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available; use device='auto' or 'cpu'")
    return torch.device(spec)


def _hand_models(ckpt: Checkpoint) -> dict:
    """Right and left hand models of the family the checkpoint was trained with (open model or MANO)."""
    from app.config import HandModelConfig
    from models.hand_model import build_hand_model

    mano_dir = ckpt.hand_model.get("mano_dir", "") if ckpt.hand_model.get("name") == "mano" else ""
    cfg = HandModelConfig(mano_dir=mano_dir)
    return {side: build_hand_model(cfg, side).cpu().eval() for side in ("right", "left")}


def build_handnet_runner(checkpoint_path: str, device: str | torch.device = "auto",
                         calibration: StereoCalibration | None = None, placement: str = "keypoints"
                         ) -> HandNetRunner:
    """Load a checkpoint (CheckpointError when missing, corrupt or mismatching) into a ready runner;
    placement: 'keypoints' | 'camera' (module doc)."""
    dev = _device(device)
    net, ckpt = load_handnet(checkpoint_path, "cpu")
    if dev.type == "cuda":
        net = net.half().to(dev, memory_format=torch.channels_last)
        net.stereo.float()  # fusion weights and geometry stay float32
    else:
        net = net.to(dev)
    return HandNetRunner(net.eval(), ckpt, dev, _hand_models(ckpt), calibration, placement)
