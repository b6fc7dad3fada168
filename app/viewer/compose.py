"""The composed live view, the same for the window and the headless MP4: the camera image with the hand mesh
rendered over it through the camera's K, a 3D orbit view of the textured mesh, and the HUD.

Rendering goes through app/offscreen's OffscreenRenderer (meshes in an OpenCV camera frame through a pinhole
K); the 3D view moves the meshes into the orbit camera's frame instead of moving a GL camera.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from app.session.texture_file import SKIN_RGB, texture_rgb8
from app.types import HandMesh
from app.viewer.draw import HAND_COLOURS, draw_centre_text, draw_hud, draw_skeleton, hud_lines
from app.viewer.layout import Orbit, fit_placement, orbit_K, panel_size, place_image
from app.viewer.view import ViewerInput

BACKGROUND_3D = 48


@dataclass(frozen=True)
class ViewSettings:
    """What the user chose: mode ('split', 'camera' or '3d') and the orbit camera."""

    mode: str = "split"
    orbit: Orbit = Orbit()


class MeshBuilder:
    """HandMesh (+ texture and UV layout) -> SceneMesh; the seam split (unweld) is cached per layout."""

    def __init__(self):
        self._unwelded: dict[tuple[int, int], object] = {}

    def scene_mesh(self, mesh: HandMesh, verts_m: np.ndarray, texture: np.ndarray | None, uv_layout):
        from app.offscreen.renderer import SceneMesh

        if texture is None or uv_layout is None or len(uv_layout[1]) != len(mesh.faces):
            rgb = np.repeat(SKIN_RGB[None], len(verts_m), 0)
            return SceneMesh(verts_m.astype(np.float32), mesh.faces, rgb)
        vt, ft = uv_layout
        unw = self._unweld(mesh.faces, ft)
        return SceneMesh(verts_m[unw.vertex_index].astype(np.float32), unw.faces,
                         np.ones((len(unw.vertex_index), 3), np.float32),
                         uv=np.asarray(vt, np.float32)[unw.uv_index], texture=texture)

    def _unweld(self, faces: np.ndarray, ft: np.ndarray):
        from models.hand_model.uv import unweld

        key = (id(ft), len(faces))
        if key not in self._unwelded:
            self._unwelded[key] = unweld(faces, ft)
        return self._unwelded[key]


_LOCAL = threading.local()
_KEEP_ALIVE: list = []


def renderer_for(size_wh: tuple[int, int]):
    """This thread's OffscreenRenderer of ``size_wh``, made on first use and never deleted.

    Why never deleted: pyrender's EGL platform calls eglTerminate on the process-wide EGL display when any
    renderer is deleted (or garbage-collected), which breaks every other renderer alive; and its contexts stay
    current on the thread that last rendered (make_uncurrent is a no-op), so each thread needs its own.
    """
    from app.offscreen.renderer import OffscreenRenderer

    cache = _LOCAL.__dict__.setdefault("renderers", {})
    if size_wh not in cache:
        cache[size_wh] = OffscreenRenderer(*size_wh, multisample=False)
        _KEEP_ALIVE.append(cache[size_wh])
    return cache[size_wh]


class Composer:
    """Composes ViewerInputs into (ph, 2 pw, 3) uint8 RGB frames (pw = panel_width_px); ph follows the camera
    image's aspect (panel_size). Renders with the calling thread's renderers (renderer_for); keeps the orbit
    target between frames, so use one Composer from one thread."""

    def __init__(self, image_wh: tuple[int, int], panel_width_px: int = 640, overlay_alpha: float = 0.8):
        self.overlay_alpha = overlay_alpha
        self.panel_wh = panel_size(image_wh, panel_width_px)
        self.canvas_wh = (2 * self.panel_wh[0], self.panel_wh[1])
        self._meshes = MeshBuilder()
        self._target_m = np.array([0.0, 0.0, 0.5])

    def _renderer(self, size_wh: tuple[int, int]):
        return renderer_for(size_wh)

    def compose(self, view: ViewerInput, settings: ViewSettings) -> np.ndarray:
        if settings.mode == "split":
            out = np.concatenate([self.camera_panel(view, self.panel_wh),
                                  self.orbit_panel(view, self.panel_wh, settings.orbit)], axis=1)
        elif settings.mode == "camera":
            out = self.camera_panel(view, self.canvas_wh)
        else:
            out = self.orbit_panel(view, self.canvas_wh, settings.orbit)
        snap = view.snapshot
        draw_hud(out, hud_lines(view.status, snap.timings_ms, settings.mode), view.status.recording)
        return out

    def _scene(self, view: ViewerInput, to_frame) -> list:
        meshes = view.snapshot.meshes
        layouts = view.uv_layouts or (None,) * len(meshes)
        textures = [None if t is None else texture_rgb8(t) for t in view.textures] or [None] * len(meshes)
        return [self._meshes.scene_mesh(m, to_frame(m.verts_m), tex, uv)
                for m, uv, tex in zip(meshes, layouts, textures, strict=False)]

    def camera_panel(self, view: ViewerInput, panel_wh: tuple[int, int]) -> np.ndarray:
        """The camera image letterboxed into the panel, meshes rendered over it, 2D skeletons on top."""
        image = view.snapshot.image
        place = fit_placement((image.shape[1], image.shape[0]), panel_wh)
        panel = place_image(image, panel_wh, place)
        meshes = self._scene(view, lambda v: v)
        if meshes:
            drawn = self._renderer(panel_wh).render(meshes, place.K(view.K_px), background=panel).rgb
            panel = blend(panel, drawn, self.overlay_alpha)
        for i, kps in enumerate(view.keypoints_px):
            draw_skeleton(panel, place.points(kps), HAND_COLOURS[i % 2])
        return panel

    def orbit_panel(self, view: ViewerInput, panel_wh: tuple[int, int], orbit: Orbit) -> np.ndarray:
        """The meshes (or, without meshes, the triangulated keypoints) seen from the orbit camera."""
        self._update_target(view)
        K = orbit_K(panel_wh)
        panel = np.full((panel_wh[1], panel_wh[0], 3), BACKGROUND_3D, np.uint8)
        meshes = self._scene(view, lambda v: orbit.to_view(v, self._target_m))
        if meshes:
            return self._renderer(panel_wh).render(meshes, K, background=panel).rgb.copy()
        for i, kps in enumerate(view.keypoints_cam_m):
            draw_skeleton(panel, project_points(orbit.to_view(kps, self._target_m), K), HAND_COLOURS[i % 2])
        if not view.keypoints_cam_m:
            draw_centre_text(panel, "no hand")
        return panel

    def _update_target(self, view: ViewerInput) -> None:
        """Orbit around the hands' centre; keep the last centre while no hand is seen."""
        pts = [m.verts_m for m in view.snapshot.meshes] or list(view.keypoints_cam_m)
        if pts:
            allp = np.concatenate(pts).astype(np.float64)
            allp = allp[np.isfinite(allp).all(1)]
            if len(allp):
                self._target_m = allp.mean(0)

    def close(self) -> None:
        """Nothing to release: renderers live as long as the process (see renderer_for)."""


def blend(under: np.ndarray, over: np.ndarray, alpha: float) -> np.ndarray:
    """(1 - alpha) under + alpha over, uint8; only pixels where the two differ are computed (the mesh's)."""
    if alpha >= 1.0:
        return over.copy()
    out = under.copy()
    ys, xs = np.nonzero((under != over).any(axis=2))
    mixed = under[ys, xs].astype(np.float32) * (1.0 - alpha) + over[ys, xs].astype(np.float32) * alpha
    out[ys, xs] = (mixed + 0.5).astype(np.uint8)
    return out


def project_points(points_m: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame metres -> (N, 2) pixels through K; points behind the camera become NaN."""
    from app.geometry.camera import project

    p = np.asarray(points_m, np.float64).copy()
    p[p[:, 2] <= 1e-6] = np.nan
    return project(p, K)
