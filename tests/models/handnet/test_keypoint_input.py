"""HandNetConfig.heatmap_input: how the keypoint head reads the detection's [-1, 1] heatmaps."""

import pytest
import torch

from models.handnet.config import HandNetConfig, HandNetConfigError
from models.handnet.net import keypoint_input


def test_unit_maps_background_to_zero_and_keeps_missing_keypoints_zero():
    h = torch.full((2, 21, 4, 4), -1.0)
    h[0, :, 1, 1] = 1.0
    h[1] = 0.0  # "no keypoints"
    out = keypoint_input(h, "unit")
    assert out[0, :, 1, 1].eq(1).all() and out[0, :, 0, 0].eq(0).all() and out[1].eq(0).all()


def test_pm1_is_the_identity_and_the_default():
    h = torch.linspace(-1, 1, 21 * 9).reshape(1, 21, 3, 3)
    assert torch.equal(keypoint_input(h, "pm1"), h) and HandNetConfig().heatmap_input == "pm1"


def test_configs_written_before_the_field_read_as_pm1_and_bad_values_are_refused():
    data = HandNetConfig(heatmap_input="unit").to_dict()
    assert HandNetConfig.from_dict(data).heatmap_input == "unit"
    data.pop("heatmap_input")
    assert HandNetConfig.from_dict(data).heatmap_input == "pm1"
    with pytest.raises(HandNetConfigError):
        HandNetConfig(heatmap_input="zero-one")
