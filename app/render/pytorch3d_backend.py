"""Optional PyTorch3D backend of the soft silhouette renderer (same call signature as SoftSilhouetteRenderer).

Only imported by build_soft_silhouette_renderer when pytorch3d is importable; not exercised by CI (pytorch3d
is not installed there). Differences from the torch backend: PyTorch3D keeps at most
pytorch3d_faces_per_pixel faces per pixel (nearest in z), and it works in NDC units where one pixel is
2 / min(H, W); sigma and the blur radius are converted from pixels accordingly.
"""

from __future__ import annotations

import torch

from app.render.soft_raster import SoftRasterConfig, check_mesh_inputs


class Pytorch3dSilhouetteRenderer:
    """(B, V, 3) verts (metres, OpenCV camera frame), (F, 3) faces, (B, 3, 3) K -> (B, H, W) in [0, 1]."""

    def __init__(self, cfg: SoftRasterConfig):
        from pytorch3d.renderer import BlendParams, RasterizationSettings

        self.cfg = cfg
        height, width = cfg.image_size
        px_to_ndc2 = (2.0 / min(height, width)) ** 2
        self.blend = BlendParams(sigma=cfg.sigma_px2 * px_to_ndc2, gamma=1e-4)
        # PyTorch3D compares the squared distance with blur_radius (NDC units).
        self.settings = RasterizationSettings(
            image_size=(height, width),
            blur_radius=cfg.blur_radius2_px2 * px_to_ndc2,
            faces_per_pixel=cfg.pytorch3d_faces_per_pixel,
            cull_backfaces=False,
            z_clip_value=cfg.znear_m,
        )

    def __call__(self, verts_cam_m: torch.Tensor, faces: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        from pytorch3d.renderer import MeshRasterizer, SoftSilhouetteShader
        from pytorch3d.structures import Meshes
        from pytorch3d.utils import cameras_from_opencv_projection

        faces, K = check_mesh_inputs(verts_cam_m, faces, K)
        n_views = verts_cam_m.shape[0]
        eye = torch.eye(3, dtype=K.dtype, device=K.device).expand(n_views, 3, 3)
        size = torch.tensor([self.cfg.image_size], device=K.device).expand(n_views, 2)
        # The one OpenCV -> PyTorch3D conversion (x left, y up); vertices are already in the camera frame.
        cameras = cameras_from_opencv_projection(eye, K.new_zeros(n_views, 3), K, size)
        meshes = Meshes(verts=list(verts_cam_m), faces=[faces] * n_views)
        fragments = MeshRasterizer(cameras=cameras, raster_settings=self.settings)(meshes)
        images = SoftSilhouetteShader(blend_params=self.blend)(fragments, meshes)
        return images[..., 3]
