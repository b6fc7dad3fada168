"""Contact sheet of a synthetic stereo set: per sample the left and right views side by side, the hand mask's
outline drawn in, keypoints green where visible and red where hidden."""

from __future__ import annotations

import cv2
import numpy as np

from models.synth.dataset import SyntheticSample

VISIBLE_RGB = (40, 220, 40)
HIDDEN_RGB = (230, 40, 40)
OUTLINE_RGB = (255, 230, 0)


def mask_outline(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: mask pixels with a 4-neighbour outside the mask (the image border counts as outside)."""
    m = np.pad(mask, 1, constant_values=False)
    inner = m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return mask & ~inner


def draw_view(rgb: np.ndarray, mask: np.ndarray, keypoints_px: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 copy of rgb with the mask outline (thickened to 2 px) and the 21 keypoints drawn."""
    img = rgb.copy()
    edge = cv2.dilate(mask_outline(mask).astype(np.uint8), np.ones((2, 2), np.uint8)) > 0
    img[edge] = OUTLINE_RGB
    radius = max(2, round(img.shape[1] / 200))
    for p, vis in zip(keypoints_px, visible, strict=True):
        centre = (int(round(float(p[0]))), int(round(float(p[1]))))
        cv2.circle(img, centre, radius, VISIBLE_RGB if vis else HIDDEN_RGB, -1, lineType=cv2.LINE_AA)
    return img


def sample_tile(sample: SyntheticSample, tile_w: int) -> np.ndarray:
    """(h, tile_w, 3) uint8: the drawn left and right views side by side, resized to tile_w wide."""
    views = [draw_view(sample.images[v], sample.masks[v], sample.keypoints_px[v], sample.visible[v])
             for v in range(2)]
    h = min(v.shape[0] for v in views)
    pair = np.concatenate([cv2.resize(v, (round(v.shape[1] * h / v.shape[0]), h)) for v in views], axis=1)
    tile_h = round(pair.shape[0] * tile_w / pair.shape[1])
    return cv2.resize(pair, (tile_w, tile_h), interpolation=cv2.INTER_AREA)


def contact_sheet(samples: list[SyntheticSample], cols: int = 2, tile_w: int = 960) -> np.ndarray:
    """(rows * h, cols * tile_w, 3) uint8 grid of sample tiles, row by row; empty cells black."""
    if not samples:
        raise ValueError("contact_sheet: no samples to draw; generate at least one sample")
    tiles = [sample_tile(s, tile_w) for s in samples]
    tile_h = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, tile_h - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % cols)
    rows = [np.concatenate(tiles[k:k + cols], axis=1) for k in range(0, len(tiles), cols)]
    return np.concatenate(rows, axis=0)
