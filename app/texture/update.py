"""The texture update rule of thesis section 4.2.5 and the per-texel state it runs on.

    gamma = 1 - |Pi_new - Phi * Pi_old|
    T     = T + Phi (gamma * Pi_new) - Phi (gamma * T)

Where a texel is written (Phi = 1), T moves towards Pi_new by the fraction gamma: gamma is small when the new
projection disagrees with the previous one (an outlier: a misfit, a highlight, an occluder) and near 1 when they
agree. Everything is elementwise (gamma per colour channel, as the thesis writes it).

Two choices the thesis leaves open, made here:
- Pi_old is the last projection written at that texel (kept per texel), not the whole previous frame's
  projection, whose zeros where the previous frame saw nothing would give gamma = 1 - Pi_new there.
- A texel's first observation sets T = Pi_new (gamma = 1). The formula alone would blend the new colour into the
  empty texture (T = 0, Pi_old = 0: gamma = 1 - Pi_new, T = (1 - Pi_new) Pi_new: skin at 0.8 would land at 0.16).

Arrays: colours in [0, 1] float32; ``thesis_update`` works on numpy arrays and torch tensors of any layout where
phi broadcasts against T ((S, S, 3) with phi (S, S, 1); (3, N) with phi (N,)). The state keeps slots channels
first, rgb / pi_old (3, N) and count (N,): elementwise work then runs along long rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def thesis_update(T, pi_new, pi_old, phi):
    """One application of the thesis 4.2.5 rule, written as the thesis writes it (the reference)."""
    phi = phi * 1.0
    gamma = 1.0 - abs(pi_new - phi * pi_old)  # thesis 4.2.5, first line
    return T + phi * (gamma * pi_new) - phi * (gamma * T)  # thesis 4.2.5, second line


@dataclass
class TexelState:
    """Per slot, channels first: rgb (3, N) float32 texture T in [0, 1]; pi_old (3, N) float32 last projection
    written; count (N,) float32 number of updates that wrote the slot (the confidence)."""

    rgb: torch.Tensor
    pi_old: torch.Tensor
    count: torch.Tensor

    @classmethod
    def empty(cls, n_slots: int) -> TexelState:
        return cls(torch.zeros(3, n_slots), torch.zeros(3, n_slots), torch.zeros(n_slots))

    def copy(self) -> TexelState:
        return TexelState(self.rgb.clone(), self.pi_old.clone(), self.count.clone())


def update_texels(rgb: torch.Tensor, pi_old: torch.Tensor, count: torch.Tensor, pi_new: torch.Tensor,
                  total: torch.Tensor):
    """One update of the state (rgb, pi_old (3, N), count (N,)) with a fused projection pi_new (3, N), total (N,)
    weight (Phi = total > 0); returns the new (rgb, pi_old, count). Same result as thesis_update plus the
    first-observation rule, in fewer passes: T + phi gamma Pi_new - phi gamma T = T + phi gamma (Pi_new - T)."""
    phi = (total > 0).to(rgb.dtype)
    gamma = (pi_new - phi * pi_old).abs_().neg_().add_(1.0)  # thesis 4.2.5, first line
    first = (count == 0).to(rgb.dtype).mul_(phi)
    rate = torch.maximum(gamma, first).mul_(phi)  # gamma = 1 at a first observation
    new_rgb = (pi_new - rgb).mul_(rate).add_(rgb)  # thesis 4.2.5, second line: T + phi gamma (Pi_new - T)
    return new_rgb, (pi_new - pi_old).mul_(phi).add_(pi_old), count + phi
