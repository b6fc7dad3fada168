"""A pyrender OffscreenRenderer made cheap on Mesa's llvmpipe for drawing a few directionally lit meshes over a
clear, for the callers that read back only a box of the frame (``kept_scene.read_box``).

Changes, to this instance only (pyrender's class and other renderers are untouched):

- fragment shader: ``shaders/directional.frag`` (pyrender's metallic-roughness BRDF for ``n_lights`` directional
  lights, fixed loop bound; pyrender's mesh.frag loops over uniform-length point, spot and directional light
  arrays, which llvmpipe ran 3-4x slower); pyrender's programs for flat, segmentation and depth passes stay;
- no read-back after a pass: pyrender's ``_read_main_framebuffer`` (whole colour buffer copied, whole depth
  buffer read and linearised) returns None, so ``OffscreenRenderer.render`` returns None; read with
  ``kept_scene.read_box``;
- the view matrix is the camera pose's rigid inverse in closed form instead of ``np.linalg.inv``, which goes
  through OpenBLAS and wakes its worker threads for a 4x4 solve (they then spin: ~1 ms of CPU per pass on the
  busy 2-core machine, docs/PERFORMANCE.md "Synthetic source"). Camera nodes must have rigid poses.

Threads: as any pyrender renderer, make, use and delete it on one thread.
"""

from __future__ import annotations

import functools

import numpy as np

from app.offscreen import use_offscreen_platform
from app.offscreen.kept_scene import directional_program_cache, rigid_inverse


def lean_offscreen_renderer(width: int, height: int, n_lights: int):
    """A pyrender OffscreenRenderer of width x height pixels with the changes above, for scenes lit by
    ``n_lights`` (1-4) directional lights and nothing else. RuntimeError on a GL platform without framebuffer
    objects (OSMesa), where pyrender reads the window buffer instead."""
    use_offscreen_platform()
    import pyrender

    renderer = pyrender.OffscreenRenderer(width, height)
    if not renderer._platform.supports_framebuffers():
        renderer.delete()
        raise RuntimeError("the lean offscreen renderer needs framebuffer objects (EGL), not this GL platform")
    inner = renderer._renderer
    inner._read_main_framebuffer = _no_read_back
    inner._program_cache = directional_program_cache(n_lights)
    inner._get_camera_matrices = functools.partial(rigid_camera_matrices, inner)
    return renderer


def _no_read_back(scene, flags) -> None:
    """Stands in for pyrender's ``Renderer._read_main_framebuffer``: nothing is read (``read_box`` reads the part
    needed after the pass)."""
    return None


def rigid_camera_matrices(renderer, scene) -> tuple[np.ndarray, np.ndarray]:
    """Stands in for pyrender's ``Renderer._get_camera_matrices(scene)``: (V, P) (4, 4) float64, V = the main
    camera node's rigid pose inverted in closed form ([R^T | -R^T t]), P = its camera's projection for the
    renderer's viewport."""
    node = scene.main_camera_node
    P = node.camera.get_projection_matrix(width=renderer.viewport_width, height=renderer.viewport_height)
    return rigid_inverse(scene.get_pose(node)), P
