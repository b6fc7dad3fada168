"""Stand-in synthetic stereo hand set: renders the open hand model through a rectified ZED-like rig.

Temporary adapter until models/synth/dataset.py (the real synthetic stereo generator and reader) lands; it is
the only module that knows how these samples are made, and training only sees ``StereoSource`` (``len()``,
``pair(i) -> RawStereoPair``), so switching means replacing ``open_stereo_source``.

Each pair: a random plausible pose (``sample_angles``), uniform betas, a random view (back of the hand more
often, egocentric views; models/synth/views.py) at 0.25 .. 0.6 m near the rig's centre line, procedural skin,
forearm, lights and one cluttered background at infinity shared by both views (zero disparity). Each view is
rendered only inside a window around the hand, ``window_scale`` x its tight keypoint box resized to
``window_size`` px: exactly the window of the full rectified frame, with intrinsics K_window = A K (A the
window's affine), so augmentation can cut crops of scale up to 2.5 from it.

On disk (``directory``): meta.json (format, count, seed, rig) and pairs/%06d.npz with JPEG images, PNG masks and
the labels in the left camera frame; the right view's labels follow from T_right_left.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from app.detection.crop import crop_affine, crop_intrinsics, keypoint_box
from app.geometry.camera import project
from models.data.types import RawStereoPair, RawView

FORMAT = "realhands-synthetic-adapter"
FORMAT_VERSION = 1


class SyntheticSetError(ValueError):
    """The synthetic set folder is missing, incomplete or from another format; the message says what to do."""


@dataclass(frozen=True)
class SynthAdapterConfig:
    """count: stereo pairs; seed: pair i uses seed + i; rig/mode: calibration preset (calibration/presets.py);
    distance_m: depth range of the hand centre; window_size: rendered px per view; window_scale: window side over
    the tight keypoint box side (>= the largest crop scale, 2.5); shape_range: betas ~ U(-r, r)."""

    count: int = 64
    seed: int = 0
    rig: str = "zed"
    mode: str = "HD720"
    distance_m: tuple[float, float] = (0.25, 0.6)
    window_size: int = 256
    window_scale: float = 2.6
    shape_range: float = 1.5
    jpeg_quality: int = 95


@dataclass(frozen=True)
class PosedScene:
    """pose (48,), shape (10,) float32; verts_m (V, 3), keypoints_m (21, 3) float32, left-camera frame;
    forearm_m (N, 3) float64 left-camera frame."""

    pose: np.ndarray
    shape: np.ndarray
    verts_m: np.ndarray
    keypoints_m: np.ndarray
    forearm_m: np.ndarray


def pose_random_hand(model, data: dict, rng: np.random.Generator, cfg: SynthAdapterConfig,
                     baseline_m: float) -> PosedScene:
    """A random pose, shape and view; the hand centre at the sampled depth near the rig's centre line."""
    import torch
    from scipy.spatial.transform import Rotation

    from models.hand_model.pose_space import angles_to_axis_angle, sample_angles
    from models.synth.forearm import pose_forearm
    from models.synth.scene import FOREARM_VERTS_M
    from models.synth.views import sample_view

    hand_pose = angles_to_axis_angle(sample_angles(rng, 1), data["joint_frames"])[0]
    view = sample_view(rng, None, distance_m=cfg.distance_m)
    pose = np.concatenate([Rotation.from_matrix(view.R_cam_model).as_rotvec(), hand_pose]).astype(np.float32)
    shape = rng.uniform(-cfg.shape_range, cfg.shape_range, 10).astype(np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(pose[None]), torch.from_numpy(shape[None]))
    verts, kps = out.verts_m[0].numpy(), out.keypoints_m[0].numpy()
    target = np.array([baseline_m / 2, 0.0, view.distance_m]) + np.r_[rng.normal(0, 0.03, 2), 0.0]
    offset = target - verts.mean(0)
    root = np.asarray(data["J_regressor"])[0] @ np.asarray(data["v_template"])
    arm = pose_forearm(FOREARM_VERTS_M, view.R_cam_model, root, offset)
    return PosedScene(pose, shape, (verts + offset).astype(np.float32), (kps + offset).astype(np.float32), arm)


def _window(K: np.ndarray, keypoints_cam_m: np.ndarray, cfg: SynthAdapterConfig) -> np.ndarray:
    """(2, 3) affine of the render window around the hand's projected keypoints."""
    box = keypoint_box(project(keypoints_cam_m.astype(np.float64), K), cfg.window_scale)
    return crop_affine(box, cfg.window_size)


def _background_window(background: np.ndarray, A: np.ndarray, size: int, full_wh: tuple) -> np.ndarray:
    """Cut a window from a background given at reduced resolution (bg pixel p ~ full pixel p * full / bg)."""
    sx = full_wh[0] / background.shape[1]
    sy = full_wh[1] / background.shape[0]
    # full = s * bg + (s - 1) / 2 under the pixel-centre convention, then the window affine A.
    scale = np.array([[sx, 0.0, (sx - 1) / 2], [0.0, sy, (sy - 1) / 2], [0.0, 0.0, 1.0]])
    # Reflect at the frame's edges: a window reaching past the sensor still gets clutter, not a black band.
    return cv2.warpAffine(background, A @ scale, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _transform(points_m: np.ndarray, T: np.ndarray) -> np.ndarray:
    return (points_m @ T[:3, :3].T + T[:3, 3]).astype(np.float32)


class SyntheticRenderer:
    """Renders ``RawStereoPair`` s of the open hand model (needs an OpenGL offscreen platform, e.g. EGL)."""

    def __init__(self, cfg: SynthAdapterConfig):
        from app.config import HandModelConfig
        from app.offscreen.renderer import OffscreenRenderer
        from calibration.presets import preset_rig
        from models.hand_model import build_hand_model, load_mano_dict
        from models.hand_model.mano_io import open_model_path
        from models.synth.scene import face_parts

        self.cfg = cfg
        self.model = build_hand_model(HandModelConfig(mano_dir="")).cpu()
        self.data = load_mano_dict(open_model_path("right"))
        self.rig = preset_rig(cfg.rig, cfg.mode)
        self.renderer = OffscreenRenderer(cfg.window_size, cfg.window_size)
        self.parts = face_parts(np.asarray(self.data["vertex_part"]), self.model.faces.numpy())
        rest = np.asarray(self.data["v_template"])
        self.rest = (rest, np.asarray(self.data["J_regressor"]) @ rest)

    def close(self) -> None:
        self.renderer.close()

    def _scene(self, posed: PosedScene, rng: np.random.Generator):
        from models.synth.appearance import skin_vertex_colours
        from models.synth.scene import HandScene, sample_lighting

        colours = skin_vertex_colours(*self.rest, self.model.tip_vertex_ids.numpy(), rng)
        faces = self.model.faces.numpy()
        return HandScene(posed.verts_m, faces, self.parts, colours, posed.forearm_m.astype(np.float32),
                         colours[faces[0, 0]], sample_lighting(rng))

    def _view(self, scene, posed: PosedScene, T: np.ndarray, K: np.ndarray, background: np.ndarray) -> RawView:
        from models.synth.scene import FOREARM_LABEL, render_scene

        kps = _transform(posed.keypoints_m, T)
        A = _window(K, kps, self.cfg)
        size = self.cfg.window_size
        bg = _background_window(background, A, size, self.rig.left.size_wh)
        rendered = render_scene(self.renderer, scene, crop_intrinsics(K, A), bg, T_cam_left=T)
        mask = ((rendered.parts >= 0) & (rendered.parts < FOREARM_LABEL)).astype(np.uint8)
        glob = _rotate_axis_angle(T[:3, :3], posed.pose[:3])
        return RawView(rendered.rgb, mask, crop_intrinsics(K, A), kps, _transform(posed.verts_m, T),
                       np.concatenate([glob, posed.pose[3:]]).astype(np.float32), posed.shape)

    def render(self, index: int) -> RawStereoPair:
        """Pair ``index`` (deterministic: its generator is seeded with cfg.seed + index)."""
        from models.synth.appearance import random_background

        rng = np.random.default_rng(self.cfg.seed + index)
        T_right_left = self.rig.right.T_cam_left
        posed = pose_random_hand(self.model, self.data, rng, self.cfg, self.rig.baseline_m)
        scene = self._scene(posed, rng)
        w, h = self.rig.left.size_wh
        background = random_background(rng, w // 4, h // 4)
        left = self._view(scene, posed, np.eye(4), self.rig.left.K, background)
        right = self._view(scene, posed, T_right_left, self.rig.right.K, background)
        return RawStereoPair(left, right, T_right_left.astype(np.float64))


def _rotate_axis_angle(R: np.ndarray, aa: np.ndarray) -> np.ndarray:
    """Axis-angle of R @ rot(aa): a global orientation seen from a rotated camera."""
    from scipy.spatial.transform import Rotation

    return (Rotation.from_matrix(R) * Rotation.from_rotvec(aa)).as_rotvec().astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# On-disk cache
# ---------------------------------------------------------------------------------------------------------

def _encode(image: np.ndarray, ext: str, quality: int) -> np.ndarray:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise SyntheticSetError(f"cannot encode a {ext} image")
    return buf.reshape(-1)


def _pair_arrays(pair: RawStereoPair, quality: int) -> dict:
    left = pair.left
    return {
        "left_jpg": _encode(left.image[..., ::-1], ".jpg", quality),
        "right_jpg": _encode(pair.right.image[..., ::-1], ".jpg", quality),
        "left_mask_png": _encode(left.mask, ".png", 0), "right_mask_png": _encode(pair.right.mask, ".png", 0),
        "K_left": left.K, "K_right": pair.right.K, "T_right_left": pair.T_right_left,
        "keypoints_m": left.keypoints_m, "verts_m": left.verts_m, "pose": left.pose, "shape": left.shape,
    }


def write_pair(path: Path, pair: RawStereoPair, quality: int = 95) -> None:
    """One pair as a compressed .npz (written to a temporary name, then renamed: never half a file)."""
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **_pair_arrays(pair, quality))
    tmp.replace(path)


def _decode(buf: np.ndarray, flags: int, path: Path) -> np.ndarray:
    img = cv2.imdecode(buf, flags)
    if img is None:
        raise SyntheticSetError(f"{path}: an embedded image does not decode; regenerate the set")
    return img


def read_pair(path: Path) -> RawStereoPair:
    """Inverse of :func:`write_pair`; the right view's labels are the left ones moved by T_right_left."""
    try:
        z = np.load(path)
        left_rgb = _decode(z["left_jpg"], cv2.IMREAD_COLOR, path)[..., ::-1]
        right_rgb = _decode(z["right_jpg"], cv2.IMREAD_COLOR, path)[..., ::-1]
        masks = [_decode(z[k], cv2.IMREAD_GRAYSCALE, path) for k in ("left_mask_png", "right_mask_png")]
        T = z["T_right_left"].astype(np.float64)
        kps, verts, pose, shape = z["keypoints_m"], z["verts_m"], z["pose"], z["shape"]
        K_left, K_right = z["K_left"], z["K_right"]
    except (OSError, KeyError, ValueError) as exc:
        raise SyntheticSetError(f"{path}: unreadable synthetic pair ({exc}); regenerate the set") from None
    left = RawView(np.ascontiguousarray(left_rgb), masks[0], K_left, kps, verts, pose, shape)
    glob = _rotate_axis_angle(T[:3, :3], pose[:3])
    right = RawView(np.ascontiguousarray(right_rgb), masks[1], K_right, _transform(kps, T), _transform(verts, T),
                    np.concatenate([glob, pose[3:]]).astype(np.float32), shape)
    return RawStereoPair(left, right, T)


class SyntheticStereoReader:
    """StereoSource over a generated folder: ``len()``, ``pair(i) -> RawStereoPair``."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        meta_path = self.directory / "meta.json"
        if not meta_path.is_file():
            raise SyntheticSetError(f"{meta_path} not found: {self.directory} is not a synthetic stereo set; "
                                    "generate one with `python -m models.train --config smoke --out DIR`")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("format") != FORMAT or self.meta.get("format_version") != FORMAT_VERSION:
            raise SyntheticSetError(f"{meta_path}: format {self.meta.get('format')!r} v"
                                    f"{self.meta.get('format_version')}, expected {FORMAT!r} v{FORMAT_VERSION}; "
                                    "regenerate the set")
        self.count = int(self.meta["count"])

    def __len__(self) -> int:
        return self.count

    def pair(self, index: int) -> RawStereoPair:
        if not 0 <= index < self.count:
            raise IndexError(f"synthetic set {self.directory}: index {index} out of range [0, {self.count})")
        path = self.directory / "pairs" / f"{index:06d}.npz"
        if not path.is_file():
            raise SyntheticSetError(f"{path} is missing: the set is incomplete; regenerate it")
        return read_pair(path)


def _meta(cfg: SynthAdapterConfig) -> dict:
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "count": cfg.count, "config": asdict(cfg)}


def is_complete(directory: Path, cfg: SynthAdapterConfig) -> bool:
    """True when ``directory`` holds exactly this configuration's set, every pair written."""
    meta_path = directory / "meta.json"
    if not meta_path.is_file():
        return False
    meta = json.loads(meta_path.read_text())
    same = meta == json.loads(json.dumps(_meta(cfg)))
    return same and all((directory / "pairs" / f"{i:06d}.npz").is_file() for i in range(cfg.count))


def generate_synthetic_set(directory: str | Path, cfg: SynthAdapterConfig, progress: bool = True) -> Path:
    """Render cfg.count pairs into ``directory`` (existing pairs of the same config are kept: resumable)."""
    from tqdm import tqdm

    directory = Path(directory)
    (directory / "pairs").mkdir(parents=True, exist_ok=True)
    meta_path = directory / "meta.json"
    if meta_path.is_file() and json.loads(meta_path.read_text())["config"] != json.loads(json.dumps(asdict(cfg))):
        raise SyntheticSetError(f"{directory} holds a synthetic set of another configuration; use an empty folder")
    meta_path.write_text(json.dumps(_meta(cfg), indent=1))
    renderer = SyntheticRenderer(cfg)
    try:
        for i in tqdm(range(cfg.count), desc="render synthetic pairs", disable=not progress):
            path = directory / "pairs" / f"{i:06d}.npz"
            if not path.is_file():
                write_pair(path, renderer.render(i), cfg.jpeg_quality)
    finally:
        renderer.close()
    return directory


def open_stereo_source(directory: str | Path, cfg: SynthAdapterConfig | None = None,
                       progress: bool = True) -> SyntheticStereoReader:
    """The synthetic stereo set in ``directory``; rendered first when ``cfg`` is given and it is incomplete."""
    directory = Path(directory)
    if cfg is not None and not is_complete(directory, cfg):
        generate_synthetic_set(directory, cfg, progress)
    return SyntheticStereoReader(directory)
