import threading

import pytest

from app.pipeline.mailbox import END, Mailbox


def test_latest_wins_never_grows_and_counts_drops():
    box = Mailbox("stage", capacity=1)
    for i in range(100):
        assert box.put(i)
        assert len(box) == 1
    assert box.dropped == 99 and box.high_water == 1
    assert box.get() == 99  # only the newest survives


def test_latest_wins_keeps_the_newest_items_in_order():
    box = Mailbox("stage", capacity=3)
    for i in range(10):
        box.put(i)
    assert [box.get(), box.get(), box.get()] == [7, 8, 9]
    assert box.dropped == 7 and box.high_water == 3


def test_paced_box_delivers_every_item_in_order():
    box = Mailbox("stage", capacity=1, drop_stale=False)
    got = []

    def consume():
        while (item := box.get()) is not END:
            got.append(item)

    t = threading.Thread(target=consume)
    t.start()
    for i in range(200):
        box.put(i)
    box.close()
    t.join(5)
    assert got == list(range(200))
    assert box.dropped == 0 and box.high_water == 1


def test_close_drains_then_ends():
    box = Mailbox("stage", capacity=2)
    box.put("a")
    box.put("b")
    box.close()
    assert [box.get(), box.get(), box.get()] == ["a", "b", END]
    assert not box.put("c") and box.discarded == 1


def test_abort_wakes_a_blocked_producer_and_discards():
    box = Mailbox("stage", capacity=1, drop_stale=False)
    box.put(1)
    result = []
    t = threading.Thread(target=lambda: result.append(box.put(2)))
    t.start()
    t.join(0.2)
    assert t.is_alive()  # blocked: the box is full
    box.abort()
    t.join(5)
    assert result == [False]
    assert box.get() is END and box.discarded == 2


def test_get_times_out_with_none():
    assert Mailbox("stage").get(timeout_s=0.01) is None


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="capacity"):
        Mailbox("stage", capacity=0)
