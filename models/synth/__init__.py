"""Synthetic hands: appearance (skin, backgrounds), forearm, viewpoints, the scene renderer, and the synthetic
stereo set (sampling.py draws, generate.py writes, dataset.py reads; docs/SYNTHETIC.md).

Import-light on purpose: no renderer, torch or MediaPipe imports here.
"""
