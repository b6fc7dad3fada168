"""Offscreen OpenGL rendering of hand scenes (pyrender), shared by the model check, the synthetic data
generator and the headless viewer.

The GL platform is chosen here and only here, when a renderer is first built (never at import time):
EGL (Mesa, no display needed) unless the user set PYOPENGL_PLATFORM already.
"""

from __future__ import annotations

import os


def use_offscreen_platform() -> str:
    """Select the PyOpenGL platform before pyrender/OpenGL are imported; returns the platform name."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    return os.environ["PYOPENGL_PLATFORM"]
