"""Reconstruction: the hand model fitted to each HandObservation (``fit``), then refined against silhouettes.

Model-fit initialiser API (weights-free): ``FitConfig``, ``build_fitter(cfg, hand_model_cfg) -> HandFitter``,
``HandFitter.fit(obs, calib, prev) -> HandMesh`` and the pure ``fit_keypoints(...) -> (HandState, FitInfo)``.
"""

from app.reconstruction.fit import FitConfig, FitInfo, HandFitter, build_fit_model, build_fitter, fit_keypoints

__all__ = ["FitConfig", "FitInfo", "HandFitter", "build_fit_model", "build_fitter", "fit_keypoints"]
