"""Configuration of the detection stage (MediaPipe per view, association, triangulation, crops, filtering).

One frozen dataclass; ``app/config.py`` can nest it in ``AppConfig`` as ``detection`` so YAML / CLI overrides
(``detection.model_complexity=0``) reach it through the project's single merge.
"""

from __future__ import annotations

from dataclasses import dataclass

# The two heatmap encodings of the thesis (section 4.6.1): sigma 5 / kernel 49 and sigma 15 / kernel 127.
HEATMAP_PRESETS = {49: 5.0, 127: 15.0}


@dataclass(frozen=True)
class DetectionConfig:
    """Detection stage settings.

    MediaPipe (legacy ``solutions.hands``): model_complexity 0 (lite) or 1 (full); static_image_mode False =
    video/tracking mode (the landmark ROI of the previous frame is reused, palm detection only on loss).
    input_mirrored: True only when the frames are already mirrored (selfie preview); a raw camera is False.
    parallel_views: run the two views on two threads (MediaPipe's graph releases the GIL).
    palm_search_every / palm_search_hold: in video mode with max_num_hands >= 2, once fewer hands than the
    maximum were seen for palm_search_hold frames, track them without MediaPipe's per-frame palm search and look
    for the missing hand every palm_search_every frames (app/detection/palm_search.py); 0 = MediaPipe's own
    behaviour (a palm search on every frame while short of hands, about twice the CPU).
    network_inputs: cut crops and render heatmaps (False skips them, e.g. for keypoint-only evaluation).
    Crops: crop_size px square, tight keypoint box scaled by crop_scale about its centre.
    Heatmaps: heatmap_sigma px Gaussian on a heatmap_kernel x heatmap_kernel stencil (odd).
    Association: a pair whose median reprojection residual exceeds assoc_max_residual_px is not the same hand;
    differing handedness labels add assoc_handedness_penalty_px; a triangulated palm (wrist to middle MCP)
    outside palm_length_range_m is implausible.
    Triangulation: a keypoint whose residual exceeds max(outlier_min_px, outlier_factor x median residual)
    is dropped (NaN).
    Handedness: a hand seen by both views takes the chirality of its triangulated keypoints when its fingers sit
    on average at least min_chirality x the palm length off the palm plane (app/detection/handedness.py),
    MediaPipe's label otherwise.
    Filtering: One-Euro filter (Casiez et al. 2012) on 2D keypoints per view and hand; filter_min_cutoff_hz,
    filter_beta (per px/s), filter_d_cutoff_hz; filter_enabled False passes raw keypoints through. Defaults
    tuned on the animated synthetic source (benchmarks/tune_one_euro.py; docs/PERFORMANCE.md, "Keypoint
    filtering"): MediaPipe in video mode, unfiltered, against the true keypoints of 4 sequences at 30 fps; the
    least high-frequency jitter whose lag stays within 15 ms of the raw keypoints'. On 3 held-out sequences:
    jitter 0.83 px raw, 0.49 px with the earlier defaults (1 Hz, beta 0.1; 11.5 ms lag), 0.45 px with these
    (14.6 ms lag). At rest a 3 Hz cutoff smooths less than 1 Hz did (white noise x0.49 instead of x0.31 at
    30 fps): the source's hand is almost always moving.
    """

    model_complexity: int = 1
    max_num_hands: int = 2
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    static_image_mode: bool = False
    input_mirrored: bool = False
    parallel_views: bool = True
    palm_search_every: int = 10
    palm_search_hold: int = 15
    network_inputs: bool = True
    crop_size: int = 224
    crop_scale: float = 2.0
    heatmap_sigma: float = 5.0
    heatmap_kernel: int = 49
    assoc_max_residual_px: float = 12.0
    assoc_handedness_penalty_px: float = 6.0
    palm_length_min_m: float = 0.04
    palm_length_max_m: float = 0.16
    outlier_min_px: float = 4.0
    outlier_factor: float = 4.0
    min_chirality: float = 0.15
    filter_enabled: bool = True
    filter_min_cutoff_hz: float = 3.0
    filter_beta: float = 0.05
    filter_d_cutoff_hz: float = 1.0
    filter_reset_after_s: float = 0.5

    def __post_init__(self):
        if self.model_complexity not in (0, 1):
            raise ValueError(f"detection.model_complexity: expected 0 or 1, got {self.model_complexity}")
        if not 1 <= self.max_num_hands <= 4:
            raise ValueError(f"detection.max_num_hands: expected 1..4, got {self.max_num_hands}")
        if self.palm_search_every < 0 or self.palm_search_hold < 1:
            raise ValueError("detection.palm_search_every must be >= 0 (0 = off) and palm_search_hold >= 1")
        if self.heatmap_kernel % 2 != 1 or self.heatmap_kernel < 3:
            raise ValueError(f"detection.heatmap_kernel: expected an odd size >= 3 (49 or 127), "
                             f"got {self.heatmap_kernel}")
        if self.heatmap_sigma <= 0 or self.crop_scale <= 0 or self.crop_size < 8:
            raise ValueError("detection.heatmap_sigma and crop_scale must be > 0 and crop_size >= 8")
