"""The live view: composition of camera overlay, 3D orbit view and HUD (``compose``), the window (``window``,
pyglet) and the headless MP4/PNG sink (``sinks``). Reads ``ViewerInput`` (numpy only), never torch tensors.
"""

from app.viewer.compose import Composer, ViewSettings
from app.viewer.controls import ViewControls
from app.viewer.view import VIEW_MODES, HudStatus, ViewerError, ViewerInput

__all__ = ["VIEW_MODES", "Composer", "HudStatus", "ViewControls", "ViewSettings", "ViewerError", "ViewerInput"]
