"""One synthetic hand scene rendered through a pinhole camera: the posed hand with its forearm, a procedural skin,
lights and a background. Shared by the model check, the dataset generator and the animated synthetic source.

Frames: everything in the OpenCV camera frame of the view being rendered (metres). A stereo pair renders the
same scene twice, with the scene moved into each camera's frame by ``T_cam_left``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.offscreen.renderer import OffscreenRenderer, RenderedView, SceneMesh
from models.hand_model.uv import unweld
from models.synth.forearm import forearm_mesh
from models.synth.skin import SkinTexture

FOREARM_VERTS_M, FOREARM_FACES = forearm_mesh()
# Render labels: 0 palm, 1..5 thumb..pinky (1 + finger index), FOREARM_LABEL for the arm.
FOREARM_LABEL = 9


def face_parts(vertex_part: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) render label per face: 0 palm, 1 + finger index (TIP_NAMES order) for fingers; the label of
    most of its vertices (the first vertex's on a three-way tie)."""
    lab = vertex_part[faces] + 1
    same12 = lab[:, 1] == lab[:, 2]
    return np.where(same12, lab[:, 1], lab[:, 0])


@dataclass(frozen=True)
class Lighting:
    """dirs_cam: (L, 3) directions of travel in the left-camera frame; intensity: (L,); ambient in [0, 1]."""

    dirs_cam: np.ndarray
    intensity: np.ndarray
    ambient: float


@dataclass(frozen=True)
class HandScene:
    """A posed hand in the left-camera frame.

    verts_m: (V, 3) float32 metres; faces: (F, 3) int64; face_part: (F,) int render labels (see face_parts);
    vertex_rgb: (V, 3) float32 sRGB albedo in [0, 1] (a tint multiplying the skin texture when there is one);
    forearm_m: (N, 3) float32 metres (FOREARM_FACES) or None; forearm_rgb: (3,) sRGB albedo of the arm;
    skin: a UV skin texture or None (vertex colours only).
    """

    verts_m: np.ndarray
    faces: np.ndarray
    face_part: np.ndarray
    vertex_rgb: np.ndarray
    forearm_m: np.ndarray | None
    forearm_rgb: np.ndarray
    lighting: Lighting
    skin: SkinTexture | None = None


def sample_lighting(rng: np.random.Generator) -> Lighting:
    """A key light roughly from the camera plus two random fill lights, always lighting the visible side."""
    dirs = np.concatenate([[[0.0, 0.3, 1.0]], rng.normal(0, 1, (2, 3))])
    dirs[:, 2] = np.abs(dirs[:, 2]) + 0.3
    intensity = np.concatenate([rng.uniform(1.2, 2.5, 1), rng.uniform(0.2, 1.2, 2)])
    return Lighting(dirs, intensity, float(rng.uniform(0.15, 0.35)))


def _in_camera(points_m: np.ndarray, T_cam_left: np.ndarray) -> np.ndarray:
    return (points_m @ T_cam_left[:3, :3].T + T_cam_left[:3, 3]).astype(np.float32)


def scene_meshes(scene: HandScene, T_cam_left: np.ndarray) -> list[SceneMesh]:
    """The scene's meshes moved into one camera's frame."""
    meshes = [_hand_mesh(scene, _in_camera(scene.verts_m, T_cam_left))]
    if scene.forearm_m is not None:
        rgb = np.repeat(np.asarray(scene.forearm_rgb, np.float32)[None], len(scene.forearm_m), 0)
        meshes.append(SceneMesh(_in_camera(scene.forearm_m, T_cam_left), FOREARM_FACES, rgb,
                                np.full(len(FOREARM_FACES), FOREARM_LABEL)))
    return meshes


def _hand_mesh(scene: HandScene, verts_cam_m: np.ndarray) -> SceneMesh:
    """The hand as a SceneMesh; with a skin texture, split along UV seams so each render vertex has one UV."""
    if scene.skin is None:
        return SceneMesh(verts_cam_m, scene.faces, scene.vertex_rgb, scene.face_part)
    u = unweld(scene.faces, scene.skin.ft)
    return SceneMesh(verts_cam_m[u.vertex_index], u.faces, scene.vertex_rgb[u.vertex_index], scene.face_part,
                     uv=scene.skin.vt[u.uv_index], texture=scene.skin.image)


def render_scene(renderer: OffscreenRenderer, scene: HandScene, K: np.ndarray, background: np.ndarray | None,
                 T_cam_left: np.ndarray | None = None, with_parts: bool = True) -> RenderedView:
    """Render the scene through camera (K, T_cam_left); lights rotate with the camera so both views of a rig
    see the same light directions relative to the hand."""
    T = np.eye(4) if T_cam_left is None else T_cam_left
    dirs = scene.lighting.dirs_cam @ T[:3, :3].T
    return renderer.render(scene_meshes(scene, T), K, background, light_dirs_cam=dirs,
                           light_intensity=scene.lighting.intensity, ambient=scene.lighting.ambient,
                           with_parts=with_parts)


def sensor_effects(rgb: np.ndarray, rng: np.random.Generator, blur_sigma_px: tuple = (0.3, 0.9),
                   noise_std: tuple = (1.0, 4.0)) -> np.ndarray:
    """A camera's softness and noise on a clean render: Gaussian blur (random sigma, px) then additive Gaussian
    noise (random std, grey levels). (H, W, 3) uint8 -> (H, W, 3) uint8."""
    from scipy.ndimage import gaussian_filter

    img = gaussian_filter(rgb.astype(np.float32), sigma=(rng.uniform(*blur_sigma_px),) * 2 + (0.0,))
    img += rng.normal(0.0, rng.uniform(*noise_std), img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
