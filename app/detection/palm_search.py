"""Tracking fewer hands than allowed without paying for a palm search on every frame.

Why: in video mode MediaPipe's legacy Hands graph runs its palm detector on every frame while it tracks fewer
hands than ``max_num_hands``. With two hands allowed and one in view (the usual case) that doubles the
detection cost: 42 vs 20 ms of CPU per stereo frame at model complexity 1 (docs/PERFORMANCE.md, Detection).

``SearchingHands`` keeps, per view, three graphs of the same model:
- ``full``: video mode, up to ``max_num_hands`` (tracks them all, searches on every frame while short);
- ``fewer``: video mode, one hand less (tracks without searching while that many are in view);
- ``search``: static mode, up to ``max_num_hands``, run every ``every`` frames while ``fewer`` tracks.
It uses ``full`` until it has seen fewer hands than the maximum for ``hold`` frames in a row, then ``fewer``;
when the periodic search finds the maximum, that frame's result is returned and ``full`` takes over again
(reset, so its first frame detects afresh instead of tracking stale regions). A new hand is found within
``every`` frames. The graphs are made by a factory (``make(max_num_hands, static)``), so the policy is tested
without MediaPipe.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class SearchingHands:
    """``process(image) -> tuple[RawHand, ...]`` like MediaPipeHands (see the module docstring)."""

    def __init__(self, make: Callable[[int, bool], object], max_num_hands: int, every: int, hold: int):
        if max_num_hands < 2 or every < 1 or hold < 1:
            raise ValueError("SearchingHands: needs max_num_hands >= 2, every >= 1 and hold >= 1")
        self.max_num_hands, self.every, self.hold = max_num_hands, every, hold
        self.full = make(max_num_hands, False)
        self.fewer = make(max_num_hands - 1, False)
        self.search = make(max_num_hands, True)
        self.mode = "full"
        self._short = self._since_search = 0
        self.searches = 0

    def process(self, image_rgb: np.ndarray) -> tuple:
        if self.mode == "full":
            return self._full(image_rgb)
        return self._fewer(image_rgb)

    def _full(self, image_rgb: np.ndarray) -> tuple:
        hands = self.full.process(image_rgb)
        self._short = self._short + 1 if len(hands) < self.max_num_hands else 0
        if self._short >= self.hold:
            self.mode, self._since_search = "fewer", 0
            self.fewer.reset()
        return hands

    def _fewer(self, image_rgb: np.ndarray) -> tuple:
        self._since_search += 1
        if self._since_search >= self.every:
            self._since_search = 0
            self.searches += 1
            found = self.search.process(image_rgb)
            if len(found) >= self.max_num_hands:
                self.mode, self._short = "full", 0
                self.full.reset()
                return found
        return self.fewer.process(image_rgb)

    def close(self) -> None:
        for graph in (self.full, self.fewer, self.search):
            graph.close()
