"""Sparse soft silhouette renderer against a slow dense (pixels x faces) reference."""

from __future__ import annotations

import torch

from app.render import SoftRasterConfig

torch.set_num_threads(1)


def dense_reference(verts_cam_m, faces, K, cfg: SoftRasterConfig, truncate: bool = True):
    """Straightforward SoftRas silhouette over every pixel x face pair (slow; small images only).

    verts_cam_m: (B, V, 3); faces: (F, 3) int64; K: (B, 3, 3). Returns (B, H, W).
    truncate: leave out faces farther than the blur radius outside a pixel, as the renderer does.
    """
    height, width = cfg.image_size
    z = verts_cam_m[..., 2]
    in_front = z > cfg.znear_m
    z = torch.where(in_front, z, torch.ones_like(z))
    xn, yn = verts_cam_m[..., 0] / z, verts_cam_m[..., 1] / z
    u = K[:, 0, 0, None] * xn + K[:, 0, 1, None] * yn + K[:, 0, 2, None]
    v = K[:, 1, 1, None] * yn + K[:, 1, 2, None]
    uv = torch.stack((u, v), -1)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    p = torch.stack((xs, ys), -1).reshape(-1, 2).to(verts_cam_m.dtype)
    a = uv[:, faces]  # (B, F, 3, 2)
    e = torch.roll(a, -1, dims=2) - a
    pa = p[None, :, None, None, :] - a[:, None]  # (B, HW, F, 3, 2)
    ee = e[:, None]
    t = ((pa * ee).sum(-1) / (ee * ee).sum(-1)).clamp(0.0, 1.0)
    d2 = ((pa - t[..., None] * ee) ** 2).sum(-1).amin(-1)  # (B, HW, F)
    cross = ee[..., 0] * pa[..., 1] - ee[..., 1] * pa[..., 0]
    inside = (cross > 0).all(-1) | (cross < 0).all(-1)
    D = torch.sigmoid(torch.where(inside, d2, -d2) / cfg.sigma_px2)
    if truncate:
        D = torch.where(inside | (d2 < cfg.blur_radius2_px2), D, torch.zeros_like(D))
    D = D * in_front[:, faces].all(-1)[:, None, :]
    return (1.0 - torch.prod(1.0 - D, dim=-1)).reshape(-1, height, width)
