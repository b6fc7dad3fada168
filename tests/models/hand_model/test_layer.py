"""Tests for models/hand_model/layer.py: the torch hand model against smplx's lbs and a numpy reference."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from smplx.lbs import lbs

import models.hand_model.layer as layer
from app.config import MANO_DIR_ENV, HandModelConfig
from models.hand_model import (
    MANO_TO_MEDIAPIPE,
    HandModel,
    HandModelOutput,
    ManoFileError,
    build_hand_model,
    describe_default_model,
)
from models.hand_model.mano_io import MANO_TIP_VERTEX_IDS, open_model_path

torch.set_num_threads(1)

MANO_PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
N_VERTS = 778
TIPS = [5, 100, 200, 300, 400]  # deliberately not MANO's, so the test sees they are used


def synthetic_hand(seed: int = 0, tips: bool = True, uv: bool = True) -> dict:
    """A MANO-layout dict: 778 vertices scattered around 16 joints, each vertex skinned mostly to its joint."""
    rng = np.random.default_rng(seed)
    joints = np.zeros((16, 3))
    for j in range(1, 16):
        joints[j] = joints[MANO_PARENTS[j]] + rng.normal([0.025, 0.0, 0.0], 0.01)
    owner = rng.integers(0, 16, N_VERTS)
    verts = joints[owner] + rng.normal(0.0, 0.008, (N_VERTS, 3))
    weights = 0.05 * rng.random((N_VERTS, 16))
    weights[np.arange(N_VERTS), owner] += 1.0
    jreg = (owner[None, :] == np.arange(16)[:, None]).astype(float)
    faces = rng.integers(0, N_VERTS, (1538, 3)).astype(np.uint32)
    d = {
        "v_template": verts,
        "f": faces,
        "weights": weights / weights.sum(axis=1, keepdims=True),
        "J_regressor": jreg / jreg.sum(axis=1, keepdims=True),
        "kintree_table": np.array([[2**32 - 1] + MANO_PARENTS[1:], list(range(16))], dtype=np.int64),
        "shapedirs": rng.normal(0.0, 2e-3, (N_VERTS, 3, 10)),
        "posedirs": rng.normal(0.0, 2e-3, (N_VERTS, 3, 135)),
        "hands_components": np.linalg.qr(rng.normal(size=(45, 45)))[0],
        "hands_mean": rng.normal(0.0, 0.1, 45),
        "model_name": "synthetic",
    }
    if tips:
        d["tip_vertex_ids"] = np.array(TIPS)
    if uv:
        d["vt"], d["ft"] = rng.random((900, 2)), rng.integers(0, 900, (1538, 3))
    return d


@pytest.fixture(scope="module")
def hand() -> dict:
    return synthetic_hand()


@pytest.fixture(scope="module")
def model(hand) -> HandModel:
    return HandModel(hand)


def random_inputs(batch: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    pose = 0.4 * torch.randn(batch, 48, generator=g)
    shape = torch.randn(batch, 10, generator=g)
    transl = 0.1 * torch.randn(batch, 3, generator=g)
    return pose, shape, transl


# ---------------------------------------------------------------------------------------------------------
# numpy reference: MANO's linear blend skinning written out step by step
# ---------------------------------------------------------------------------------------------------------


def rodrigues(aa: np.ndarray) -> np.ndarray:
    theta = np.linalg.norm(aa)
    if theta < 1e-12:
        return np.eye(3)
    k = aa / theta
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * K + (1 - np.cos(theta)) * K @ K


def reference_lbs(d: dict, pose: np.ndarray, betas: np.ndarray, transl: np.ndarray):
    """One hand: (V, 3) vertices and (16, 3) joints, float64."""
    parents = MANO_PARENTS
    v_shaped = d["v_template"] + d["shapedirs"][:, :, :10] @ betas             # 1. shape blend shapes
    rest_joints = d["J_regressor"] @ v_shaped                                  # 2. joints from the surface
    rots = [rodrigues(pose[3 * j: 3 * j + 3]) for j in range(16)]
    feature = np.concatenate([(r - np.eye(3)).ravel() for r in rots[1:]])
    v_posed = v_shaped + d["posedirs"] @ feature                               # 3. pose blend shapes
    world = []
    for j in range(16):                                                        # 4. kinematic chain
        local = np.eye(4)
        local[:3, :3] = rots[j]
        local[:3, 3] = rest_joints[j] - (rest_joints[parents[j]] if j else 0)
        world.append(local if j == 0 else world[parents[j]] @ local)
    skin = []
    for j in range(16):                                                        # 5. bone transforms from rest
        unrest = np.eye(4)
        unrest[:3, 3] = -rest_joints[j]
        skin.append(world[j] @ unrest)
    T = np.einsum("vj,jab->vab", d["weights"], np.stack(skin))
    verts = np.einsum("vab,vb->va", T, np.c_[v_posed, np.ones(len(v_posed))])[:, :3]
    joints = np.stack([w[:3, 3] for w in world])
    return verts + transl, joints + transl


# ---------------------------------------------------------------------------------------------------------
# forward
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 64])
def test_forward_shapes_and_dtypes(model, batch):
    out = model(*random_inputs(batch))
    assert isinstance(out, HandModelOutput)
    assert out.verts_m.shape == (batch, N_VERTS, 3)
    assert out.joints_m.shape == (batch, 16, 3)
    assert out.keypoints_m.shape == (batch, 21, 3)
    assert all(t.dtype == torch.float32 for t in (out.verts_m, out.joints_m, out.keypoints_m))


def test_zero_pose_and_shape_gives_template_plus_translation(model, hand):
    transl = torch.tensor([[0.1, -0.2, 0.5], [0.0, 0.0, 0.0]])
    out = model(torch.zeros(2, 48), torch.zeros(2, 10), transl)
    expected = torch.tensor(hand["v_template"], dtype=torch.float32)[None] + transl[:, None]
    torch.testing.assert_close(out.verts_m, expected, atol=1e-6, rtol=0)
    rest = torch.tensor(hand["J_regressor"] @ hand["v_template"], dtype=torch.float32)
    torch.testing.assert_close(out.joints_m, rest[None] + transl[:, None], atol=1e-6, rtol=0)


def test_keypoints_are_joints_and_tip_vertices_in_mediapipe_order(model):
    out = model(*random_inputs(3))
    mano21 = torch.cat([out.joints_m, out.verts_m[:, TIPS]], dim=1)
    torch.testing.assert_close(out.keypoints_m, mano21[:, MANO_TO_MEDIAPIPE])
    torch.testing.assert_close(out.keypoints_m[:, [4, 8, 12, 16, 20]], out.verts_m[:, TIPS])
    torch.testing.assert_close(out.keypoints_m[:, 0], out.joints_m[:, 0])


def test_mano_to_mediapipe_by_name():
    fingers = {"index": (1, 17), "middle": (4, 18), "pinky": (7, 20), "ring": (10, 19), "thumb": (13, 16)}
    mano = ["wrist"] + [""] * 20
    for name, (first, tip) in fingers.items():
        mano[first: first + 3] = [f"{name}{k}" for k in (1, 2, 3)]
        mano[tip] = f"{name}_tip"
    mediapipe = ["wrist"] + [f"{name}{k}" for name in ("thumb", "index", "middle", "ring", "pinky")
                             for k in (1, 2, 3, "_tip")]
    assert [mano[i] for i in MANO_TO_MEDIAPIPE] == mediapipe
    assert sorted(MANO_TO_MEDIAPIPE.tolist()) == list(range(21))


def test_agrees_with_smplx_lbs(model, hand):
    pose, shape, transl = random_inputs(5)
    out = model(pose, shape, transl)
    t = {k: torch.tensor(np.asarray(v, dtype=np.float64)) for k, v in hand.items() if k not in ("model_name",)}
    parents = torch.tensor(MANO_PARENTS)
    posedirs = t["posedirs"].reshape(-1, 135).T
    verts, joints = lbs(shape.double(), pose.double(), t["v_template"], t["shapedirs"], posedirs,
                        t["J_regressor"], parents, t["weights"])
    torch.testing.assert_close(out.verts_m.double(), verts + transl.double()[:, None], atol=2e-6, rtol=0)
    torch.testing.assert_close(out.joints_m.double(), joints + transl.double()[:, None], atol=2e-6, rtol=0)


def test_agrees_with_numpy_reference(model, hand):
    pose, shape, transl = random_inputs(3, seed=7)
    out = model(pose, shape, transl)
    for b in range(3):
        verts, joints = reference_lbs(hand, pose[b].double().numpy(), shape[b].double().numpy(),
                                      transl[b].double().numpy())
        np.testing.assert_allclose(out.verts_m[b].numpy(), verts, atol=2e-6)
        np.testing.assert_allclose(out.joints_m[b].numpy(), joints, atol=2e-6)


def test_one_shape_shared_by_the_batch(model):
    pose, shape, transl = random_inputs(4)
    shared = model(pose, shape[:1], transl)
    full = model(pose, shape[:1].expand(4, -1), transl)
    torch.testing.assert_close(shared.verts_m, full.verts_m)


def test_gradients_reach_the_inputs(model):
    pose, shape, transl = (t.requires_grad_() for t in random_inputs(2))
    model(pose, shape, transl).verts_m.square().sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (pose, shape, transl))
    assert list(model.parameters()) == []


@pytest.mark.parametrize("pose, shape, transl", [
    (torch.zeros(2, 45), torch.zeros(2, 10), None),
    (torch.zeros(2, 48), torch.zeros(3, 10), None),
    (torch.zeros(2, 48), torch.zeros(2, 10), torch.zeros(2, 2)),
])
def test_bad_input_shapes(model, pose, shape, transl):
    with pytest.raises(ValueError):
        model(pose, shape, transl)


# ---------------------------------------------------------------------------------------------------------
# attributes
# ---------------------------------------------------------------------------------------------------------


def test_attributes(model, hand):
    assert model.faces.dtype == torch.int64 and model.faces.shape == (1538, 3)
    np.testing.assert_array_equal(model.faces.numpy(), hand["f"])
    assert model.num_verts == N_VERTS and model.name == "open" and not model.is_left
    assert model.tip_vertex_ids.tolist() == TIPS
    assert model.parents.tolist() == MANO_PARENTS
    vt, ft = model.uv
    assert vt.shape == (900, 2) and vt.dtype == torch.float32 and ft.dtype == torch.int64


def test_left_flag_default_tips_and_no_uv(hand):
    d = synthetic_hand(tips=False, uv=False)
    left = HandModel(d, is_left=True, name="mano")
    assert left.is_left and not left.mano.is_rhand and left.name == "mano"
    assert left.tip_vertex_ids.tolist() == list(MANO_TIP_VERTEX_IDS)
    assert left.uv is None


def test_rest_joints_and_pose_components(model, hand):
    shape = torch.randn(2, 10, generator=torch.Generator().manual_seed(3))
    rest = model.rest_joints(shape)
    v_shaped = hand["v_template"][None] + np.einsum("vck,bk->bvc", hand["shapedirs"], shape.double().numpy())
    np.testing.assert_allclose(rest.numpy(), np.einsum("jv,bvc->bjc", hand["J_regressor"], v_shaped), atol=1e-6)
    components, mean = model.pose_components()
    np.testing.assert_allclose(components.numpy(), hand["hands_components"], atol=1e-6)
    np.testing.assert_allclose(mean.numpy(), hand["hands_mean"], atol=1e-7)


def test_invalid_dict_is_refused():
    d = synthetic_hand()
    d["weights"] = d["weights"][:, :15]
    with pytest.raises(ManoFileError, match="weights"):
        HandModel(d)


# ---------------------------------------------------------------------------------------------------------
# building from files
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture()
def mano_dir(tmp_path, hand):
    right = dict(hand)
    right.pop("tip_vertex_ids")
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(pickle.dumps(right, protocol=2))
    left = dict(right, v_template=hand["v_template"] * [-1, 1, 1])  # same shapedirs: MANO's left-file bug
    (tmp_path / "MANO_LEFT.pkl").write_bytes(pickle.dumps(left, protocol=2))
    return tmp_path


def test_build_from_mano_dir(mano_dir, hand, monkeypatch):
    monkeypatch.delenv(MANO_DIR_ENV, raising=False)
    right = build_hand_model(HandModelConfig(mano_dir=str(mano_dir)))
    assert right.name == "mano" and not right.is_left
    assert right.tip_vertex_ids.tolist() == list(MANO_TIP_VERTEX_IDS)
    left = build_hand_model(HandModelConfig(mano_dir=str(mano_dir)), side="left")
    assert left.is_left
    # the left model's shapedirs were mirrored in x, so the same betas move vertices mirror-symmetrically
    shape = torch.ones(1, 10)
    dl = left(torch.zeros(1, 48), shape).verts_m - left(torch.zeros(1, 48), torch.zeros(1, 10)).verts_m
    dr = right(torch.zeros(1, 48), shape).verts_m - right(torch.zeros(1, 48), torch.zeros(1, 10)).verts_m
    torch.testing.assert_close(dl, dr * torch.tensor([-1.0, 1.0, 1.0]), atol=1e-6, rtol=0)


def test_build_uses_environment_variable(mano_dir, monkeypatch):
    monkeypatch.setenv(MANO_DIR_ENV, str(mano_dir))
    assert build_hand_model(HandModelConfig()).name == "mano"
    assert "MANO" in describe_default_model(None) and str(N_VERTS) in describe_default_model(None)


def test_missing_open_model_says_how_to_generate(tmp_path, monkeypatch):
    monkeypatch.delenv(MANO_DIR_ENV, raising=False)
    monkeypatch.setattr(layer, "open_model_path", lambda side: tmp_path / f"OPENHAND_{side.upper()}.pkl")
    with pytest.raises(ManoFileError, match="python -m models.hand_model generate"):
        build_hand_model(HandModelConfig())
    assert "python -m models.hand_model generate" in describe_default_model(None)


def test_describe_never_raises(tmp_path, monkeypatch):
    monkeypatch.delenv(MANO_DIR_ENV, raising=False)
    assert "no usable hand model" in describe_default_model(str(tmp_path / "missing"))
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(b"garbage")
    line = describe_default_model(str(tmp_path))
    assert "no usable hand model" in line and "MANO_RIGHT.pkl" in line


def test_dicts_are_cached_per_file(mano_dir, monkeypatch):
    calls = []
    real = layer.load_mano_dict
    monkeypatch.setattr(layer, "load_mano_dict", lambda p: calls.append(p) or real(p))
    layer._DICT_CACHE.clear()
    for _ in range(3):
        build_hand_model(HandModelConfig(mano_dir=str(mano_dir)))
    assert len(calls) == 1


@pytest.mark.skipif(not open_model_path("right").is_file() or not open_model_path("left").is_file(),
                    reason="open model asset not generated yet (python -m models.hand_model generate)")
@pytest.mark.parametrize("side", ["right", "left"])
def test_embedded_open_model(side, monkeypatch):
    monkeypatch.delenv(MANO_DIR_ENV, raising=False)
    model = build_hand_model(HandModelConfig(), side=side)
    assert model.name == "open" and model.is_left == (side == "left") and model.uv is not None
    out = model(torch.zeros(2, 48), torch.zeros(2, 10))
    extent = (out.verts_m[0].max(0).values - out.verts_m[0].min(0).values).max().item()
    assert 0.1 < extent < 0.3, f"hand size {extent} m is not a hand"
    assert "open hand model" in describe_default_model(None)
