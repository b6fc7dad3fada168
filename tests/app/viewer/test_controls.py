import threading

import pytest

from app.viewer.controls import ViewControls
from app.viewer.layout import Orbit


def test_keys_call_their_actions():
    calls = []
    c = ViewControls(on_record=lambda: calls.append("R"), on_texture_reset=lambda: calls.append("T"))
    assert c.press("r") == "record toggle" and c.press("T") == "texture reset"
    assert calls == ["R", "T"]
    assert c.press("X") is None


def test_view_switch_cycles():
    c = ViewControls()
    assert c.settings().mode == "split"
    assert [c.press("V") for _ in range(3)] == ["view camera", "view 3d", "view split"]


def test_screenshot_request_is_one_shot():
    c = ViewControls()
    assert not c.take_screenshot_request()
    c.press("S")
    assert c.take_screenshot_request() and not c.take_screenshot_request()


def test_keys_without_an_action_do_nothing():
    assert ViewControls().press("R") is None  # no recorder wired


def test_drag_and_zoom_are_clamped():
    c = ViewControls(Orbit(distance_m=0.5))
    c.drag(100, 0)
    assert c.settings().orbit.yaw_deg == pytest.approx(40.0)
    c.drag(0, -1000)
    assert c.settings().orbit.pitch_deg == 89.0
    c.zoom(100)
    assert c.settings().orbit.distance_m == 0.05
    c.zoom(-1000)
    assert c.settings().orbit.distance_m == 5.0


def test_headless_swing_moves_the_yaw_with_stream_time():
    c = ViewControls(swing_deg=25.0)
    assert c.settings(0.0).orbit.yaw_deg == pytest.approx(0.0)
    assert c.settings(2.0).orbit.yaw_deg == pytest.approx(25.0)  # a quarter of the 8 s period


def test_controls_are_safe_across_threads():
    c = ViewControls()
    threads = [threading.Thread(target=lambda: [c.drag(1, 0) for _ in range(500)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.settings().orbit.yaw_deg == pytest.approx(2000 * 0.4)
