"""Temporal smoothing of keypoints: the One-Euro filter (Casiez, Roussel, Vogel, CHI 2012), vectorised.

Per sample with time step dt (seconds):
1. derivative dx = (x - x_prev_filtered) / dt, smoothed by a low-pass with cutoff d_cutoff (Hz);
2. adaptive cutoff fc = min_cutoff + beta |dx_smoothed| (per coordinate), so slow motion is smoothed hard
   (little jitter) and fast motion lightly (little lag);
3. x_filtered = low-pass(x, fc), with the exponential smoothing factor alpha = 1 / (1 + tau / dt),
   tau = 1 / (2 pi fc).
``KeypointFilters`` keeps one filter per hand track and restarts a track after a gap. ``tune_one_euro``
grid-searches the parameters against ground truth. Pure numpy.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


def _alpha(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * np.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt_s)


@dataclass(frozen=True)
class OneEuroParams:
    """min_cutoff_hz: cutoff at rest; beta: cutoff increase per unit/s of speed; d_cutoff_hz: derivative
    cutoff. Units of beta follow the signal (px or m)."""

    min_cutoff_hz: float = 1.0
    beta: float = 0.1
    d_cutoff_hz: float = 1.0


class OneEuroFilter:
    """One-Euro filter over an array signal of any fixed shape (e.g. (21, 2) px); NaN entries pass through
    unfiltered and restart that entry."""

    def __init__(self, params: OneEuroParams):
        self.params = params
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t_s: float | None = None

    def reset(self) -> None:
        self._x = self._dx = self._t_s = None

    @property
    def last(self) -> np.ndarray | None:
        """The latest filtered value (float64), None before the first sample."""
        return self._x

    def __call__(self, x: np.ndarray, t_s: float) -> np.ndarray:
        """Filter sample ``x`` taken at time ``t_s`` (seconds, increasing); returns float64, x's shape."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape or t_s <= self._t_s:
            self._x, self._dx, self._t_s = x.copy(), np.zeros_like(x), t_s
            return x.copy()
        dt = t_s - self._t_s
        p = self.params
        prev = np.where(np.isfinite(self._x), self._x, x)  # a NaN entry restarts from the new value
        dx = np.nan_to_num((x - prev) / dt)
        self._dx = self._dx + _alpha(p.d_cutoff_hz, dt) * (dx - self._dx)
        a = _alpha(p.min_cutoff_hz + p.beta * np.abs(self._dx), dt)
        self._x = np.where(np.isfinite(x), prev + a * (x - prev), np.nan)
        self._t_s = t_s
        return self._x.copy()


class KeypointFilters:
    """One ``OneEuroFilter`` per track key (e.g. ('right', 'left-view')). A track starts fresh when it was
    unseen for longer than ``reset_after_s`` or when the new sample jumps by more than ``max_jump`` (median
    over rows; e.g. two hands swapping labels), so a hand never glides in from another position."""

    def __init__(self, params: OneEuroParams, reset_after_s: float = 0.5):
        self.params = params
        self.reset_after_s = reset_after_s
        self._filters: dict = {}
        self._last_s: dict = {}

    def __call__(self, key, x: np.ndarray, t_s: float, max_jump: float = np.inf) -> np.ndarray:
        """Filtered ``x`` (N, D) of track ``key`` at ``t_s`` seconds."""
        f = self._filters.get(key)
        if f is None or t_s - self._last_s[key] > self.reset_after_s or self._jump(f, x) > max_jump:
            f = self._filters[key] = OneEuroFilter(self.params)
        self._last_s[key] = t_s
        return f(x, t_s)

    @staticmethod
    def _jump(f: OneEuroFilter, x: np.ndarray) -> float:
        if f.last is None or f.last.shape != np.shape(x):
            return 0.0
        d = np.linalg.norm(np.reshape(np.asarray(x, np.float64) - f.last, (len(x), -1)), axis=1)
        return float(np.nanmedian(d)) if np.isfinite(d).any() else 0.0


def filter_sequence(params: OneEuroParams, t_s: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Run one filter over a sequence: t_s (T,) seconds, xs (T, ...) -> (T, ...) float64."""
    f = OneEuroFilter(params)
    return np.stack([f(x, float(t)) for t, x in zip(t_s, xs, strict=True)])


def jitter_and_lag(filtered: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(jitter, error) of a filtered sequence (T, ...) against truth (T, ...), in the signal's unit.

    jitter: RMS of the frame-to-frame change of (filtered - truth), i.e. noise that moves between frames;
    error: RMS of (filtered - truth), which grows with lag on moving keypoints.
    """
    e = np.asarray(filtered, np.float64) - np.asarray(truth, np.float64)
    jitter = float(np.sqrt(np.nanmean(np.diff(e, axis=0) ** 2)))
    return jitter, float(np.sqrt(np.nanmean(e**2)))


def tune_one_euro(t_s: np.ndarray, noisy: np.ndarray, truth: np.ndarray,
                  min_cutoffs=(0.5, 1.0, 1.5, 2.5, 4.0), betas=(0.0, 0.005, 0.01, 0.02, 0.05, 0.1),
                  jitter_weight: float = 1.0) -> tuple[OneEuroParams, dict]:
    """Grid search minimising error + jitter_weight x jitter against ground truth.

    t_s: (T,) seconds; noisy, truth: (T, ...) same unit. Returns the best params and a dict with its
    ``jitter``/``error`` and the raw (unfiltered) ones for comparison.
    """
    best, best_score, best_stats = None, np.inf, {}
    for mc, beta in itertools.product(min_cutoffs, betas):
        params = OneEuroParams(min_cutoff_hz=mc, beta=beta)
        jitter, err = jitter_and_lag(filter_sequence(params, t_s, noisy), truth)
        if err + jitter_weight * jitter < best_score:
            best, best_score = params, err + jitter_weight * jitter
            best_stats = {"jitter": jitter, "error": err}
    raw_jitter, raw_err = jitter_and_lag(noisy, truth)
    return best, {**best_stats, "raw_jitter": raw_jitter, "raw_error": raw_err}
