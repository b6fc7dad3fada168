"""The refinement loop's fast parts: LeanSkinning (numba skinning with a hand-written backward) against smplx's
linear blend skinning, MomentumSGD against torch.optim.SGD. (The refiner with and without them: test_refine.py.)"""

from __future__ import annotations

from functools import lru_cache

import pytest
import torch
from smplx.lbs import lbs

from app.reconstruction.refine import LeanSkinning, MomentumSGD
from models.hand_model.layer import HandModel
from models.hand_model.mano_io import load_mano_dict, open_model_path

pytest.importorskip("numba")
torch.set_num_threads(1)
F64 = torch.float64


@lru_cache(maxsize=2)
def model(side: str = "right") -> HandModel:
    return HandModel(load_mano_dict(open_model_path(side)), is_left=side == "left", name="open")


def smplx_verts(hand: HandModel, pose: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """(V, 3) vertices of smplx.lbs in float64 (the reference), pose (1, 48), shape (1, 10)."""
    m = hand.mano
    return lbs(shape, pose + m.pose_mean.double(), m.v_template.double(), m.shapedirs.double(),
               m.posedirs.double(), m.J_regressor.double(), m.parents, m.lbs_weights.double())[0][0]


def random_state(seed: int):
    g = torch.Generator().manual_seed(seed)
    pose = 0.4 * torch.randn(1, 48, generator=g, dtype=F64)
    pose[0, 9:12] = 0.0  # an unbent joint: the Rodrigues guard's neighbourhood
    return pose, torch.randn(1, 10, generator=g, dtype=F64), 0.3 * torch.randn(1, 10, generator=g, dtype=F64)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("seed", [0, 1])
def test_lean_skinning_matches_smplx_values_and_gradients(side, seed):
    hand = model(side)
    skin = LeanSkinning.of(hand)
    assert skin is not None
    pose, shape, dshape = random_state(seed)
    weights = torch.randn(hand.num_verts, 3, generator=torch.Generator().manual_seed(seed + 10), dtype=F64)
    p_ref, d_ref = pose.clone().requires_grad_(True), dshape.clone().requires_grad_(True)
    ref = smplx_verts(hand, p_ref, shape + d_ref)
    (ref * weights).sum().backward()
    p, d = pose.clone().requires_grad_(True), dshape.clone().requires_grad_(True)
    ours = skin(skin.shaped(shape), p, d)
    (ours * weights).sum().backward()
    assert ours.dtype == F64
    torch.testing.assert_close(ours.detach(), ref.detach(), atol=1e-12, rtol=0)
    torch.testing.assert_close(p.grad, p_ref.grad, atol=1e-10 * float(p_ref.grad.abs().max()), rtol=1e-9)
    torch.testing.assert_close(d.grad, d_ref.grad, atol=1e-10 * float(d_ref.grad.abs().max()), rtol=1e-9)


def test_lean_skinning_float32_matches_the_hand_model():
    hand = model()
    skin = LeanSkinning.of(hand)
    pose, shape, dshape = (x.float() for x in random_state(3))
    with torch.no_grad():
        ref = hand(pose, shape + dshape).verts_m[0]
    ours = skin(skin.shaped(shape), pose, dshape)
    assert ours.dtype == torch.float32
    assert float((ours - ref).abs().max()) < 1e-6


def test_lean_skinning_refuses_what_it_cannot_reproduce():
    hand = model()
    broken = LeanSkinning(hand.mano)
    broken.posedirs = broken.posedirs * 2.0
    assert not broken.matches(hand)
    assert LeanSkinning.of(object()) is None


@pytest.mark.parametrize("momentum", [0.9, 0.0])
def test_momentum_sgd_matches_torch_sgd(momentum):
    g = torch.Generator().manual_seed(5)
    start = [torch.randn(1, 48, generator=g), torch.randn(778, 3, generator=g), torch.randn(1, 3, generator=g)]
    target = [torch.randn_like(x) for x in start]
    runs = []
    for make in (lambda groups: torch.optim.SGD(groups, lr=1.0, momentum=momentum), lambda groups:
                 MomentumSGD(groups, momentum=momentum)):
        params = [x.clone().requires_grad_(True) for x in start]
        opt = make([{"params": [p], "lr": lr} for p, lr in zip(params[:2], (0.01, 0.002), strict=True)])
        for _ in range(4):  # the third tensor has no optimiser group: left alone by both
            opt.zero_grad()
            sum(((p - t) ** 3).sum() for p, t in zip(params, target, strict=True)).backward()
            opt.step()
        runs.append([p.detach() for p in params])
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
