"""The differentiable hand model: MANO-layout parameters -> posed mesh, 16 joints and 21 keypoints.

Wraps ``smplx.MANO`` (linear blend skinning with shape and pose blend shapes) built from an in-memory dict,
so the same code runs the embedded open model and real MANO. Pose is axis-angle, 3 global + 15 x 3 joints in
MANO joint order (wrist, index1-3, middle1-3, pinky1-3, ring1-3, thumb1-3), relative to the flat hand.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import smplx
import torch
from smplx.lbs import blend_shapes, vertices2joints
from smplx.utils import Struct

from app.config import HandModelConfig
from models.hand_model.mano_io import (
    MANO_TIP_VERTEX_IDS,
    N_JOINTS,
    ManoFileError,
    find_mano_file,
    load_mano_dict,
    open_model_path,
    validate_mano_dict,
)

log = logging.getLogger(__name__)

N_POSE = 48
N_SHAPE = 10
# [16 MANO joints + 5 tips (thumb, index, middle, ring, pinky)] -> MediaPipe's 21 keypoints
MANO_TO_MEDIAPIPE = np.array([0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20])
GENERATE_COMMAND = "python -m models.hand_model generate"


@dataclass(frozen=True)
class HandModelOutput:
    """Posed hand. verts_m: (B, V, 3); joints_m: (B, 16, 3) MANO joint order; keypoints_m: (B, 21, 3)
    MediaPipe order. All float32 torch tensors in metres, in the frame ``transl`` places the model in."""

    verts_m: torch.Tensor
    joints_m: torch.Tensor
    keypoints_m: torch.Tensor


class HandModel(torch.nn.Module):
    """A MANO-layout hand model on torch.

    Attributes: faces (F, 3) int64; tip_vertex_ids (5,) int64 (thumb, index, middle, ring, pinky);
    parents (16,) int64 with -1 for the root; num_verts; is_left; name ('open' or 'mano');
    uv: (vt (T, 2) float32 in [0, 1], ft (F, 3) int64) or None.
    """

    def __init__(self, data: dict, *, is_left: bool = False, name: str = "open"):
        super().__init__()
        label = data.get("model_name", "") if isinstance(data, dict) else ""
        d = validate_mano_dict(data, source=f"<in-memory dict {label!s}>")
        self.is_left = bool(is_left)
        self.name = name
        self.num_verts = int(d["v_template"].shape[0])
        # smplx prints a warning about having only 10 shape components, which is what MANO has
        with contextlib.redirect_stdout(io.StringIO()):
            self.mano = smplx.MANO(
                "", is_rhand=not self.is_left, data_struct=Struct(**d), use_pca=False, flat_hand_mean=True,
                num_betas=N_SHAPE, batch_size=1, create_global_orient=False, create_hand_pose=False,
                create_betas=False, create_transl=False, create_body_pose=False,
            )
        tips = d.get("tip_vertex_ids")
        tips = np.asarray(MANO_TIP_VERTEX_IDS if tips is None else tips, dtype=np.int64)
        if tips.max() >= self.num_verts:
            raise ManoFileError(f"hand model has {self.num_verts} vertices and no 'tip_vertex_ids'; "
                                "MANO's standard fingertip vertices do not exist in it")
        self.register_buffer("faces", torch.tensor(d["f"], dtype=torch.int64))
        self.register_buffer("tip_vertex_ids", torch.tensor(tips))
        self.register_buffer("parents", self.mano.parents.clone())
        self.register_buffer("hands_components", torch.tensor(d["hands_components"], dtype=torch.float32))
        self.register_buffer("hands_mean", torch.tensor(d["hands_mean"], dtype=torch.float32))
        self.register_buffer("_to_mediapipe", torch.tensor(MANO_TO_MEDIAPIPE, dtype=torch.int64))
        self.mano.vertex_joint_selector.extra_joints_idxs = self.tip_vertex_ids.clone()
        has_uv = d.get("vt") is not None and d.get("ft") is not None
        self.register_buffer("vt", torch.tensor(d["vt"], dtype=torch.float32) if has_uv else None)
        self.register_buffer("ft", torch.tensor(d["ft"], dtype=torch.int64) if has_uv else None)

    @property
    def uv(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(vt (T, 2) float32, ft (F, 3) int64) UV coordinates and UV faces, or None without a UV unwrap."""
        return None if self.vt is None else (self.vt, self.ft)

    def _batch(self, pose, shape, transl):
        """Inputs as float32 on the model's device; a (1, 10) shape is shared by the whole batch."""
        if pose.ndim != 2 or pose.shape[1] != N_POSE:
            raise ValueError(f"pose: expected (B, {N_POSE}) axis-angle, got {tuple(pose.shape)}")
        b = pose.shape[0]
        if shape.ndim != 2 or shape.shape[1] != N_SHAPE or shape.shape[0] not in (1, b):
            raise ValueError(f"shape: expected ({b}, {N_SHAPE}) or (1, {N_SHAPE}), got {tuple(shape.shape)}")
        if transl is not None and tuple(transl.shape) != (b, 3):
            raise ValueError(f"transl: expected ({b}, 3) metres, got {tuple(transl.shape)}")
        ref = self.mano.v_template
        transl = torch.zeros(b, 3, dtype=ref.dtype, device=ref.device) if transl is None else transl.to(ref)
        return pose.to(ref), shape.to(ref).expand(b, -1), transl

    def forward(self, pose: torch.Tensor, shape: torch.Tensor, transl: torch.Tensor | None = None
                ) -> HandModelOutput:
        """pose: (B, 48) axis-angle radians (3 global + 45 joints); shape: (B, 10) or (1, 10) betas;
        transl: (B, 3) metres added to every vertex and joint (None = 0) -> HandModelOutput."""
        pose, shape, transl = self._batch(pose, shape, transl)
        out = self.mano(betas=shape, global_orient=pose[:, :3], hand_pose=pose[:, 3:], transl=transl)
        verts = out.vertices
        joints = out.joints[:, :N_JOINTS]
        tips = verts.index_select(1, self.tip_vertex_ids)
        keypoints = torch.cat([joints, tips], dim=1).index_select(1, self._to_mediapipe)
        return HandModelOutput(verts_m=verts, joints_m=joints, keypoints_m=keypoints)

    def rest_joints(self, shape: torch.Tensor) -> torch.Tensor:
        """shape: (B, 10) -> (B, 16, 3) float32 joints of the shaped hand in the flat rest pose, metres."""
        shape = shape.to(self.mano.v_template)
        v_shaped = self.mano.v_template + blend_shapes(shape, self.mano.shapedirs)
        return vertices2joints(self.mano.J_regressor, v_shaped)

    def pose_components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(hands_components (45, 45) float32, rows = principal directions of the 45 finger pose values;
        hands_mean (45,) float32). The natural pose for PCA coefficients c is hands_mean + c @ components[:k],
        relative to the flat hand this model uses as zero pose."""
        return self.hands_components, self.hands_mean


# ---------------------------------------------------------------------------------------------------------
# Building from files
# ---------------------------------------------------------------------------------------------------------

_DICT_CACHE: dict[tuple, dict] = {}


def _load_cached(path: Path) -> dict:
    """load_mano_dict, cached per file (path, modification time, size); callers must not modify it."""
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        return load_mano_dict(path)  # let the loader word the error
    if key not in _DICT_CACHE:
        _DICT_CACHE[key] = load_mano_dict(path)
    return _DICT_CACHE[key]


def fix_mano_left_shapedirs(left: dict, right: dict) -> dict:
    """Real MANO_LEFT.pkl ships the right hand's shapedirs; mirror their x component so one set of betas
    gives the same hand shape on both sides (github.com/vchoutas/smplx/issues/48). Returns a new dict."""
    if left["shapedirs"].shape != right["shapedirs"].shape:
        return left
    if not np.allclose(left["shapedirs"], right["shapedirs"]):
        return left
    shapedirs = left["shapedirs"].copy()
    shapedirs[:, 0, :] *= -1
    return {**left, "shapedirs": shapedirs}


def _load_mano(mano_dir: str, side: str) -> dict:
    d = _load_cached(find_mano_file(mano_dir, side))
    if side == "left":
        try:
            d = fix_mano_left_shapedirs(d, _load_cached(find_mano_file(mano_dir, "right")))
        except ManoFileError as exc:
            log.warning("cannot check MANO_LEFT.pkl shapedirs against MANO_RIGHT.pkl: %s", exc)
    return d


def _load_open(side: str) -> dict:
    path = open_model_path(side)
    if not path.is_file():
        raise ManoFileError(f"the embedded open hand model {path} is missing; build it with "
                            f"`{GENERATE_COMMAND}`, or use real MANO via --mano-dir")
    try:
        return _load_cached(path)
    except ManoFileError as exc:
        raise ManoFileError(f"{exc} To rebuild the open model run `{GENERATE_COMMAND}`.") from None


def build_hand_model(cfg: HandModelConfig, side: str = "right") -> HandModel:
    """Real MANO from cfg.resolved_mano_dir() when set, else the embedded open model, on cfg.device."""
    mano_dir = cfg.resolved_mano_dir()
    if mano_dir:
        model = HandModel(_load_mano(mano_dir, side), is_left=side == "left", name="mano")
    else:
        model = HandModel(_load_open(side), is_left=side == "left", name="open")
    return model.to(cfg.device)


def describe_default_model(mano_dir: str | None) -> str:
    """One line saying which right-hand model would be used (never raises; problems become the line)."""
    folder = HandModelConfig(mano_dir=mano_dir or "").resolved_mano_dir()
    try:
        if folder:
            path = find_mano_file(folder, "right")
            kind = f"MANO (licensed) from {path}"
        else:
            path = open_model_path("right")
            if not path.is_file():
                return f"open hand model: {path} is missing; build it with `{GENERATE_COMMAND}`"
            kind = f"embedded open hand model {path.name}"
        d = _load_cached(path)
        return f"{kind}: {len(d['v_template'])} vertices, {len(d['f'])} faces"
    except Exception as exc:  # a status line must never take the caller down
        return f"no usable hand model: {exc}"
