"""FitConfig: the one frozen config of the model-fit initialiser (see ``app.reconstruction.fit``)."""

from __future__ import annotations

from dataclasses import dataclass

from app.reconstruction.fit_losses import ROBUST_KINDS

_POSITIVE = ("tolerance", "sigma_2d_px", "sigma_3d_m", "sigma_world_m", "robust_scale", "gnc_start",
             "pose_min_std_rad", "pca_box_sigmas", "pca_box_softness", "limit_sigma_rad", "shape_sigma",
             "temporal_pose_rad", "temporal_rot_rad", "temporal_transl_m", "temporal_shape", "residual_ref_px",
             "restart_residual_px")
_NON_NEGATIVE = ("weight_2d", "weight_3d", "weight_world", "weight_pose_prior", "weight_temporal")


@dataclass(frozen=True)
class FitConfig:
    """Model fit to keypoints: Levenberg-Marquardt on (global rotation, translation, whitened PCA pose,
    shape) with robust data terms and priors. Sigmas are the expected errors; residuals are divided by them.

    iterations_cold / iterations_warm: most LM iterations without / with the previous frame's state.
    tolerance: stop once an accepted step lowers the cost by less than this fraction.
    sigma_2d_px: 2D keypoint error (px); sigma_3d_m: triangulated keypoint error (m), used as is in the first
    stage of a cold start and afterwards raised to the stereo depth error of each keypoint (``depth_sigma_m``);
    both grown per keypoint by its triangulation residual / residual_ref_px when that exceeds 1;
    sigma_world_m: MediaPipe world-landmark error (m, mono fallback).
    weight_2d / weight_3d / weight_world: multipliers of those terms (0 switches one off).
    robust_loss: 'geman-mcclure', 'huber' or 'none'; robust_scale: in sigmas; gnc_start, gnc_steps: a cold
    start runs gnc_steps stages with robust_scale x gnc_start^(1 .. 0) (graduated non-convexity; all but the
    last with the tight 3D sigma).
    weight_pose_prior: Gaussian prior on the whitened PCA coefficients; n_pose_components: PCA directions
    fitted (45 = the full pose); pose_min_std_rad: floor on each direction's standard deviation.
    pca_box_sigmas: soft bound |z| <= this on every PCA coefficient (works without joint limits), crossing it
    by pca_box_softness costs as much as one sigma of data;
    limit_sigma_rad: softness of the joint limits (models that ship them).
    shape_sigma: prior standard deviation of each shape coefficient.
    temporal_*: how far pose (rad), global rotation (rad), translation (m) and shape may move from the previous
    frame (one sigma); weight_temporal multiplies the whole temporal prior.
    restart_residual_px: a warm fit whose mean 2D error ends above this is redone from a cold start.
    device: where the fitter's torch hand models live (``HandFitter.hand_models``, for refinement); the fit
    and the output mesh are numpy on the CPU whatever the device.
    """

    iterations_cold: int = 40
    iterations_warm: int = 3
    tolerance: float = 1e-3
    sigma_2d_px: float = 1.5
    sigma_3d_m: float = 0.01
    sigma_world_m: float = 0.015
    weight_2d: float = 1.0
    weight_3d: float = 1.0
    weight_world: float = 1.0
    robust_loss: str = "geman-mcclure"
    robust_scale: float = 3.0
    gnc_start: float = 3.0
    gnc_steps: int = 2
    weight_pose_prior: float = 1.0
    n_pose_components: int = 45
    pose_min_std_rad: float = 0.05
    pca_box_sigmas: float = 3.0
    pca_box_softness: float = 0.3
    limit_sigma_rad: float = 0.03
    shape_sigma: float = 1.0
    temporal_pose_rad: float = 0.3
    temporal_rot_rad: float = 0.3
    temporal_transl_m: float = 0.03
    temporal_shape: float = 0.05
    weight_temporal: float = 1.0
    residual_ref_px: float = 2.0
    restart_residual_px: float = 10.0
    device: str = "cpu"

    def __post_init__(self):
        for name in _POSITIVE:
            if not getattr(self, name) > 0:
                raise ValueError(f"FitConfig.{name} must be > 0, got {getattr(self, name)!r}")
        for name in _NON_NEGATIVE:
            if not getattr(self, name) >= 0:
                raise ValueError(f"FitConfig.{name} must be >= 0 (0 switches the term off), got "
                                 f"{getattr(self, name)!r}")
        if self.gnc_steps < 2:
            raise ValueError(f"FitConfig.gnc_steps must be >= 2 (a wide stage, then the final one), got "
                             f"{self.gnc_steps}")
        if self.iterations_cold < 1 or self.iterations_warm < 1:
            raise ValueError(f"FitConfig.iterations_cold / iterations_warm must be >= 1, got "
                             f"{self.iterations_cold} / {self.iterations_warm}")
        if self.robust_loss not in ROBUST_KINDS:
            raise ValueError(f"FitConfig.robust_loss {self.robust_loss!r} is unknown; use one of {ROBUST_KINDS}")
        if not 1 <= self.n_pose_components <= 45:
            raise ValueError(f"FitConfig.n_pose_components must be in 1..45, got {self.n_pose_components}")

