"""The seven training stages (thesis Tables 4.1-4.3) and what each one runs, trains and optimises.

stage               information flow                                   trained                      loss   data
image               image -> tail -> regressor                         image head, tail, regressor  MANO   FreiHAND
keypoint            keypoint -> tail -> regressor                      keypoint head                MANO   FreiHAND
fusion              (image, keypoint) -> fusion -> tail -> regressor   fusion                       MANO   FreiHAND
finalize            same                                               tail, regressor              MANO   FreiHAND
segmentation        (image, keypoint) -> fusion -> tail -> decoder     decoder                      BCE    FreiHAND+syn
synthetic_adaption  (image, keypoint) -> fusion -> tail -> regressor   image head                   stereo FreiHAND+syn
stereo              (HandNet right, HandNet left) -> stereo            stereo head                  stereo syn
(syn = synthetic. synthetic_adaption applies the stereo loss to each view's own prediction; stereo to the fused one.)
Everything not trained is frozen: requires_grad off and eval mode (its batch-norm statistics stay fixed).
Without FreiHAND the 'freihand' data of a stage falls back to the synthetic set's views.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from models.handnet.net import MODULE_GROUPS, Flow, HandNet


@dataclass(frozen=True)
class StageSpec:
    """name; stereo: a stereo-pair stage; flow: the heads feeding the tail; trained: module groups trained;
    loss: 'mano' | 'segmentation' | 'stereo'; data: 'freihand' and/or 'synthetic'."""

    name: str
    stereo: bool
    flow: Flow
    trained: tuple[str, ...]
    loss: str
    data: tuple[str, ...]


STAGES = (
    StageSpec("image", False, Flow.IMAGE, ("image_head", "tail", "regressor"), "mano", ("freihand",)),
    StageSpec("keypoint", False, Flow.KEYPOINT, ("keypoint_head",), "mano", ("freihand",)),
    StageSpec("fusion", False, Flow.FUSED, ("fusion",), "mano", ("freihand",)),
    StageSpec("finalize", False, Flow.FUSED, ("tail", "regressor"), "mano", ("freihand",)),
    StageSpec("segmentation", False, Flow.FUSED, ("decoder",), "segmentation", ("freihand", "synthetic")),
    StageSpec("synthetic_adaption", False, Flow.FUSED, ("image_head",), "stereo", ("freihand", "synthetic")),
    StageSpec("stereo", True, Flow.FUSED, ("stereo",), "stereo", ("synthetic",)),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def set_trainable(net: HandNet, trained: tuple[str, ...]) -> list[nn.Parameter]:
    """Freeze every module group not in ``trained`` (no grads, eval mode); returns the trainable parameters."""
    unknown = set(trained) - set(MODULE_GROUPS)
    if unknown:
        raise ValueError(f"unknown module groups {sorted(unknown)}; known: {MODULE_GROUPS}")
    params = []
    for group in MODULE_GROUPS:
        module = getattr(net, group)
        on = group in trained
        module.train(on)
        for p in module.parameters():
            p.requires_grad_(on)
        if on:
            params += list(module.parameters())
    return params


def lr_factor(progress_epochs: float, epochs: int, decay_epochs: int) -> float:
    """Learning-rate multiplier: 1, then linear to 0 over the last ``decay_epochs`` (progress in epochs, may be
    fractional: the decay is applied per step)."""
    start = epochs - decay_epochs
    if decay_epochs <= 0 or progress_epochs < start:
        return 1.0
    return max(0.0, (epochs - progress_epochs) / decay_epochs)
