"""A kept-scene offscreen renderer for live views: one pyrender scene per renderer, built once and changed in
place from frame to frame (the pattern of ``app/capture/synthetic.py: StereoSceneRenderer``).

Per frame the caller hands over the hands to draw (``HandDraw``): their vertex buffers are rewritten in place
(glBufferSubData), a hand's texture is uploaded only when its source object changed (identity, not content), and
hands not drawn this frame are hidden, not deleted. ``render`` moves the one camera node (any OpenCV extrinsic
and pinhole K, so one scene serves the camera overlay and an orbit view), turns the lights with the camera
(they are given in the camera frame, as in ``OffscreenRenderer``), draws single-sampled, and reads back only the
colour of the hands' projected bounding box (no depth read-back, no full-frame copy). ``composite_patch`` lays
that premultiplied patch over a panel in place, touching only the box.

Shading is pyrender's metallic-roughness model with the material, linear albedo and light set of
``OffscreenRenderer.render``, compiled from ``shaders/directional.frag``: pyrender's mesh.frag reduced to
directional lights (its loops over point and spot light arrays, empty here, made Mesa's llvmpipe shade about 3x
slower). A frame matches the per-call renderer's to 1 level (tests/app/offscreen/test_kept_scene.py); vertex
normals are area-weighted on the welded model mesh (no shading seams along UV seams).

Threads: a GL context belongs to the thread that made it; make, use and keep a renderer on one thread. Renderers
are never deleted (pyrender's EGL platform terminates the process-wide display on delete; see
``KeptSceneRenderer``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import scipy.sparse

from app.geometry.gl import opencv_to_gl_pose
from app.offscreen import use_offscreen_platform
from app.offscreen.renderer import _ordered_pyrender, gl_texcoords, set_multisample_count, srgb_to_linear

LIGHT_DIRS_CAM = np.array([[0.2, 0.4, 1.0]])  # OffscreenRenderer.render's default light (direction of travel)
LIGHT_INTENSITY = np.array([3.0])
ZNEAR_M, ZFAR_M = 0.01, 20.0
ROI_MARGIN_PX = 2
MAX_LIGHTS = 4  # pyrender's MAX_N_LIGHTS: the light array length its renderer declares to shaders
SHADER_DIR = Path(__file__).resolve().parent / "shaders"


@dataclass(frozen=True, eq=False)
class RenderTopology:
    """How a hand mesh of one model is drawn (compared by identity). n_verts: V model vertices; faces: (F, 3)
    int64 model faces; incidence: (V, F) sparse 0/1 (vertex touches face), for normals. Textured layouts split
    the mesh along UV seams: vertex_index (R,) int64 model vertex of each render vertex, render_faces (F, 3)
    int64 into them, uv (R, 2) float32 ((0, 0) = the texture's bottom-left); untextured: vertex_index =
    arange(V), uv None."""

    n_verts: int
    faces: np.ndarray
    incidence: scipy.sparse.csr_matrix
    vertex_index: np.ndarray
    render_faces: np.ndarray
    uv: np.ndarray | None

    @classmethod
    def build(cls, faces: np.ndarray, n_verts: int, uv_layout: tuple | None = None) -> RenderTopology:
        """faces (F, 3) int64; uv_layout: (vt (T, 2) float32, ft (F, 3) int64) or None (drawn untextured)."""
        from models.hand_model.uv import unweld

        faces = np.asarray(faces, np.int64)
        rows, cols = faces.ravel(), np.repeat(np.arange(len(faces)), 3)
        incidence = scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_verts, len(faces)))
        if uv_layout is None:
            return cls(n_verts, faces, incidence, np.arange(n_verts), faces, None)
        vt, ft = uv_layout
        unw = unweld(faces, ft)
        uv = gl_texcoords(np.asarray(vt, np.float32)[unw.uv_index])
        return cls(n_verts, faces, incidence, unw.vertex_index, unw.faces, uv)

    def normals(self, verts_m: np.ndarray) -> np.ndarray:
        """(V, 3) model vertices -> (V, 3) float32 unit normals, area-weighted over each vertex's faces."""
        v = np.asarray(verts_m, np.float64)
        f = self.faces
        face_n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
        vn = self.incidence @ face_n
        return (vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class HandDraw:
    """One hand to draw this frame. slot: stable key of the hand across frames (e.g. its side); verts_m: (V, 3)
    float32 metres in the scene's world frame (the left camera's OpenCV frame); texture_key: the texture's
    source object, compared by identity (a new object = a new texture; None = untextured, ``plain_rgb``);
    texture_rgb8: makes the (S, S, 3) uint8 sRGB image (row 0 = top), called only when the key changed."""

    slot: Hashable
    topology: RenderTopology
    verts_m: np.ndarray
    texture_key: object | None = None
    texture_rgb8: Callable[[], np.ndarray] | None = None


@dataclass(frozen=True)
class Patch:
    """Colour of a render's region: rgba (h, w, 4) uint8, colour premultiplied by coverage (transparent black
    where nothing was drawn), row 0 = top; x0, y0: its top-left pixel in the viewport. Empty when h or w is 0."""

    rgba: np.ndarray
    x0: int
    y0: int


@dataclass
class _Slot:
    """GL state of one hand slot: its node, what its primitive was built for, its texture and draw state."""

    node: object = None
    built_for: tuple = (None, None)  # (topology, texture) the primitive was made for
    texture: object = None  # pyrender.Texture, kept across frames
    texture_key: object = None  # the source object of the uploaded texture (kept alive: identity stays unique)
    verts_m: np.ndarray | None = None
    visible: bool = False


_ALIVE: list = []  # every KeptSceneRenderer made: never garbage-collected (see the class)


class KeptSceneRenderer:
    """Renders textured hand meshes into a width x height viewport from a scene kept across frames.

    plain_rgb: (3,) sRGB albedo in [0, 1] of untextured hands. ambient, light_dirs_cam (L, 3) directions of
    travel in the camera frame and light_intensity (L,): as ``OffscreenRenderer.render``. Not thread-safe: one
    thread makes and uses it. Lives as long as the process: pyrender's EGL platform calls eglTerminate on the
    process-wide display when one of its renderers is deleted or garbage-collected, which breaks every other
    renderer alive, so each one made is kept referenced (make few: one per thread and viewport size).
    """

    def __init__(self, width: int, height: int, plain_rgb: np.ndarray, ambient: float = 0.35,
                 light_dirs_cam: np.ndarray = LIGHT_DIRS_CAM, light_intensity: np.ndarray = LIGHT_INTENSITY):
        use_offscreen_platform()
        import pyrender

        self._pr = _ordered_pyrender(pyrender)
        self.size_wh = (int(width), int(height))
        if not 1 <= len(light_dirs_cam) <= MAX_LIGHTS:
            raise ValueError(f"KeptSceneRenderer: give 1 to {MAX_LIGHTS} directional lights, got {len(light_dirs_cam)}")
        self._renderer = pyrender.OffscreenRenderer(*self.size_wh)
        inner = self._renderer._renderer  # this instance only: a box is read instead, and the shader is lean
        inner._read_main_framebuffer = _skip_read
        inner._program_cache = directional_program_cache(len(light_dirs_cam))
        self._scene = self._pr.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=[ambient] * 3)
        self._camera = self._pr.IntrinsicsCamera(1.0, 1.0, 0.0, 0.0, znear=ZNEAR_M, zfar=ZFAR_M)
        self._scene.main_camera_node = self._scene.add(self._camera)
        self._lights = [(self._scene.add(self._pr.DirectionalLight(intensity=float(i))), light_pose_cam(d))
                        for d, i in zip(light_dirs_cam, light_intensity, strict=True)]
        self._plain = self._material(None)
        self._plain_rgba = np.append(srgb_to_linear(np.asarray(plain_rgb, np.float32)), 1.0).astype(np.float32)
        self._slots: dict[Hashable, _Slot] = {}
        self.hands_key: object = None
        _ALIVE.append(self)
        self._draw(np.eye(3), np.eye(4))  # makes the framebuffers, then single-sample them
        self.samples = 0 if set_multisample_count(self._renderer, 0) else 4

    # ---- per frame: what to draw -------------------------------------------------------------------------

    def set_hands(self, hands: Sequence[HandDraw], key: object = None) -> None:
        """Draw these hands from now on (vertex buffers rewritten, textures uploaded when changed); hide the
        slots not given. ``key``: kept as ``hands_key`` so callers sharing this renderer can tell whether it
        already holds their frame (compared by identity)."""
        self._renderer._platform.make_current()
        for slot in self._slots.values():
            slot.visible = False
        for hand in hands:
            self._set_hand(self._slots.setdefault(hand.slot, _Slot()), hand)
        for slot in self._slots.values():
            if slot.node is not None:
                slot.node.mesh.is_visible = slot.visible
        self.hands_key = key

    def _set_hand(self, slot: _Slot, hand: HandDraw) -> None:
        topo = hand.topology
        if hand.texture_key is not slot.texture_key:
            self._set_texture(slot, hand)
        textured = slot.texture is not None and topo.uv is not None
        built_for = (topo, slot.texture if textured else None)
        verts = np.asarray(hand.verts_m, np.float32)
        data = vertex_data(topo, verts, None if textured else self._plain_rgba, textured)
        if slot.node is None or not all(a is b for a, b in zip(slot.built_for, built_for, strict=True)):
            self._rebuild(slot, topo, data, built_for)
        else:
            write_vertex_buffer(slot.node.mesh.primitives[0], data)
        slot.verts_m, slot.visible = verts, True

    def _set_texture(self, slot: _Slot, hand: HandDraw) -> None:
        """Upload the hand's texture into the slot's GL texture (same size: in place), or drop it (None)."""
        slot.texture_key = hand.texture_key
        if hand.texture_key is None or hand.texture_rgb8 is None:
            slot.texture = None
            return
        image = np.ascontiguousarray(hand.texture_rgb8(), np.uint8)
        tex = slot.texture
        if tex is not None and tex.source.shape == image.shape and tex._texid is not None:
            tex._source = image  # pyrender re-uploads .source only when the texture re-enters a context
            upload_texture(tex, image)
        else:
            slot.texture = self._pr.Texture(source=image, source_channels="RGB")

    def _rebuild(self, slot: _Slot, topo: RenderTopology, data: np.ndarray, built_for: tuple) -> None:
        """A new primitive for the slot (first use, another topology, textured <-> untextured, a new texture
        object); pyrender uploads it on the next render and frees the old one's buffers."""
        pr = self._pr
        if slot.node is not None:
            self._scene.remove_node(slot.node)
        textured = built_for[1] is not None
        material = self._material(built_for[1]) if textured else self._plain
        prim = pr.Primitive(positions=data[:, :3], normals=data[:, 3:6], texcoord_0=data[:, 6:8] if textured else None,
                            color_0=data[:, -4:], indices=topo.render_faces, material=material,
                            mode=pr.constants.GLTF.TRIANGLES)
        slot.node = self._scene.add(pr.Mesh([prim]))
        slot.built_for = built_for

    def _material(self, texture):
        return self._pr.MetallicRoughnessMaterial(metallicFactor=0.0, roughnessFactor=0.65,
                                                  baseColorFactor=[1.0] * 4, baseColorTexture=texture)

    # ---- rendering ----------------------------------------------------------------------------------------

    def render(self, K: np.ndarray, T_cam_world: np.ndarray | None = None) -> Patch:
        """Draw the visible hands through the pinhole K (3, 3) (pixels, OpenCV convention) from the camera
        with extrinsic T_cam_world (4, 4) (world -> OpenCV camera frame; identity when None); returns the colour
        of the hands' bounding box (empty when nothing is visible or in view)."""
        T = np.eye(4) if T_cam_world is None else np.asarray(T_cam_world, np.float64)
        box = self.hands_box(K, T)
        if box is None:
            return Patch(np.zeros((0, 0, 4), np.uint8), 0, 0)
        self._draw(K, T)
        return Patch(read_box(self._renderer, box), box[0], box[1])

    def hands_box(self, K: np.ndarray, T_cam_world: np.ndarray) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) viewport pixels (x1, y1 exclusive) holding every visible hand's projection (the
        whole viewport when a vertex is behind the near plane), None when nothing visible lands in view."""
        pts = [s.verts_m for s in self._slots.values() if s.visible and s.verts_m is not None]
        if not pts:
            return None
        p = np.concatenate(pts).astype(np.float64) @ T_cam_world[:3, :3].T + T_cam_world[:3, 3]
        w, h = self.size_wh
        if not np.isfinite(p).all() or (p[:, 2] <= ZNEAR_M).any():
            return 0, 0, w, h
        uv = p[:, :2] / p[:, 2:3] @ K[:2, :2].T + K[:2, 2]
        lo = np.floor(uv.min(0)).astype(int) - ROI_MARGIN_PX
        hi = np.ceil(uv.max(0)).astype(int) + 1 + ROI_MARGIN_PX
        x0, y0, x1, y1 = max(lo[0], 0), max(lo[1], 0), min(hi[0], w), min(hi[1], h)
        return None if x0 >= x1 or y0 >= y1 else (int(x0), int(y0), int(x1), int(y1))

    def _draw(self, K: np.ndarray, T_cam_world: np.ndarray) -> None:
        """Place camera and lights, then pyrender's forward pass (its framebuffer read is skipped)."""
        cam = self._camera
        cam.fx, cam.fy, cam.cx, cam.cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]) + 0.5, float(K[1, 2]) + 0.5
        self._scene.set_pose(self._scene.main_camera_node, opencv_to_gl_pose(T_cam_world))
        T_world_cam = rigid_inverse(T_cam_world)
        for node, pose_cam in self._lights:
            self._scene.set_pose(node, T_world_cam @ pose_cam)
        self._renderer.render(self._scene, flags=self._pr.RenderFlags.RGBA)


def rigid_inverse(T: np.ndarray) -> np.ndarray:
    """(4, 4) float64 inverse of a rigid transform [R | t]: [R^T | -R^T t]."""
    out = np.eye(4)
    out[:3, :3] = T[:3, :3].T
    out[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return out


def directional_program_cache(n_lights: int):
    """A pyrender ShaderProgramCache that compiles ``shaders/directional.frag`` (pyrender's shading for
    ``n_lights`` directional lights only, loop bound fixed) wherever pyrender asks for its mesh.frag; every other
    program (flat, segmentation, depth) is pyrender's own."""
    from pyrender.shader_program import ShaderProgramCache

    class DirectionalProgramCache(ShaderProgramCache):
        def get_program(self, vertex_shader, fragment_shader, geometry_shader=None, defines=None):
            if fragment_shader == "mesh.frag":
                fragment_shader = str(SHADER_DIR / "directional.frag")
                defines = {**(defines or {}), "N_DIRECTIONAL_LIGHTS": n_lights}
            return super().get_program(vertex_shader, fragment_shader, geometry_shader, defines)

    return DirectionalProgramCache()


def _skip_read(scene, flags):
    """Stands in for pyrender's ``Renderer._read_main_framebuffer`` (which reads and linearises the whole depth
    buffer and copies the whole colour buffer): ``read_box`` reads what is needed after the pass."""
    return None


def light_pose_cam(direction: np.ndarray) -> np.ndarray:
    """(4, 4) pose in the camera's OpenCV frame of a directional light travelling along ``direction`` (pyrender
    lights shine along their node's -z); the same construction as ``OffscreenRenderer._lights``."""
    z = -np.asarray(direction, float) / np.linalg.norm(direction)
    x = np.cross([0.0, 1.0, 0.3], z)
    x /= np.linalg.norm(x)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    return pose


def vertex_data(topo: RenderTopology, verts_m: np.ndarray, plain_rgba: np.ndarray | None,
                textured: bool) -> np.ndarray:
    """(R, 12) float32 [position, normal, uv, colour] (textured: colour 1, the texture gives the albedo) or
    (R, 10) [position, normal, colour = plain_rgba, linear] per render vertex: pyrender's interleaved layout."""
    idx = topo.vertex_index
    cols = [verts_m[idx], topo.normals(verts_m)[idx]]
    n = len(idx)
    if textured:
        cols += [topo.uv, np.ones((n, 4), np.float32)]
    else:
        cols.append(np.broadcast_to(plain_rgba, (n, 4)))
    return np.concatenate(cols, axis=1, dtype=np.float32)


def write_vertex_buffer(primitive, data: np.ndarray) -> None:
    """Rewrite an uploaded pyrender primitive's interleaved vertex buffer in place (same layout and count), or
    its arrays when it is not in a context yet. Needs the renderer's context current."""
    from OpenGL import GL as gl

    if primitive._vaid is None:
        primitive.positions, primitive.normals = data[:, :3], data[:, 3:6]
        return
    flat = np.ascontiguousarray(data, np.float32)
    gl.glBindBuffer(gl.GL_ARRAY_BUFFER, primitive._buffers[0])
    gl.glBufferSubData(gl.GL_ARRAY_BUFFER, 0, flat.nbytes, flat)
    gl.glBindBuffer(gl.GL_ARRAY_BUFFER, 0)


def upload_texture(texture, image: np.ndarray) -> None:
    """Replace the texels of an uploaded pyrender RGB texture of the same size (rows flipped as pyrender
    uploads them: GL's t = 0 is the image's bottom row) and rebuild its mipmaps. Context current."""
    from OpenGL import GL as gl

    h, w = image.shape[:2]
    gl.glBindTexture(gl.GL_TEXTURE_2D, texture._texid)
    gl.glPixelStorei(gl.GL_UNPACK_ALIGNMENT, 1)
    gl.glTexSubImage2D(gl.GL_TEXTURE_2D, 0, 0, 0, w, h, gl.GL_RGB, gl.GL_UNSIGNED_BYTE,
                       np.ascontiguousarray(image[::-1]))
    gl.glPixelStorei(gl.GL_UNPACK_ALIGNMENT, 4)
    gl.glGenerateMipmap(gl.GL_TEXTURE_2D)
    gl.glBindTexture(gl.GL_TEXTURE_2D, 0)


def read_box(renderer, box: tuple[int, int, int, int]) -> np.ndarray:
    """(y1 - y0, x1 - x0, 4) uint8 RGBA of a box (x0, y0, x1, y1; rows from the top) of a pyrender
    OffscreenRenderer's last forward pass: the box is resolved from the (multisample) draw buffer into the
    plain one and read from there."""
    from OpenGL import GL as gl

    inner = renderer._renderer
    x0, y0, x1, y1 = box
    h = inner._main_fb_dims[1]
    gy0, gy1 = h - y1, h - y0  # GL rows count from the bottom
    gl.glBindFramebuffer(gl.GL_READ_FRAMEBUFFER, inner._main_fb_ms)
    gl.glBindFramebuffer(gl.GL_DRAW_FRAMEBUFFER, inner._main_fb)
    gl.glBlitFramebuffer(x0, gy0, x1, gy1, x0, gy0, x1, gy1, gl.GL_COLOR_BUFFER_BIT, gl.GL_NEAREST)
    gl.glBindFramebuffer(gl.GL_READ_FRAMEBUFFER, inner._main_fb)
    out = np.empty((gy1 - gy0, x1 - x0, 4), np.uint8)
    gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 1)
    gl.glReadPixels(x0, gy0, x1 - x0, gy1 - gy0, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE, out)
    return out[::-1]


def composite_patch(panel: np.ndarray, patch: Patch, alpha: float = 1.0) -> None:
    """Lay a premultiplied patch over ``panel`` (H, W, 3) uint8 in place: over = rgb + panel (1 - a) (a: the
    render's coverage), then (1 - alpha) panel + alpha over (alpha: the overlay's opacity), both rounded to the
    nearest level; only pixels the render covered change."""
    h, w = patch.rgba.shape[:2]
    if h == 0 or w == 0:
        return
    region = panel[patch.y0:patch.y0 + h, patch.x0:patch.x0 + w]
    cover = patch.rgba[..., 3:]
    drawn = cover[..., 0] > 0
    if not drawn.any():
        return
    over = patch.rgba[..., :3]
    if not (cover[drawn] == 255).all():  # partial coverage (multisampled edges): premultiplied "over"
        c = cover.astype(np.uint16)
        under = (region.astype(np.uint16) * (255 - c) + 127) // 255
        over = np.minimum(over + under, 255).astype(np.uint8)
    if alpha < 1.0:
        over = cv2.addWeighted(region, 1.0 - alpha, np.ascontiguousarray(over), alpha, 0.0)
    np.copyto(region, over, where=drawn[..., None])
