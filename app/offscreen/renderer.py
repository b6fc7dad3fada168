"""Offscreen renderer of meshes given in the OpenCV camera frame (metres) through a pinhole K.

Returns colour (H, W, 3) uint8 RGB, depth (H, W) float32 metres (0 = background) and a part-label image
(H, W) int16 (-1 = background) from a second flat pass, for keypoint visibility tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.geometry.gl import CV_TO_GL
from app.offscreen import use_offscreen_platform


@dataclass(frozen=True)
class RenderedView:
    """rgb: (H, W, 3) uint8; depth_m: (H, W) float32 metres along z, 0 where empty; parts: (H, W) int16 part
    label of the visible surface, -1 where empty."""

    rgb: np.ndarray
    depth_m: np.ndarray
    parts: np.ndarray


@dataclass(frozen=True)
class SceneMesh:
    """verts_m: (V, 3) float32, metres, OpenCV camera frame; faces (F, 3) int64; vertex_rgb (V, 3) float32
    sRGB albedo in [0, 1] (multiplies the texture when one is given); face_part: (F,) int part label per face
    (>= 0) or None; uv: (V, 2) float32 per-vertex UVs, (0, 0) = the texture's bottom-left (OBJ/glTF viewer
    convention, see models/hand_model/uv.py), or None; texture: (S, S, 3) uint8 sRGB, row 0 = top, or None."""

    verts_m: np.ndarray
    faces: np.ndarray
    vertex_rgb: np.ndarray
    face_part: np.ndarray | None = None
    uv: np.ndarray | None = None
    texture: np.ndarray | None = None


class OffscreenRenderer:
    """One pyrender OffscreenRenderer reused across frames of the same size.

    supersample: render at that many times the resolution and box-filter colour down (anti-aliased edges, as a
    real camera's pixels integrate light); depth and parts come from the high-resolution sample nearest each
    output pixel centre (at most 0.5 / supersample px away). multisample False turns pyrender's 4x MSAA off
    after the first render (about half the cost of a render on Mesa's CPU rasterizer; for live views).
    """

    def __init__(self, width: int, height: int, supersample: int = 1, multisample: bool = True):
        use_offscreen_platform()
        import pyrender

        if supersample < 1:
            raise ValueError(f"supersample must be >= 1, got {supersample}")
        self._pr = _ordered_pyrender(pyrender)
        self.size_wh = (width, height)
        self.ss = int(supersample)
        self._renderer = pyrender.OffscreenRenderer(width * self.ss, height * self.ss)
        self._multisample_pending_off = not multisample

    def _scaled_K(self, K: np.ndarray) -> np.ndarray:
        """K of the high-resolution render: pixel x (centre at an integer) covers high-res pixels s x .. s x + s - 1,
        whose mean centre is s x + (s - 1) / 2."""
        s = self.ss
        K2 = np.asarray(K, np.float64).copy()
        K2[:2, :2] *= s
        K2[:2, 2] = s * K2[:2, 2] + (s - 1) / 2.0
        return K2

    def _down(self, img: np.ndarray) -> np.ndarray:
        """Box filter (H s, W s, C) -> (H, W, C) float32."""
        s, (w, h) = self.ss, self.size_wh
        return img.reshape(h, s, w, s, -1).astype(np.float32).mean(axis=(1, 3))

    def _pick(self, img: np.ndarray) -> np.ndarray:
        """The high-res sample nearest each output pixel centre."""
        o = self.ss // 2
        return img[o::self.ss, o::self.ss]

    def close(self) -> None:
        """Free this renderer's GL context only. pyrender's EGL platform also calls eglTerminate on the shared
        default display, which kills every other live renderer's context in the process (viewer, synthetic
        source, check...): that step is skipped."""
        platform = getattr(self._renderer, "_platform", None)
        if platform is not None and type(platform).__name__ == "EGLPlatform":
            platform.delete_context = lambda: _destroy_egl_context(platform)
        self._renderer.delete()

    def _camera(self, scene, K: np.ndarray) -> None:
        cam = self._pr.IntrinsicsCamera(K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5, znear=0.01, zfar=20.0)
        scene.add(cam, pose=CV_TO_GL)

    def _lights(self, scene, light_dirs_cam: np.ndarray, intensities: np.ndarray) -> None:
        """Directional lights travelling along light_dirs_cam (OpenCV camera frame = this scene's world frame)."""
        for d, inten in zip(light_dirs_cam, intensities, strict=False):
            z = -np.asarray(d, float) / np.linalg.norm(d)  # GL lights shine along their own -z axis
            x = np.cross([0.0, 1.0, 0.3], z)
            x /= np.linalg.norm(x)
            pose = np.eye(4)
            pose[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
            scene.add(self._pr.DirectionalLight(intensity=float(inten)), pose=pose)

    def render(self, meshes: list[SceneMesh], K: np.ndarray, background: np.ndarray | None = None,
               light_dirs_cam: np.ndarray | None = None, light_intensity: np.ndarray | None = None,
               ambient: float = 0.35, with_parts: bool = False) -> RenderedView:
        """Render shaded meshes; lights given as directions of travel in the OpenCV camera frame."""
        pr = self._pr
        scene = pr.Scene(bg_color=[0, 0, 0, 0], ambient_light=[ambient] * 3)
        for m in meshes:
            scene.add(_shaded_mesh(pr, m))
        self._camera(scene, self._scaled_K(K))
        if light_dirs_cam is None:
            light_dirs_cam = np.array([[0.2, 0.4, 1.0]])
        if light_intensity is None:
            light_intensity = np.full(len(light_dirs_cam), 3.0)
        self._lights(scene, light_dirs_cam, light_intensity)
        flags = pr.RenderFlags.RGBA
        rgba, depth = self._renderer.render(scene, flags=flags)
        if self._multisample_pending_off:  # the buffers exist after a first render; later renders are plain
            self._multisample_pending_off = False
            set_multisample_count(self._renderer, 0)
        rgb = _composite(self._down_rgba(rgba), background)
        depth = self._pick(depth)
        parts = self._render_parts(meshes, K) if with_parts else np.full(depth.shape, -1, np.int16)
        return RenderedView(rgb=rgb, depth_m=np.ascontiguousarray(depth, np.float32), parts=parts)

    def _down_rgba(self, rgba: np.ndarray) -> np.ndarray:
        """Box filter of the premultiplied RGBA (see _composite)."""
        return rgba if self.ss == 1 else self._down(rgba)

    def _render_parts(self, meshes: list[SceneMesh], K: np.ndarray) -> np.ndarray:
        """Flat pass: each part its own node, colour-coded; returns (H, W) int16 labels."""
        pr = self._pr
        scene = pr.Scene(bg_color=[0, 0, 0, 0])
        colours = {}
        for m in meshes:
            if m.face_part is None:
                continue
            for label in np.unique(m.face_part):
                sel = m.face_part == label
                node = scene.add(_part_mesh(pr, m, sel))
                colours[node] = _label_colour(int(label))
        self._camera(scene, self._scaled_K(K))
        seg, _ = self._renderer.render(scene, flags=pr.RenderFlags.SEG, seg_node_map=colours)
        return np.ascontiguousarray(_decode_labels(self._pick(seg)))


def set_multisample_count(renderer, samples: int) -> bool:
    """Re-allocate the multisample colour/depth renderbuffers of a pyrender OffscreenRenderer with ``samples``
    per pixel (0 = plain buffers). pyrender 0.1.45 (pinned) always uses 4, which costs Mesa's CPU renderer about
    half of a hand render. Needs the context current and the framebuffers made (after a first render); pyrender
    keeps them while the viewport size stays. Returns False, changing nothing, if this pyrender keeps them
    elsewhere."""
    from OpenGL import GL as gl

    inner = getattr(renderer, "_renderer", None)
    buffers = (getattr(inner, "_main_cb_ms", None), getattr(inner, "_main_db_ms", None))
    if any(b is None for b in buffers):
        return False
    w, h = renderer.viewport_width, renderer.viewport_height
    for buf, fmt in zip(buffers, (gl.GL_RGBA, gl.GL_DEPTH_COMPONENT24), strict=True):
        gl.glBindRenderbuffer(gl.GL_RENDERBUFFER, buf)
        gl.glRenderbufferStorageMultisample(gl.GL_RENDERBUFFER, samples, fmt, w, h)
    gl.glBindRenderbuffer(gl.GL_RENDERBUFFER, 0)
    return True


def _ordered_pyrender(pyrender):
    """pyrender with a Scene that hands out mesh and light nodes in the order they were added.

    Why: pyrender keeps nodes in sets, so draw order (which surface wins a depth tie, e.g. hand and forearm at the
    wrist) and the order light contributions are summed depend on object ids, i.e. on the process's allocation
    history; identical scenes then render a few pixels differently between runs and worker processes."""
    import types

    class InsertionOrderScene(pyrender.Scene):
        def add_node(self, node, parent_node=None):
            order = self.__dict__.setdefault("_order", {})
            order.setdefault(node, len(order))
            super().add_node(node, parent_node)

        def _sorted(self, nodes):
            order = self.__dict__.get("_order", {})
            return sorted(nodes, key=lambda n: order.get(n, len(order)))

        mesh_nodes = property(lambda self: self._sorted(self._mesh_nodes))
        directional_light_nodes = property(lambda self: self._sorted(self._directional_light_nodes))
        point_light_nodes = property(lambda self: self._sorted(self._point_light_nodes))
        spot_light_nodes = property(lambda self: self._sorted(self._spot_light_nodes))
        light_nodes = property(lambda self: self._sorted(
            self._directional_light_nodes | self._point_light_nodes | self._spot_light_nodes))

    module = types.ModuleType("pyrender_insertion_order")
    module.__dict__.update(vars(pyrender))
    module.Scene = InsertionOrderScene
    return module


def _destroy_egl_context(platform) -> None:
    from OpenGL.EGL import eglDestroyContext

    if platform._egl_display is not None and platform._egl_context is not None:
        eglDestroyContext(platform._egl_display, platform._egl_context)
    platform._egl_context = None


def _shaded_mesh(pr, m: SceneMesh):
    """Smooth-shaded mesh with per-vertex albedo and an optional texture (pyrender drops vertex colours when
    given a material through from_trimesh, so the primitive is built directly)."""
    import trimesh

    normals = trimesh.Trimesh(m.verts_m, m.faces, process=False).vertex_normals
    # pyrender's shader treats COLOR_0 as linear and gamma-encodes its output: hand it linear albedo
    # (textures are declared sRGB and linearised by the shader itself).
    rgba = np.concatenate([srgb_to_linear(m.vertex_rgb), np.ones((len(m.vertex_rgb), 1), np.float32)], axis=1)
    texture, texcoord = None, None
    if m.texture is not None and m.uv is not None:
        texture = pr.Texture(source=np.ascontiguousarray(m.texture), source_channels="RGB")
        texcoord = gl_texcoords(m.uv)
    skin = pr.MetallicRoughnessMaterial(metallicFactor=0.0, roughnessFactor=0.65, baseColorFactor=[1.0] * 4,
                                        baseColorTexture=texture)
    prim = pr.Primitive(positions=m.verts_m, normals=normals, color_0=rgba, texcoord_0=texcoord, indices=m.faces,
                        material=skin, mode=pr.constants.GLTF.TRIANGLES)
    return pr.Mesh([prim])


def gl_texcoords(uv: np.ndarray) -> np.ndarray:
    """Our UVs ((0, 0) bottom-left of the stored image, top row first) -> GL texture coordinates. pyrender
    uploads images bottom row first (it flips rows), so GL's t = 0 is the image's bottom row and our v maps to t
    unchanged. The one place this convention is decided (tested by a golden render)."""
    return np.ascontiguousarray(uv, dtype=np.float32)


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded colours in [0, 1] -> linear (IEC 61966-2-1), same shape, float32."""
    rgb = np.asarray(rgb, np.float32)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _part_mesh(pr, m: SceneMesh, sel: np.ndarray):
    import trimesh

    tm = trimesh.Trimesh(m.verts_m, m.faces[sel], process=False)
    return pr.Mesh.from_trimesh(tm, smooth=False)


def _label_colour(label: int) -> np.ndarray:
    """Encode label + 1 in the red and green channels (0 = background)."""
    code = label + 1
    return np.array([code % 256, code // 256, 0], dtype=np.uint8)


def _decode_labels(seg: np.ndarray) -> np.ndarray:
    code = seg[..., 0].astype(np.int32) + 256 * seg[..., 1].astype(np.int32)
    return (code - 1).astype(np.int16)


def _composite(rgba: np.ndarray, background: np.ndarray | None) -> np.ndarray:
    """Composite the render over a background image (H, W, 3) uint8 (grey when None). The render is cleared to
    transparent black and multisampled, so its colour is premultiplied by coverage: out = rgb + bg (1 - alpha)."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    bg = np.full(rgba.shape[:2] + (3,), 90, np.uint8) if background is None else background
    out = rgba[..., :3].astype(np.float32) + bg.astype(np.float32) * (1.0 - alpha)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
