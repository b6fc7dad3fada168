"""The composed live view, the same for the window and the headless MP4: the camera image with the hand mesh
rendered over it through the camera's K, a 3D orbit view of the textured mesh, and the HUD.

Rendering goes through app/offscreen's KeptSceneRenderer: one scene per panel size and thread, kept across
frames (hand vertex buffers rewritten in place, a texture uploaded only when its TextureMap object changed). The
scene's world frame is the left camera's; the camera panel looks through the camera's K, the orbit panel moves
the GL camera (the lights turn with it). Only the hands' bounding box is read back and composited.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from dataclasses import dataclass

import numpy as np

from app.session.texture_file import SKIN_RGB, texture_rgb8
from app.viewer.draw import HAND_COLOURS, draw_centre_text, draw_hud, draw_skeleton, hud_lines
from app.viewer.layout import Orbit, fit_placement, orbit_K, panel_size, place_image
from app.viewer.view import ViewerInput

BACKGROUND_3D = 48
TOPOLOGY_CACHE_SIZE = 8


@dataclass(frozen=True)
class ViewSettings:
    """What the user chose: mode ('split', 'camera' or '3d') and the orbit camera."""

    mode: str = "split"
    orbit: Orbit = Orbit()


def _fingerprint(a: np.ndarray | None):
    """Content key of an array (shape, dtype, 8-byte digest), None for None."""
    if a is None:
        return None
    a = np.ascontiguousarray(a)
    return a.shape, a.dtype.str, hashlib.blake2b(a.tobytes(), digest_size=8).digest()


class TopologyCache:
    """(faces, vertex count, UV layout) -> RenderTopology, built once per layout (the seam split, the normals'
    incidence matrix). Looked up by the arrays' identity (they are kept referenced, so ids stay unique), then by
    content, so a caller handing in equal copies every frame still gets the same RenderTopology object (the
    renderer keeps its primitive while the topology object stays)."""

    def __init__(self, size: int = TOPOLOGY_CACHE_SIZE):
        self.size = size
        self._by_id: dict[tuple, tuple[tuple, object]] = {}
        self._by_content: dict[tuple, object] = {}

    def get(self, faces: np.ndarray, n_verts: int, uv_layout: tuple | None):
        """faces (F, 3) int64; uv_layout (vt (T, 2), ft (F, 3)) or None -> RenderTopology."""
        from app.offscreen.kept_scene import RenderTopology

        arrays = (faces,) if uv_layout is None else (faces, *uv_layout)
        ident = (n_verts, *map(id, arrays))
        hit = self._by_id.get(ident)
        if hit is not None and all(a is b for a, b in zip(hit[0], arrays, strict=True)):
            return hit[1]
        content = (n_verts, *map(_fingerprint, arrays))
        topo = self._by_content.get(content)
        if topo is None:
            topo = RenderTopology.build(faces, n_verts, uv_layout)
            self._by_content = _bounded(self._by_content, self.size)
            self._by_content[content] = topo
        self._by_id = _bounded(self._by_id, self.size)
        self._by_id[ident] = (arrays, topo)
        return topo


def _bounded(d: dict, size: int) -> dict:
    """The dict, emptied when it holds ``size`` entries (layouts change rarely; a reset is cheap)."""
    return {} if len(d) >= size else d


_LOCAL = threading.local()


def renderer_for(size_wh: tuple[int, int]):
    """This thread's KeptSceneRenderer of ``size_wh``, made on first use and never deleted.

    Why never deleted: pyrender's EGL platform calls eglTerminate on the process-wide EGL display when any
    renderer is deleted (or garbage-collected), which breaks every other renderer alive (KeptSceneRenderer keeps
    every instance referenced); and its contexts stay current on the thread that last rendered (make_uncurrent
    is a no-op), so each thread needs its own. Composers on one thread share it: each hands it its frame's
    meshes before rendering (``hands_key``).
    """
    from app.offscreen.kept_scene import KeptSceneRenderer

    cache = _LOCAL.__dict__.setdefault("kept_renderers", {})
    if size_wh not in cache:
        cache[size_wh] = KeptSceneRenderer(*size_wh, plain_rgb=SKIN_RGB)
    return cache[size_wh]


class Composer:
    """Composes ViewerInputs into (ph, 2 pw, 3) uint8 RGB frames (pw = panel_width_px); ph follows the camera
    image's aspect (panel_size). Renders with the calling thread's renderers (renderer_for); keeps the orbit
    target between frames, so use one Composer from one thread."""

    def __init__(self, image_wh: tuple[int, int], panel_width_px: int = 640, overlay_alpha: float = 0.8):
        self.overlay_alpha = overlay_alpha
        self.panel_wh = panel_size(image_wh, panel_width_px)
        self.canvas_wh = (2 * self.panel_wh[0], self.panel_wh[1])
        self._topologies = TopologyCache()
        self._target_m = np.array([0.0, 0.0, 0.5])

    def _renderer(self, size_wh: tuple[int, int], view: ViewerInput):
        """This thread's renderer of ``size_wh``, holding ``view``'s meshes."""
        r = renderer_for(size_wh)
        if r.hands_key is not view:
            r.set_hands(self._hand_draws(view), key=view)
        return r

    def compose(self, view: ViewerInput, settings: ViewSettings) -> np.ndarray:
        """The (ph, 2 pw, 3) uint8 RGB frame of ``view``: both panels ('split') or one across the canvas."""
        pw, ph = self.panel_wh
        out = np.empty((ph, 2 * pw, 3), np.uint8)
        if settings.mode == "split":
            self._camera_into(out[:, :pw], view)
            self._orbit_into(out[:, pw:], view, settings.orbit)
        elif settings.mode == "camera":
            self._camera_into(out, view)
        else:
            self._orbit_into(out, view, settings.orbit)
        snap = view.snapshot
        draw_hud(out, hud_lines(view.status, snap.timings_ms, settings.mode), view.status.recording)
        return out

    def _hand_draws(self, view: ViewerInput) -> list:
        """The renderer's per-hand input: slot (side, n-th hand of that side), topology, vertices, texture."""
        from app.offscreen.kept_scene import HandDraw

        meshes = view.snapshot.meshes
        layouts = view.uv_layouts or (None,) * len(meshes)
        textures = view.textures or (None,) * len(meshes)
        draws, seen = [], {}
        for m, uv, tex in zip(meshes, layouts, textures, strict=False):
            side = bool(m.state.is_left)
            slot = (side, seen.setdefault(side, 0))
            seen[side] += 1
            if uv is None or len(uv[1]) != len(m.faces):
                uv = None
            topo = self._topologies.get(m.faces, len(m.verts_m), uv)
            textured = tex is not None and uv is not None
            draws.append(HandDraw(slot, topo, m.verts_m, tex if textured else None,
                                  functools.partial(texture_rgb8, tex) if textured else None))
        return draws

    def camera_panel(self, view: ViewerInput, panel_wh: tuple[int, int]) -> np.ndarray:
        """(ph, pw, 3) uint8: the camera image letterboxed into the panel, meshes over it, 2D skeletons on top."""
        panel = np.empty((panel_wh[1], panel_wh[0], 3), np.uint8)
        self._camera_into(panel, view)
        return panel

    def _camera_into(self, panel: np.ndarray, view: ViewerInput) -> None:
        """Draw the camera panel into ``panel`` ((ph, pw, 3) uint8 array or view)."""
        image = view.snapshot.image
        panel_wh = (panel.shape[1], panel.shape[0])
        place = fit_placement((image.shape[1], image.shape[0]), panel_wh)
        place_image(image, panel_wh, place, out=panel)
        if view.snapshot.meshes:
            from app.offscreen.kept_scene import composite_patch

            patch = self._renderer(panel_wh, view).render(place.K(view.K_px))
            composite_patch(panel, patch, self.overlay_alpha)
        for i, kps in enumerate(view.keypoints_px):
            draw_skeleton(panel, place.points(kps), HAND_COLOURS[i % 2])

    def orbit_panel(self, view: ViewerInput, panel_wh: tuple[int, int], orbit: Orbit) -> np.ndarray:
        """(ph, pw, 3) uint8: the meshes (or, without meshes, the triangulated keypoints) seen from the orbit
        camera."""
        panel = np.empty((panel_wh[1], panel_wh[0], 3), np.uint8)
        self._orbit_into(panel, view, orbit)
        return panel

    def _orbit_into(self, panel: np.ndarray, view: ViewerInput, orbit: Orbit) -> None:
        """Draw the orbit panel into ``panel`` ((ph, pw, 3) uint8 array or view)."""
        self._update_target(view)
        panel_wh = (panel.shape[1], panel.shape[0])
        if view.snapshot.meshes:
            self._orbit_meshes_into(panel, view, orbit)
            return
        panel[:] = BACKGROUND_3D
        K = orbit_K(panel_wh)
        for i, kps in enumerate(view.keypoints_cam_m):
            draw_skeleton(panel, project_points(orbit.to_view(kps, self._target_m), K), HAND_COLOURS[i % 2])
        if not view.keypoints_cam_m:
            draw_centre_text(panel, "no hand")

    def _orbit_meshes_into(self, panel: np.ndarray, view: ViewerInput, orbit: Orbit) -> None:
        """The meshes seen from the orbit camera, over the 3D panel's background."""
        from app.offscreen.kept_scene import composite_patch

        panel_wh = (panel.shape[1], panel.shape[0])
        panel[:] = BACKGROUND_3D
        patch = self._renderer(panel_wh, view).render(orbit_K(panel_wh), orbit_extrinsic(orbit, self._target_m))
        composite_patch(panel, patch)

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


def orbit_extrinsic(orbit: Orbit, target_m: np.ndarray) -> np.ndarray:
    """(4, 4) float64 left-camera frame -> orbit camera's OpenCV frame: the rigid map of ``Orbit.to_view``."""
    T = np.eye(4)
    R = orbit.rotation()
    T[:3, :3] = R
    T[:3, 3] = -R @ np.asarray(target_m, np.float64) + (0.0, 0.0, orbit.distance_m)
    return T


def project_points(points_m: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame metres -> (N, 2) pixels through K; points behind the camera become NaN."""
    from app.geometry.camera import project

    p = np.asarray(points_m, np.float64).copy()
    p[p[:, 2] <= 1e-6] = np.nan
    return project(p, K)
