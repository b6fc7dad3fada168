"""SearchingHands' policy with scripted graphs (no MediaPipe): when it stops and restarts the palm search."""

import numpy as np
import pytest

from app.detection.palm_search import SearchingHands


class Script:
    """A fake graph: ``process`` returns ``counts[frame]`` placeholder hands (the frame number is the image's
    first pixel); records the frames it saw and its resets."""

    def __init__(self, max_num_hands, static, counts):
        self.max_num_hands, self.static, self.counts = max_num_hands, static, counts
        self.seen, self.resets, self.closed = [], 0, False

    def process(self, image):
        frame = int(image[0, 0, 0])
        self.seen.append(frame)
        return tuple(("hand", frame, i) for i in range(min(self.counts(frame), self.max_num_hands)))

    def reset(self):
        self.resets += 1

    def close(self):
        self.closed = True


def run(counts, frames, every=4, hold=3):
    graphs = {}

    def make(n, static):
        graphs[(n, static)] = Script(n, static, counts)
        return graphs[(n, static)]

    sh = SearchingHands(make, 2, every, hold)
    out = [sh.process(np.full((2, 2, 3), f, np.uint8)) for f in range(frames)]
    return sh, graphs, out


def test_two_hands_stay_on_the_full_graph():
    sh, g, out = run(lambda f: 2, 20)
    assert sh.mode == "full" and g[(2, False)].seen == list(range(20)) and not g[(2, True)].seen
    assert all(len(h) == 2 for h in out)


def test_one_hand_stops_the_per_frame_search_after_hold_frames_and_searches_every_few():
    sh, g, out = run(lambda f: 1, 20, every=4, hold=3)
    assert g[(2, False)].seen == [0, 1, 2] and sh.mode == "fewer"
    assert g[(1, False)].seen == list(range(3, 20)) and g[(1, False)].resets == 1
    assert g[(2, True)].seen == [6, 10, 14, 18]  # every 4th frame on the one-hand graph
    assert all(len(h) == 1 for h in out)


def test_a_second_hand_is_found_by_the_search_and_the_full_graph_restarts():
    sh, g, out = run(lambda f: 1 if f < 8 else 2, 16, every=4, hold=3)
    assert g[(2, True)].seen == [6, 10]  # the search at frame 10 finds both hands
    assert len(out[10]) == 2 and out[10][0][1] == 10  # that frame's result is the search's
    assert sh.mode == "full" and g[(2, False)].resets == 1 and g[(2, False)].seen[-5:] == [11, 12, 13, 14, 15]
    assert all(len(h) == 2 for h in out[10:])


def test_close_closes_every_graph_and_bad_settings_are_refused():
    sh, g, _ = run(lambda f: 0, 2)
    sh.close()
    assert all(x.closed for x in g.values())
    with pytest.raises(ValueError):
        SearchingHands(lambda n, s: None, 1, 4, 3)
