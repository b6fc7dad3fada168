"""The numba silhouette against the z-buffered hard rasterizer's coverage (the reference: same pixel rule)."""

import numpy as np
import pytest
import torch

from app.render import HardRasterConfig, hard_rasterize
from app.render.silhouette import silhouette_mask


def _reference(verts, faces, K, hw):
    frags = hard_rasterize(torch.from_numpy(verts.astype(np.float32))[None], torch.from_numpy(faces),
                           torch.from_numpy(K.astype(np.float32)), HardRasterConfig(image_size=hw))
    return (frags.face_id[0] >= 0).numpy()


def _sphere(n_lat=12, n_lon=24, r=0.05, z=0.4):
    lat = np.linspace(0.05, np.pi - 0.05, n_lat)
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    pts = np.array([[r * np.sin(a) * np.cos(b), r * np.sin(a) * np.sin(b), z + r * np.cos(a)]
                    for a in lat for b in lon])
    faces = []
    for i in range(n_lat - 1):
        for j in range(n_lon):
            a, b = i * n_lon + j, i * n_lon + (j + 1) % n_lon
            faces += [(a, b, a + n_lon), (b, b + n_lon, a + n_lon)]
    return pts, np.array(faces, np.int64)


@pytest.mark.parametrize("hw", [(112, 112), (60, 90)])
def test_silhouette_matches_the_hard_rasterizer(hw):
    verts, faces = _sphere()
    K = np.array([[150.0, 0, hw[1] / 2 - 0.3], [0, 150.0, hw[0] / 2 + 0.2], [0, 0, 1]])
    mask = silhouette_mask(verts, faces, K, hw)
    ref = _reference(verts, faces, K, hw)
    assert mask.sum() > 100
    # float64 here vs float32 there: only centres on a boundary may differ
    assert (mask != ref).sum() <= 0.01 * ref.sum()


def test_faces_behind_the_camera_are_dropped_and_empty_meshes_give_nothing():
    verts = np.array([[-0.1, -0.1, 0.5], [0.1, -0.1, 0.5], [0.0, 0.1, -0.2]])
    K = np.array([[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]])
    assert not silhouette_mask(verts, np.array([[0, 1, 2]]), K, (100, 100)).any()
    assert not silhouette_mask(verts, np.zeros((0, 3), np.int64), K, (100, 100)).any()


def test_both_windings_cover_the_same_pixels():
    verts = np.array([[-0.05, -0.05, 0.5], [0.05, -0.04, 0.5], [0.0, 0.06, 0.5]])
    K = np.array([[400.0, 0, 50], [0, 400.0, 50], [0, 0, 1]])
    a = silhouette_mask(verts, np.array([[0, 1, 2]]), K, (100, 100))
    b = silhouette_mask(verts, np.array([[0, 2, 1]]), K, (100, 100))
    assert a.sum() > 500 and (a == b).all()
