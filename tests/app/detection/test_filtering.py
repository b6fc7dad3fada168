import math

import numpy as np

from app.detection.filtering import (
    KeypointFilters,
    OneEuroFilter,
    OneEuroParams,
    filter_sequence,
    jitter_and_lag,
    tune_one_euro,
)


def _reference_one_euro(xs, ts, min_cutoff, beta, d_cutoff):
    """Scalar One-Euro filter written straight from Casiez et al. 2012 (slow reference)."""
    def alpha(cutoff, dt):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    out, x_hat, dx_hat = [xs[0]], xs[0], 0.0
    for i in range(1, len(xs)):
        dt = ts[i] - ts[i - 1]
        dx = (xs[i] - x_hat) / dt
        dx_hat = dx_hat + alpha(d_cutoff, dt) * (dx - dx_hat)
        cutoff = min_cutoff + beta * abs(dx_hat)
        x_hat = x_hat + alpha(cutoff, dt) * (xs[i] - x_hat)
        out.append(x_hat)
    return np.array(out)


def _noisy_motion(n=240, fps=60.0, noise_px=1.5, seed=0, amp_px=80.0):
    t = np.arange(n) / fps
    truth = np.stack([300 + amp_px * np.sin(2 * np.pi * 0.5 * t),
                      200 + amp_px / 2 * np.cos(2 * np.pi * 0.3 * t)], -1)
    truth = np.repeat(truth[:, None, :], 21, axis=1) + np.arange(21)[None, :, None]
    noisy = truth + np.random.default_rng(seed).normal(0, noise_px, truth.shape)
    return t, noisy, truth


def test_matches_scalar_reference():
    t, noisy, _ = _noisy_motion(n=60)
    t = t + np.random.default_rng(1).uniform(0, 0.004, len(t))  # uneven frame times
    params = OneEuroParams(min_cutoff_hz=1.2, beta=0.03, d_cutoff_hz=1.0)
    ours = filter_sequence(params, t, noisy)
    ref = _reference_one_euro(noisy[:, 4, 1], t, 1.2, 0.03, 1.0)
    np.testing.assert_allclose(ours[:, 4, 1], ref, rtol=1e-12, atol=1e-9)


def test_filter_reduces_jitter_with_little_lag():
    """Default parameters: strong smoothing at rest, bounded lag at up to ~600 px/s."""
    for amp_px, max_jitter_ratio, max_error_ratio in ((0.0, 0.2, 0.5), (80.0, 0.6, 1.2), (200.0, 0.75, 1.5)):
        t, noisy, truth = _noisy_motion(amp_px=amp_px)
        filtered = filter_sequence(OneEuroParams(), t, noisy)
        jit_raw, err_raw = jitter_and_lag(noisy, truth)
        jit, err = jitter_and_lag(filtered[30:], truth[30:])
        assert jit < max_jitter_ratio * jit_raw, amp_px
        assert err < max_error_ratio * err_raw, amp_px


def test_tuning_beats_raw():
    t, noisy, truth = _noisy_motion(n=120)
    params, stats = tune_one_euro(t, noisy, truth, min_cutoffs=(0.5, 1.5, 4.0), betas=(0.0, 0.02, 0.1))
    assert isinstance(params, OneEuroParams)
    assert stats["jitter"] < stats["raw_jitter"] and stats["error"] < stats["raw_error"]


def test_nan_entries_pass_through_and_restart():
    f = OneEuroFilter(OneEuroParams())
    f(np.array([1.0, 2.0]), 0.0)
    out = f(np.array([np.nan, 2.5]), 0.02)
    assert np.isnan(out[0]) and 2.0 < out[1] < 2.5
    assert f(np.array([7.0, 2.5]), 0.04)[0] == 7.0  # restarts at the new value, no glide from NaN


def test_tracks_are_independent_and_reset_after_gap():
    bank = KeypointFilters(OneEuroParams(min_cutoff_hz=0.5, beta=0.0), reset_after_s=0.2)
    bank("right", np.zeros(2), 0.0)
    bank("left", np.full(2, 100.0), 0.0)
    moved = bank("right", np.full(2, 10.0), 0.02)
    assert 0 < moved[0] < 10  # smoothed towards the new value
    assert bank("left", np.full(2, 100.0), 0.02)[0] == 100.0
    assert bank("right", np.full(2, 50.0), 1.0)[0] == 50.0  # after a gap: fresh start, no glide
    assert bank("right", np.full(2, 52.0), 1.02)[0] < 52.0  # smoothing again
    assert bank("right", np.full(2, 300.0), 1.04, max_jump=100.0)[0] == 300.0  # a jump: fresh start
