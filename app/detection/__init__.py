"""Detection stage (METHOD.md steps 2-3): MediaPipe Hands on both views, handedness for a raw camera, stereo
association, triangulated metric keypoints, One-Euro filtering, 224x224 crops and 21-channel heatmaps.

Public API: ``DetectionConfig``, ``build_detector(cfg) -> StereoHandDetector`` whose ``detect(StereoFrame)``
returns ``HandObservation`` s. Pure building blocks: ``crop``, ``heatmaps``, ``mirror``, ``handedness``,
``association``, ``keypoints3d``, ``filtering``. MediaPipe is imported only when a detector is built.
"""

from app.detection.config import DetectionConfig
from app.detection.stereo import StereoHandDetector, build_detector

__all__ = ["DetectionConfig", "StereoHandDetector", "build_detector"]
