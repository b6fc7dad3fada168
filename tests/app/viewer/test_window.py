import os
import sys

import pytest

from app.viewer.controls import ViewControls
from app.viewer.window import display_problem, open_window


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland detection is Linux only")
def test_no_display_is_detected_with_a_reason():
    assert display_problem({}) == "no display found (DISPLAY and WAYLAND_DISPLAY are not set)"
    assert display_problem({"DISPLAY": ":0"}) is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland detection is Linux only")
def test_open_window_without_display_says_why(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    window, why = open_window((640, 368), ViewControls())
    assert window is None and "no display" in why


def test_a_display_that_refuses_gives_a_reason_not_a_traceback(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":4711")  # no X server answers there
    window, why = open_window((640, 368), ViewControls())
    assert window is None and "cannot open a window" in why


@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display (DISPLAY is not set)")
def test_window_opens_and_keys_reach_the_controls():
    controls = ViewControls()
    window, why = open_window((320, 184), controls)
    assert window is not None, why
    import pyglet

    window.on_key_press(pyglet.window.key.V, 0)
    assert controls.settings().mode == "camera"
    window.close()
