"""The thesis 4.2.5 texture update: the formula on small arrays worked by hand, and the fast state update
against it (plus the first-observation rule, Pi_old bookkeeping and the confidence count)."""

import numpy as np
import pytest
import torch

from app.texture.update import TexelState, thesis_update, update_texels

torch.set_num_threads(1)


def test_thesis_formula_by_hand():
    T = np.array([[0.5, 0.5, 0.5], [0.2, 0.4, 0.6], [0.9, 0.1, 0.3]])
    pi_new = np.array([[0.7, 0.5, 0.1], [0.3, 0.3, 0.3], [0.0, 1.0, 0.3]])
    pi_old = np.array([[0.6, 0.5, 0.5], [0.1, 0.1, 0.1], [0.5, 0.5, 0.5]])
    phi = np.array([1.0, 0.0, 1.0])[:, None]
    out = thesis_update(T, pi_new, pi_old, phi)
    # Texel 0, written: gamma = 1 - |pi_new - pi_old| = (0.9, 1.0, 0.6); T + gamma (pi_new - T).
    np.testing.assert_allclose(out[0], [0.5 + 0.9 * 0.2, 0.5, 0.5 + 0.6 * (0.1 - 0.5)])
    np.testing.assert_allclose(out[1], T[1])  # Phi = 0: unchanged
    # Texel 2: gamma = (0.5, 0.5, 1.0): halfway to a very different colour, all the way to an agreeing one.
    np.testing.assert_allclose(out[2], [0.9 - 0.5 * 0.9, 0.1 + 0.5 * 0.9, 0.3])


def test_thesis_formula_on_images_and_tensors_agree():
    rng = np.random.default_rng(0)
    T, pi_new, pi_old = (rng.random((4, 4, 3)) for _ in range(3))
    phi = (rng.random((4, 4)) > 0.5)[..., None]
    ref = T + phi * (1 - np.abs(pi_new - phi * pi_old)) * pi_new - phi * (1 - np.abs(pi_new - phi * pi_old)) * T
    np.testing.assert_allclose(thesis_update(T, pi_new, pi_old, phi), ref)
    got = thesis_update(*(torch.from_numpy(a) for a in (T, pi_new, pi_old)), torch.from_numpy(phi))
    np.testing.assert_allclose(got.numpy(), ref)


def random_state(rng, n):
    count = torch.from_numpy(rng.integers(0, 3, n).astype(np.float32))
    return TexelState(torch.from_numpy(rng.random((3, n), dtype=np.float32)),
                      torch.from_numpy(rng.random((3, n), dtype=np.float32)), count)


def test_fast_update_matches_the_formula_on_seen_texels():
    rng = np.random.default_rng(1)
    s = random_state(rng, 64)
    pi = torch.from_numpy(rng.random((3, 64), dtype=np.float32))  # channels first, like the state
    total = torch.from_numpy((rng.random(64) > 0.4) * rng.random(64)).float()
    rgb, pi_old, count = update_texels(s.rgb, s.pi_old, s.count, pi, total)
    phi = total > 0
    seen_before = s.count > 0
    ref = thesis_update(s.rgb, pi, s.pi_old, phi)  # phi (N,) broadcasts over (3, N)
    np.testing.assert_allclose(rgb[:, seen_before].numpy(), ref[:, seen_before].numpy(), atol=1e-6)
    first = phi & ~seen_before
    np.testing.assert_allclose(rgb[:, first].numpy(), pi[:, first].numpy())  # first observation: T = Pi_new
    np.testing.assert_array_equal(rgb[:, ~phi].numpy(), s.rgb[:, ~phi].numpy())
    np.testing.assert_array_equal(pi_old[:, phi].numpy(), pi[:, phi].numpy())  # last projection written
    np.testing.assert_array_equal(pi_old[:, ~phi].numpy(), s.pi_old[:, ~phi].numpy())
    np.testing.assert_array_equal(count.numpy(), (s.count + phi).numpy())


def test_outlier_barely_moves_an_agreeing_texture():
    """Repeated agreeing observations converge; one far-off projection moves T by gamma = 1 - |difference|."""
    state = TexelState.empty(1)
    skin = torch.tensor([[0.8], [0.6], [0.5]])
    for _ in range(3):
        state = TexelState(*update_texels(state.rgb, state.pi_old, state.count, skin, torch.ones(1)))
    np.testing.assert_allclose(state.rgb.numpy(), skin.numpy(), atol=1e-6)
    assert state.count.item() == 3
    black = torch.zeros(3, 1)
    rgb, _, _ = update_texels(state.rgb, state.pi_old, state.count, black, torch.ones(1))
    gamma = 1.0 - skin
    np.testing.assert_allclose(rgb.numpy(), (skin - gamma * skin).numpy(), atol=1e-6)
    assert rgb[0, 0].item() == pytest.approx(0.8 * 0.8)
