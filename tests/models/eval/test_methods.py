import numpy as np
import pytest

from app.detection.mediapipe_hands import RawHand
from models.eval.methods import METHODS, MethodOptions, detect_padded


class _NeedsMargin:
    """Stands in for MediaPipe's palm detector, which misses a hand filling the frame: finds the hand (a bright
    square) only when the image has at least ``margin`` dark pixels around it; records the canvases it saw."""

    def __init__(self, margin: int):
        self.margin, self.seen = margin, []

    def process(self, image):
        self.seen.append(image.shape[:2])
        ys, xs = np.nonzero(image[..., 0] > 100)
        if ys.min() < self.margin or image.shape[0] - 1 - ys.max() < self.margin:
            return ()
        kps = np.stack([xs[:21], ys[:21]], axis=1).astype(np.float32)  # 21 bright pixels, canvas coordinates
        return (RawHand(kps, 0.9, "right", np.zeros((21, 3), np.float32)),)


def test_detect_padded_tries_margins_in_turn_and_shifts_keypoints_back():
    image = np.full((40, 40, 3), 200, np.uint8)
    hands = _NeedsMargin(margin=30)
    found = detect_padded(hands, image, (0.5, 1.0))
    assert hands.seen == [(80, 80), (120, 120)]  # 20 px margin missed, 40 px found
    assert found is not None and found.keypoints_px.dtype == np.float32
    assert found.keypoints_px.min() >= 0 and found.keypoints_px.max() < 40  # back in the crop's pixels
    np.testing.assert_array_equal(found.keypoints_px[0], [0, 0])


def test_detect_padded_returns_none_when_every_margin_misses():
    assert detect_padded(_NeedsMargin(margin=100), np.full((40, 40, 3), 200, np.uint8), (0.0, 0.5)) is None


def test_method_options_refuse_bad_values_with_the_flag_to_fix():
    with pytest.raises(ValueError, match="--iterations"):
        MethodOptions(iterations=-1)
    with pytest.raises(ValueError, match="--side"):
        MethodOptions(side="mediapipe")
    with pytest.raises(ValueError, match="--pad"):
        MethodOptions(pad_fractions=())


def test_mesh_methods_are_registered_as_mesh_methods_that_accept_mono_data():
    for name in ("fit", "fit+refine"):
        spec = METHODS[name]
        assert spec.outputs_mesh and spec.outputs_3d and not spec.needs_stereo
    assert not METHODS["triangulate"].outputs_mesh and METHODS["triangulate"].needs_stereo
