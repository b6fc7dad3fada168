import numpy as np

from app.geometry.camera import project
from app.viewer.layout import Orbit, fit_placement, orbit_K, panel_size, place_image, round_up16


def test_panel_sizes_are_multiples_of_16():
    assert round_up16(360) == 368 and round_up16(368) == 368
    assert panel_size((1280, 720), 640) == (640, 368)
    assert panel_size((720, 720), 640) == (640, 640)


def test_placement_moves_K_with_the_image():
    K = np.array([[700.0, 0, 639.5], [0, 700.0, 359.5], [0, 0, 1]])
    place = fit_placement((1280, 720), (640, 368))
    pts = np.array([[0.1, -0.05, 0.5], [-0.2, 0.1, 1.0], [0.0, 0.0, 0.3]])
    np.testing.assert_allclose(place.points(project(pts, K)), project(pts, place.K(K)), atol=1e-9)
    assert place.scale == 0.5 and (place.offset_x, place.offset_y) == (0, 4)


def test_place_image_letterboxes():
    img = np.full((720, 720, 3), 200, np.uint8)
    place = fit_placement((720, 720), (640, 368))
    panel = place_image(img, (640, 368), place)
    assert panel.shape == (368, 640, 3)
    cols = np.nonzero(panel[184, :, 0])[0]
    assert cols.min() == place.offset_x and cols.max() == place.offset_x + 367  # a 368 px square, centred
    assert panel[:, : place.offset_x].max() == 0


def test_orbit_at_rest_only_moves_the_target_to_the_distance():
    target = np.array([0.1, 0.0, 0.5])
    pts = np.array([[0.1, 0.0, 0.5], [0.2, 0.0, 0.5]])
    out = Orbit(distance_m=0.6).to_view(pts, target)
    np.testing.assert_allclose(out, [[0, 0, 0.6], [0.1, 0, 0.6]], atol=1e-6)


def test_orbit_yaw_turns_about_the_target():
    out = Orbit(yaw_deg=90.0, distance_m=0.5).to_view(np.array([[0.1, 0.0, 0.0]]), np.zeros(3))
    np.testing.assert_allclose(out, [[0.0, 0.0, 0.4]], atol=1e-6)  # +x swings onto the view axis
    assert np.isclose(np.linalg.det(Orbit(yaw_deg=30, pitch_deg=-20).rotation()), 1.0)


def test_orbit_K_field_of_view():
    K = orbit_K((640, 368), fov_deg=90.0)
    assert np.isclose(K[0, 0], 320.0) and np.isclose(K[0, 2], 319.5) and np.isclose(K[1, 2], 183.5)
