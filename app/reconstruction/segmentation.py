"""Segmentation target for the refinement without learned weights: a hand mask from image evidence, seeded by
the fitted mesh (issue 6 item 2; stands in for HandNet's segmentation decoder, METHOD.md step 4, until a
checkpoint exists; the decoder will sit behind the same SegmentationTarget interface).

Per view and frame, at crop resolution S (112 or 224):
1. zones from the fitted mesh's silhouette M (its hard rasterisation into the crop camera): sure hand = M
   eroded by erode_frac * S px, sure background = outside M dilated by ring_frac * S px, uncertain band between;
2. an online colour model: normalised histograms of hand and background colours over (coarse luma, Cr, Cb)
   bins (YCrCb: skin separates from most backgrounds in chroma; the coarse luma keeps dark and bright
   surfaces of equal chroma apart), filled from this frame's sure zones and blended with the previous frames'
   model with weight (1 - forget) (exponential forgetting: lighting and background change slowly);
3. per band pixel the posterior P(hand | colour, position) = prior h / (prior h + (1 - prior) b), h and b the
   colour likelihoods, prior a logistic in the signed distance to M's outline (0.5 on the outline);
4. the band thresholded at posterior 0.5, or, with grabcut_iters > 0, GrabCut (Rother et al. 2004; cv2.grabCut
   initialised with the mask: sure zones fixed, band pixels probable-hand where the posterior > 0.5). GrabCut
   is off by default: on rendered hands it gave no IoU gain at 10-30x the cost (docs/PERFORMANCE.md);
5. a guided filter (He et al. 2010, grey guide) softens the binary mask along image edges -> (S, S) float32.
A frame without any mesh pixel gives an all-zero mask. cv2 is used here only (image processing at the edge);
the refinement math stays free of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from app.render.silhouette import silhouette_mask


class SegmentationTarget(Protocol):
    """Hand mask of one view's crop. image_crop_rgb: (S, S, 3) uint8 RGB; mesh_mask: (S, S) bool, the fitted
    mesh's silhouette in the same crop -> (S, S) float32 in [0, 1], 1 = hand."""

    def __call__(self, image_crop_rgb: np.ndarray, mesh_mask: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ColourSegmentationConfig:
    """Settings of the mesh-seeded colour segmentation (steps in the module docstring).

    erode_frac, ring_frac: sure-hand erosion and sure-background dilation radii as fractions of the crop side.
    luma_bins, chroma_bins: histogram bins over Y and over each of Cr, Cb (powers of two, <= 256).
    prior_count: pseudo-count added to every bin (keeps unseen colours at a finite likelihood).
    forget: weight of the newest frame in the colour model, (0, 1]; 1 = no memory.
    prior_scale_frac: softness of the spatial prior, fraction of the crop side (logistic scale in px / S).
    grabcut_iters: GrabCut iterations; 0 = the thresholded posterior instead.
    guide_radius_px, guide_eps: guided filter window radius (px) and regulariser (grey values in [0, 1]);
    radius 0 returns the binary mask as float.
    """

    erode_frac: float = 0.06
    ring_frac: float = 0.08
    luma_bins: int = 4
    chroma_bins: int = 32
    prior_count: float = 0.5
    forget: float = 0.3
    prior_scale_frac: float = 0.01
    grabcut_iters: int = 0
    guide_radius_px: int = 1
    guide_eps: float = 1e-3

    def __post_init__(self):
        for name in ("luma_bins", "chroma_bins"):
            n = getattr(self, name)
            if not (1 <= n <= 256 and n & (n - 1) == 0):
                raise ValueError(f"ColourSegmentationConfig.{name} must be a power of two in [1, 256], got {n}")
        if not (0 <= self.erode_frac < self.ring_frac < 0.5):
            raise ValueError("ColourSegmentationConfig: need 0 <= erode_frac < ring_frac < 0.5 (fractions of S)")
        if not 0 < self.forget <= 1 or self.prior_count <= 0 or self.prior_scale_frac <= 0:
            raise ValueError("ColourSegmentationConfig: need forget in (0, 1], prior_count > 0, "
                             "prior_scale_frac > 0")
        if self.grabcut_iters < 0 or self.guide_radius_px < 0 or self.guide_eps <= 0:
            raise ValueError("ColourSegmentationConfig: grabcut_iters, guide_radius_px >= 0, guide_eps > 0")


@dataclass(frozen=True)
class SeedZones:
    """Step 1: sure_hand, sure_background, band: (S, S) bool, disjoint, covering the crop; signed_dist_px:
    (S, S) float32 distance to the mesh outline in px, negative inside the mesh."""

    sure_hand: np.ndarray
    sure_background: np.ndarray
    band: np.ndarray
    signed_dist_px: np.ndarray


def _disk(radius_px: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_px + 1, 2 * radius_px + 1))


def seed_zones(mesh_mask: np.ndarray, erode_px: int, ring_px: int) -> SeedZones:
    """Step 1 from mesh_mask (S, S) bool: erosion / dilation with disks of the given radii (px)."""
    m = mesh_mask.astype(np.uint8)
    sure_hand = cv2.erode(m, _disk(erode_px)).astype(bool) if erode_px > 0 else mesh_mask.copy()
    sure_bg = ~cv2.dilate(m, _disk(ring_px)).astype(bool)
    inside = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, 3)
    return SeedZones(sure_hand, sure_bg, ~(sure_hand | sure_bg), (outside - inside).astype(np.float32))


class ColourModel:
    """Step 2: hand and background colour histograms over (luma, Cr, Cb) bins with exponential forgetting."""

    def __init__(self, cfg: ColourSegmentationConfig):
        self.cfg = cfg
        self.n_bins = cfg.luma_bins * cfg.chroma_bins**2
        self.hand: np.ndarray | None = None  # (n_bins,) float64, sums to 1
        self.background: np.ndarray | None = None

    def bin_index(self, image_rgb: np.ndarray) -> np.ndarray:
        """(S, S, 3) uint8 RGB -> (S, S) int64 bin of each pixel."""
        ycc = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2YCrCb).astype(np.int64)
        y_shift = 8 - int(np.log2(self.cfg.luma_bins))
        c_shift = 8 - int(np.log2(self.cfg.chroma_bins))
        n_c = self.cfg.chroma_bins
        return ((ycc[..., 0] >> y_shift) * n_c + (ycc[..., 1] >> c_shift)) * n_c + (ycc[..., 2] >> c_shift)

    def update(self, bins: np.ndarray, hand: np.ndarray, background: np.ndarray) -> None:
        """Blend in this frame's normalised histograms of the pixels in the hand / background masks."""
        self.hand = self._blend(self.hand, bins[hand])
        self.background = self._blend(self.background, bins[background])

    def _blend(self, old: np.ndarray | None, samples: np.ndarray) -> np.ndarray:
        new = np.bincount(samples, minlength=self.n_bins).astype(np.float64) + self.cfg.prior_count
        new /= new.sum()
        return new if old is None else (1.0 - self.cfg.forget) * old + self.cfg.forget * new

    def likelihood_ratio(self, bins: np.ndarray) -> np.ndarray:
        """h / b per pixel, (S, S) float64 (call update first)."""
        return self.hand[bins] / self.background[bins]


def posterior(ratio: np.ndarray, signed_dist_px: np.ndarray, scale_px: float) -> np.ndarray:
    """Step 3: P(hand) = prior h / (prior h + (1 - prior) b) with prior = 1 / (1 + exp(d / scale)), written as
    a logistic of log(h / b) - d / scale. ratio, signed_dist_px: (S, S) -> (S, S) float32 in (0, 1)."""
    logit = np.log(ratio) - signed_dist_px / scale_px
    return (0.5 * (1.0 + np.tanh(0.5 * logit))).astype(np.float32)


def grabcut_mask(image_rgb: np.ndarray, zones: SeedZones, p_hand: np.ndarray, iters: int) -> np.ndarray:
    """Step 4: GrabCut initialised from the zones and the posterior; (S, S) bool. Falls back to the thresholded
    posterior when GrabCut cannot run (no sure or probable pixels of one class)."""
    init = np.where(p_hand > 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    init[zones.sure_hand] = cv2.GC_FGD
    init[zones.sure_background] = cv2.GC_BGD
    is_fg = (init == cv2.GC_FGD) | (init == cv2.GC_PR_FGD)
    if iters == 0 or is_fg.all() or not is_fg.any():
        return is_fg
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    cv2.grabCut(bgr, init, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    return (init == cv2.GC_FGD) | (init == cv2.GC_PR_FGD)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius_px: int, eps: float) -> np.ndarray:
    """He et al. 2010, grey guide: per window a = cov(I, p) / (var(I) + eps), b = mean(p) - a mean(I), output
    mean(a) I + mean(b). guide, src: (S, S) float32 -> (S, S) float32."""
    size = (2 * radius_px + 1, 2 * radius_px + 1)

    def box(x):
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(src)
    var_i = box(guide * guide) - mean_i * mean_i
    a = (box(guide * src) - mean_i * mean_p) / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def check_segmentation_inputs(image_crop_rgb: np.ndarray, mesh_mask: np.ndarray) -> None:
    """ValueError naming the problem unless image (S, S, 3) uint8 and mask (S, S) bool agree."""
    if not (isinstance(image_crop_rgb, np.ndarray) and image_crop_rgb.dtype == np.uint8
            and image_crop_rgb.ndim == 3 and image_crop_rgb.shape[2] == 3):
        raise ValueError(f"image_crop_rgb: expected an (S, S, 3) uint8 RGB crop, got "
                         f"{getattr(image_crop_rgb, 'shape', type(image_crop_rgb))} "
                         f"{getattr(image_crop_rgb, 'dtype', '')}; cut it with app/detection/crop.py cut_crop")
    if not (isinstance(mesh_mask, np.ndarray) and mesh_mask.dtype == bool):
        raise ValueError(f"mesh_mask: expected an (S, S) bool array, got {getattr(mesh_mask, 'dtype', mesh_mask)};"
                         " make it with mesh_silhouette_mask")
    if image_crop_rgb.shape[:2] != mesh_mask.shape or mesh_mask.shape[0] != mesh_mask.shape[1]:
        raise ValueError(f"image_crop_rgb {image_crop_rgb.shape[:2]} and mesh_mask {mesh_mask.shape} must be the "
                         "same square (S, S) crop")


class ColourSegmenter:
    """The weightless SegmentationTarget (module docstring). Keeps a colour model across frames of one hand
    and view: use one instance per (hand, view) and call reset() when the track is lost."""

    def __init__(self, cfg: ColourSegmentationConfig):
        self.cfg = cfg
        self.colours = ColourModel(cfg)

    def reset(self) -> None:
        self.colours = ColourModel(self.cfg)

    def __call__(self, image_crop_rgb: np.ndarray, mesh_mask: np.ndarray) -> np.ndarray:
        check_segmentation_inputs(image_crop_rgb, mesh_mask)
        size = mesh_mask.shape[0]
        if not mesh_mask.any():
            return np.zeros(mesh_mask.shape, np.float32)
        c = self.cfg
        zones = seed_zones(mesh_mask, round(c.erode_frac * size), max(1, round(c.ring_frac * size)))
        bins = self.colours.bin_index(image_crop_rgb)
        hand_seed = zones.sure_hand if zones.sure_hand.any() else mesh_mask
        self.colours.update(bins, hand_seed, zones.sure_background)
        p_hand = posterior(self.colours.likelihood_ratio(bins), zones.signed_dist_px, c.prior_scale_frac * size)
        hard = grabcut_mask(image_crop_rgb, zones, p_hand, c.grabcut_iters).astype(np.float32)
        if c.guide_radius_px == 0:
            return hard
        grey = cv2.cvtColor(image_crop_rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        return np.clip(guided_filter(grey, hard, c.guide_radius_px, c.guide_eps), 0.0, 1.0)


def build_segmentation_target(cfg: ColourSegmentationConfig) -> SegmentationTarget:
    """Factory: the weightless colour segmenter (the learned decoder will be chosen here once it exists)."""
    return ColourSegmenter(cfg)


def mesh_silhouette_mask(verts_m: np.ndarray, faces: np.ndarray, K: np.ndarray, T_cam_left: np.ndarray,
                         size_px: int) -> np.ndarray:
    """The seed for SegmentationTarget: the mesh's hard silhouette in a crop camera.

    verts_m: (V, 3) float, metres, left-camera frame; faces: (F, 3) int; K: (3, 3) crop intrinsics, pixels;
    T_cam_left: (4, 4) metres, left camera -> this view. Returns (size_px, size_px) bool.
    """
    R, t = np.asarray(T_cam_left, np.float64)[:3, :3], np.asarray(T_cam_left, np.float64)[:3, 3]
    verts_cam = np.asarray(verts_m, np.float64) @ R.T + t
    return silhouette_mask(verts_cam, faces, K, (size_px, size_px))


def cut_at_wrist(mask: np.ndarray, keypoints_px: np.ndarray, seed: np.ndarray | None = None,
                 margin: float = 0.3) -> np.ndarray:
    """The mask with the forearm side removed. The cut is a line perpendicular to the wrist -> middle-MCP
    direction: where the seed (the fitted mesh's silhouette, which ends at the model's wrist) ends on the arm
    side, or without a seed ``margin`` x that bone's length beyond the wrist keypoint.

    Why: skin-coloured forearm pixels join the hand in any colour segmentation, and the hand model ends at the
    wrist, so the silhouette loss would stretch the palm down the arm. mask, seed: (S, S); keypoints_px: (21, 2)
    in the mask's pixels, MediaPipe order. Returns (S, S) float32."""
    wrist, mcp = np.asarray(keypoints_px[0], np.float64), np.asarray(keypoints_px[9], np.float64)
    axis = mcp - wrist
    length = float(np.linalg.norm(axis))
    if not np.isfinite(length) or length < 1e-6:
        return np.asarray(mask, np.float32)
    axis /= length
    ys, xs = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
    along = (xs - wrist[0]) * axis[0] + (ys - wrist[1]) * axis[1]
    limit = -margin * length
    if seed is not None and np.asarray(seed).any():
        limit = float(along[np.asarray(seed, bool)].min()) - 1.0
    return np.where(along >= limit, np.asarray(mask, np.float32), 0.0).astype(np.float32)
