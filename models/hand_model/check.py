"""Does MediaPipe, which nobody here wrote, see the open model as a hand?

Renders the model with a skin tone in random plausible poses and views (palm, back, egocentric; fixed seed),
runs MediaPipe Hands on each render and compares its 21 keypoints with the model's own projected keypoints.

Definitions (issue 2): a keypoint is visible when it projects inside the image and the rendered surface at its
pixel belongs to its own finger or the palm (part-label pass). ``mediapipe_detection_rate`` is over renders with
>= 70 % of keypoints visible, ``_all`` over all renders; ``mediapipe_median_kp_error`` is the median over
detected renders of the mean 2D keypoint distance divided by the diagonal of the keypoints' bounding box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from app.geometry.camera import project
from models.hand_model.pose_space import angles_to_axis_angle, sample_angles
from models.synth.appearance import random_background
from models.synth.forearm import pose_forearm
from models.synth.scene import FOREARM_VERTS_M, HandScene, face_parts, render_scene, sample_lighting, sensor_effects
from models.synth.skin import SkinPainter
from models.synth.views import VIEW_KINDS, sample_view

# Part label (index into TIP_NAMES, -1 palm) owning each MediaPipe keypoint.
KEYPOINT_PART = np.array([-1] + [k for k in range(5) for _ in range(4)])
# Keypoints on the palm or at its junction with a finger (wrist, CMC, MCPs): the palm surface counts for them.
ON_PALM = np.zeros(21, bool)
ON_PALM[[0, 1, 2, 5, 9, 13, 17]] = True


@dataclass(frozen=True)
class CheckSample:
    """One render: keypoints_px (21, 2) float, MediaPipe order; visible (21,) bool; kind: view kind."""

    rgb: np.ndarray
    keypoints_px: np.ndarray
    visible: np.ndarray
    kind: str


@dataclass(frozen=True)
class PosedHand:
    """verts_m (V, 3) and keypoints_m (21, 3) in the OpenCV camera frame; faces (F, 3); forearm_m (N, 3)
    the forearm's vertices moved with the root."""

    verts_m: np.ndarray
    keypoints_m: np.ndarray
    faces: np.ndarray
    forearm_m: np.ndarray


def pose_hand(model, data: dict, rng: np.random.Generator, kind: str | None) -> tuple[PosedHand, str]:
    """A random plausible pose, shape and view of the model, placed in front of the camera."""
    angles = sample_angles(rng, 1)
    hand_pose = angles_to_axis_angle(angles, data["joint_frames"])[0]
    view = sample_view(rng, kind, distance_m=(0.3, 0.55))
    glob = Rotation.from_matrix(view.R_cam_model).as_rotvec()
    root = np.asarray(data["J_regressor"])[0] @ np.asarray(data["v_template"])
    pose = torch.tensor(np.concatenate([glob, hand_pose])[None], dtype=torch.float32)
    shape = torch.tensor(rng.normal(0, 1, (1, 10)), dtype=torch.float32)
    out = model(pose, shape)
    verts = out.verts_m[0].detach().numpy()
    offset = np.array([0.0, 0.0, view.distance_m]) - verts.mean(0)
    offset[:2] += rng.normal(0, 0.01, 2)
    kps = out.keypoints_m[0].detach().numpy() + offset
    arm = pose_forearm(FOREARM_VERTS_M, view.R_cam_model, root, offset)
    return PosedHand(verts + offset, kps, model.faces.numpy(), arm), view.kind


def keypoint_visibility(kps_px: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(21,) bool: inside the image and the surface at the pixel is the keypoint's own finger, or the palm for
    keypoints on the palm (wrist, thumb CMC/MCP, finger MCPs). labels: (H, W) render labels (-1 background,
    0 palm, 1 + finger index)."""
    h, w = labels.shape
    px = np.round(kps_px).astype(int)
    inside = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
    seen = np.full(21, -1)
    seen[inside] = labels[px[inside, 1], px[inside, 0]]
    return inside & ((seen == KEYPOINT_PART + 1) | ((seen == 0) & ON_PALM))


class CheckRenderer:
    """Renders posed hands with a random skin tone, lights and background for the MediaPipe check."""

    def __init__(self, model, data: dict, size: int = 480, focal_px: float = 640.0, texture_size: int = 512):
        from app.offscreen.renderer import OffscreenRenderer

        self.model = model
        self.data = data
        self.size = size
        self.K = np.array([[focal_px, 0, (size - 1) / 2], [0, focal_px, (size - 1) / 2], [0, 0, 1.0]])
        self.renderer = OffscreenRenderer(size, size, supersample=2)
        self.parts = face_parts(np.asarray(data["vertex_part"]), model.faces.numpy())
        self.painter = SkinPainter(data, texture_size)

    def sample(self, rng: np.random.Generator, kind: str | None = None) -> CheckSample:
        hand, kind = pose_hand(self.model, self.data, rng, kind)
        skin = self.painter.paint(rng)
        tint = np.ones((len(hand.verts_m), 3), np.float32)
        scene = HandScene(hand.verts_m.astype(np.float32), hand.faces, self.parts, tint,
                          hand.forearm_m.astype(np.float32), skin.tone, sample_lighting(rng), skin)
        view = render_scene(self.renderer, scene, self.K, random_background(rng, self.size, self.size))
        kps_px = project(hand.keypoints_m.astype(np.float64), self.K)
        return CheckSample(sensor_effects(view.rgb, rng), kps_px, keypoint_visibility(kps_px, view.parts), kind)

    def close(self) -> None:
        self.renderer.close()


def mediapipe_keypoints(hands, rgb: np.ndarray) -> np.ndarray | None:
    """(21, 2) pixel keypoints of the most confident hand MediaPipe finds, or None."""
    res = hands.process(np.ascontiguousarray(rgb))
    if not res.multi_hand_landmarks:
        return None
    h, w = rgb.shape[:2]
    lm = res.multi_hand_landmarks[0].landmark
    return np.array([[p.x * w, p.y * h] for p in lm])


def normalised_error(pred_px: np.ndarray, true_px: np.ndarray) -> float:
    """Mean 2D keypoint distance over the diagonal of the true keypoints' bounding box."""
    diag = float(np.linalg.norm(true_px.max(0) - true_px.min(0)))
    return float(np.linalg.norm(pred_px - true_px, axis=1).mean() / max(diag, 1e-6))


def summarise(records: list[dict], n_verts: int, n_faces: int) -> dict:
    """The check JSON from per-render records {visible_frac, detected, error, kind}."""
    vis = [r for r in records if r["visible_frac"] >= 0.7]
    errors = [r["error"] for r in records if r["detected"]]
    rate = float(np.mean([r["detected"] for r in vis])) if vis else 0.0
    return {
        "vertices": n_verts, "faces": n_faces, "joints": 16, "keypoints": 21,
        "renders": len(records), "renders_visible": len(vis),
        "mediapipe_detection_rate": rate,
        "mediapipe_detection_rate_all": float(np.mean([r["detected"] for r in records])),
        "mediapipe_median_kp_error": float(np.median(errors)) if errors else float("nan"),
        "per_kind": {k: float(np.mean([r["detected"] for r in vis if r["kind"] == k] or [np.nan]))
                     for k in VIEW_KINDS},
    }


def run_check(model, data: dict, n: int = 120, seed: int = 0, keep_images: int = 0):
    """Render n samples, run MediaPipe; returns (summary dict, list of kept CheckSamples)."""
    import mediapipe as mp

    rng = np.random.default_rng(seed)
    rend = CheckRenderer(model, data)
    records, kept = [], []
    with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=1, model_complexity=1,
                                  min_detection_confidence=0.5) as hands:
        for i in range(n):
            s = rend.sample(rng, VIEW_KINDS[i % 3])
            mp_px = mediapipe_keypoints(hands, s.rgb)
            err = normalised_error(mp_px, s.keypoints_px) if mp_px is not None else float("nan")
            records.append({"visible_frac": float(s.visible.mean()), "detected": mp_px is not None,
                            "error": err, "kind": s.kind})
            if len(kept) < keep_images:
                kept.append((s, mp_px))
    rend.close()
    return summarise(records, model.num_verts, int(model.faces.shape[0])), kept


def contact_sheet(model, data: dict, n: int = 12, seed: int = 1, cols: int = 4, tile: int = 320) -> np.ndarray:
    """(rows * tile, cols * tile, 3) uint8 sheet of the model in random poses, shapes, tones and views, with
    its 21 keypoints drawn (green visible, red hidden)."""
    import cv2

    rng = np.random.default_rng(seed)
    rend = CheckRenderer(model, data)
    tiles = []
    for i in range(n):
        s = rend.sample(rng, VIEW_KINDS[i % 3])
        img = s.rgb.copy()
        for p, vis in zip(s.keypoints_px, s.visible, strict=False):
            cv2.circle(img, (int(round(p[0])), int(round(p[1]))), 4, (40, 220, 40) if vis else (230, 40, 40), -1)
        tiles.append(cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA))
    rend.close()
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[k:k + cols], 1) for k in range(0, len(tiles), cols)]
    return np.concatenate(rows, 0)
