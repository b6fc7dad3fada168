"""Tests for models/training/stages.py: the thesis stage table, freezing and the learning-rate decay."""

from __future__ import annotations

import pytest
import torch

from models.handnet import Flow, HandNetConfig, build_handnet
from models.handnet.net import MODULE_GROUPS
from models.training.stages import STAGES, lr_factor, set_trainable

torch.set_num_threads(1)

TINY = HandNetConfig(width=0.125, blocks=(1, 1, 1, 1), crop_size=64, regressor_hidden=(64, 32))


def test_stage_table_matches_the_thesis():
    table = {s.name: (s.flow, s.trained, s.loss, s.stereo) for s in STAGES}
    assert list(table) == ["image", "keypoint", "fusion", "finalize", "segmentation", "synthetic_adaption", "stereo"]
    assert table["image"] == (Flow.IMAGE, ("image_head", "tail", "regressor"), "mano", False)
    assert table["keypoint"] == (Flow.KEYPOINT, ("keypoint_head",), "mano", False)
    assert table["fusion"] == (Flow.FUSED, ("fusion",), "mano", False)
    assert table["finalize"] == (Flow.FUSED, ("tail", "regressor"), "mano", False)
    assert table["segmentation"] == (Flow.FUSED, ("decoder",), "segmentation", False)
    assert table["synthetic_adaption"] == (Flow.FUSED, ("image_head",), "stereo", False)
    assert table["stereo"] == (Flow.FUSED, ("stereo",), "stereo", True)


@pytest.mark.parametrize("spec", STAGES, ids=lambda s: s.name)
def test_set_trainable_freezes_everything_else(spec):
    net = build_handnet(TINY)
    params = set_trainable(net, spec.trained)
    for group in MODULE_GROUPS:
        module = getattr(net, group)
        on = group in spec.trained
        assert all(p.requires_grad == on for p in module.parameters()), group
        assert all(m.training == on for m in module.modules()), group
    assert sum(p.numel() for p in params) == sum(p.numel() for g in spec.trained for p in getattr(net, g).parameters())


def test_frozen_batchnorm_statistics_do_not_move():
    net = build_handnet(TINY)
    set_trainable(net, ("keypoint_head",))
    before = net.tail.down4[0].reduce[1].running_mean.clone()
    net(torch.randn(4, 3, 64, 64) * 3, torch.randn(4, 21, 64, 64), "keypoint")
    assert torch.equal(net.tail.down4[0].reduce[1].running_mean, before)
    with pytest.raises(ValueError, match="unknown module groups"):
        set_trainable(net, ("encoder",))


def test_lr_factor_decays_linearly_over_the_last_epochs():
    assert [lr_factor(e, 10, 4) for e in (0, 5.9, 6, 7, 8, 9, 10)] == [1, 1, 1, 0.75, 0.5, 0.25, 0]
    assert lr_factor(3.5, 4, 0) == 1.0
    assert lr_factor(0.5, 2, 2) == pytest.approx(0.75)
