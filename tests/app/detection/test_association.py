import numpy as np
import pytest

from app.detection.association import AssociationParams, associate, match


def _crossing_frames(hand_points, n=15):
    """The person's right hand sweeps right->left in front (z 0.45 m) while the left hand sweeps the other
    way behind it (z 0.55 m): the hands cross in the image halfway."""
    for s in np.linspace(0.0, 1.0, n):
        right = hand_points([0.15 - 0.3 * s, 0.03, 0.45], is_left=False, yaw_deg=10)
        left = hand_points([-0.15 + 0.3 * s, -0.01, 0.55], is_left=True, yaw_deg=-10)
        yield right, left


@pytest.mark.parametrize("rig_name", ["rectified_rig", "general_rig"])
@pytest.mark.parametrize("labels", ["correct", "uninformative", "one_view_swapped"])
def test_two_hands_crossing(hand_points, projector, request, rig_name, labels):
    rig = request.getfixturevalue(rig_name)
    rng = np.random.default_rng(0)
    for k, (right, left) in enumerate(_crossing_frames(hand_points)):
        hands = {"right": right, "left": left}
        order_l = ["right", "left"] if k % 2 else ["left", "right"]  # MediaPipe's order is arbitrary
        order_r = order_l[::-1]
        lab_l = {"correct": order_l, "uninformative": ["right", "right"],
                 "one_view_swapped": order_l}[labels]
        lab_r = {"correct": order_r, "uninformative": ["right", "right"],
                 "one_view_swapped": order_r[::-1]}[labels]
        view_l = [(projector(rig.left.P, hands[h]) + rng.normal(0, 0.7, (21, 2)), lab) for h, lab in
                  zip(order_l, lab_l, strict=True)]
        view_r = [(projector(rig.right.P, hands[h]) + rng.normal(0, 0.7, (21, 2)), lab) for h, lab in
                  zip(order_r, lab_r, strict=True)]
        pairs = associate(view_l, view_r, rig.left.P, rig.right.P)
        assert len(pairs) == 2 and all(i is not None and j is not None for i, j in pairs), (k, pairs)
        for i, j in pairs:
            assert order_l[i] == order_r[j], (k, pairs)


def test_hand_seen_in_one_view_is_mono(hand_points, projector, rectified_rig):
    rig = rectified_rig
    a, b = hand_points([0.1, 0.0, 0.4]), hand_points([-0.1, 0.0, 0.5], is_left=True)
    view_l = [(projector(rig.left.P, a), "right"), (projector(rig.left.P, b), "left")]
    view_r = [(projector(rig.right.P, b), "left")]  # hand a is out of the right view
    pairs = associate(view_l, view_r, rig.left.P, rig.right.P)
    assert pairs == [(1, 0), (0, None)]
    assert associate([], view_r, rig.left.P, rig.right.P) == [(None, 0)]
    assert associate([], [], rig.left.P, rig.right.P) == []


def test_implausible_pair_is_not_matched(hand_points, projector, rectified_rig):
    """Two unrelated hands on different rows must stay two mono observations."""
    rig = rectified_rig
    a, b = hand_points([0.1, -0.15, 0.4]), hand_points([-0.1, 0.12, 0.5])
    pairs = associate([(projector(rig.left.P, a), "right")], [(projector(rig.right.P, b), "right")],
                      rig.left.P, rig.right.P, AssociationParams())
    assert sorted(pairs, key=str) == sorted([(0, None), (None, 0)], key=str)


def test_match_prefers_lowest_total_cost():
    C = np.array([[1.0, 2.0], [1.5, np.inf]])
    assert sorted(match(C, unmatched_cost=10.0)) == [(0, 1), (1, 0)]
    assert sorted(match(np.array([[np.inf]]), unmatched_cost=1.0), key=str) == sorted([(0, None), (None, 0)],
                                                                                          key=str)
