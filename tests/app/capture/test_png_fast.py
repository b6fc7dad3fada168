"""The recordings' PNG encoder: lossless through OpenCV and Pillow, on noise and on a rendered-like image."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from app.capture.png_fast import encode_png_rgb, up_filtered_rows


def _images():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:90, 0:160]
    smooth = np.stack([xx % 256, yy * 2 % 256, (xx + yy) % 256], -1).astype(np.uint8)
    return [noise, smooth, np.zeros((1, 1, 3), np.uint8), np.full((4, 7, 3), 255, np.uint8)]


@pytest.mark.parametrize("i", range(4))
def test_round_trip_is_exact_in_opencv_and_pillow(i):
    rgb = _images()[i]
    data = encode_png_rgb(rgb)
    via_cv2 = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    via_pil = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert np.array_equal(via_cv2, rgb) and np.array_equal(via_pil, rgb)


def test_up_filter_is_the_difference_to_the_row_above_mod_256():
    rgb = _images()[0]
    rows = up_filtered_rows(rgb)
    flat = rgb.reshape(rgb.shape[0], -1).astype(np.int64)
    assert (rows[:, 0] == 2).all() and np.array_equal(rows[0, 1:], flat[0])
    assert np.array_equal(rows[1:, 1:], (flat[1:] - flat[:-1]) % 256)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="uint8"):
        encode_png_rgb(np.zeros((4, 4, 3), np.float32))
