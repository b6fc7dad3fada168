"""Stereo calibration: calibration file IO, the ZED factory .conf parser, rig presets, the calibration CLI."""
