"""Procedural appearance for synthetic hands: skin tones with albedo variation, creases, nails, and
cluttered backgrounds. Pure numpy; deterministic from the generator passed in.
"""

from __future__ import annotations

import numpy as np

# Linear-ish RGB skin albedos from light to deep (rounded from published skin reflectance swatches).
SKIN_TONES = np.array([
    [0.96, 0.80, 0.70], [0.92, 0.74, 0.62], [0.86, 0.66, 0.52], [0.78, 0.57, 0.43],
    [0.66, 0.46, 0.33], [0.52, 0.35, 0.25], [0.40, 0.27, 0.19], [0.30, 0.20, 0.14],
])


def sample_skin_tone(rng: np.random.Generator) -> np.ndarray:
    """(3,) float: a tone interpolated between neighbouring swatches, with a small hue jitter."""
    t = rng.uniform(0, len(SKIN_TONES) - 1)
    i = int(np.floor(t))
    j = min(i + 1, len(SKIN_TONES) - 1)
    tone = SKIN_TONES[i] * (1 - (t - i)) + SKIN_TONES[j] * (t - i)
    return np.clip(tone * rng.uniform(0.95, 1.05, 3), 0, 1)


def smooth_noise(points_m: np.ndarray, rng: np.random.Generator, wavelength_m: float = 0.03, n_waves: int = 12,
                 spread: tuple[float, float] = (0.5, 1.5)) -> np.ndarray:
    """(N,) zero-mean noise in about [-1, 1] from n_waves random plane waves over rest-pose positions (N, 3) m,
    wavelengths wavelength_m x U(spread)."""
    dirs = rng.normal(size=(n_waves, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    freq = 2 * np.pi / (wavelength_m * rng.uniform(*spread, n_waves))
    phase = rng.uniform(0, 2 * np.pi, n_waves)
    return np.sin(points_m @ (dirs * freq[:, None]).T + phase).sum(1) / np.sqrt(n_waves)


def skin_vertex_colours(rest_verts_m: np.ndarray, joints_m: np.ndarray, tip_ids: np.ndarray,
                        rng: np.random.Generator) -> np.ndarray:
    """(V, 3) float32 RGB in [0, 1] for a rest-pose hand (model frame: +y = back of the hand).

    Palm side lighter (less melanin), darker knuckle creases near each joint, pinkish nails on the back of the
    fingertips, and low-frequency blotches.
    """
    tone = sample_skin_tone(rng)
    v = rest_verts_m
    back = np.clip((v[:, 1] - joints_m[:, 1].mean()) / 0.01, -1, 1)[:, None]
    col = tone * (1.0 + 0.08 * (1 - back) / 2 * (1 - tone.mean()) * 2)
    col = col * (1.0 + 0.07 * smooth_noise(v, rng))[:, None]
    col = col * (1.0 + 0.05 * smooth_noise(v, rng, wavelength_m=0.012))[:, None]
    redness = np.array([0.04, -0.02, -0.02]) * smooth_noise(v, rng, wavelength_m=0.05)[:, None]
    col = col + redness * tone
    d_joint = np.min(np.linalg.norm(v[:, None] - joints_m[None, 1:], axis=2), axis=1)
    col = col * (1.0 - 0.10 * np.exp(-(d_joint / 0.006) ** 2))[:, None]
    d_tip = np.min(np.linalg.norm(v[:, None] - v[tip_ids][None], axis=2), axis=1)
    nail = (np.exp(-(d_tip / 0.009) ** 2) * (back[:, 0] > 0.3))[:, None]
    nail_col = np.clip(tone * 0.6 + np.array([0.38, 0.30, 0.30]), 0, 1)
    col = col * (1 - 0.8 * nail) + nail_col * 0.8 * nail
    return np.clip(col, 0, 1).astype(np.float32)


def random_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 clutter: a smooth colour gradient plus random soft rectangles and blobs."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    grey = rng.uniform(0.1, 0.85, (2, 1))
    c0, c1 = np.clip(grey + rng.normal(0, 0.12, (2, 3)), 0, 1)
    t = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) / max(width, height)
    img = c0 + (c1 - c0) * (t[..., None] - t.min()) / (np.ptp(t) + 1e-6)
    for _ in range(rng.integers(3, 9)):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        w, h = rng.uniform(0.05, 0.5) * width, rng.uniform(0.05, 0.5) * height
        mask = ((np.abs(xx - x0) < w / 2) & (np.abs(yy - y0) < h / 2)).astype(np.float32)
        colour = np.clip(rng.uniform(0.05, 0.95) + rng.normal(0, 0.15, 3), 0, 1)
        img = img * (1 - 0.8 * mask[..., None]) + 0.8 * mask[..., None] * colour
    img += rng.normal(0, 0.02, img.shape)
    return np.clip(img * 255, 0, 255).astype(np.uint8)
