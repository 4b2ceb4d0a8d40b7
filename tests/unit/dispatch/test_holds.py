"""The API's view of what workers hold: which waiting requests lost their worker."""

from __future__ import annotations

from relay_core.dispatch.holds import HeldSet, HolderWatch, HoldRecord

AFTER_S = 3.0


def holds(**workers: tuple[int, list[str]]) -> dict[str, HoldRecord]:
    return {w: HoldRecord(seq=seq, ids=ids) for w, (seq, ids) in workers.items()}


def test_a_request_whose_holder_stops_moving_is_lost_once() -> None:
    watch = HolderWatch(AFTER_S)
    assert watch.lost(["r1"], holds(a=(1, ["r1"]), b=(1, [])), 0.0) == ([], set())
    assert watch.lost(["r1"], holds(a=(1, ["r1"]), b=(2, [])), 2.0) == ([], set())
    # a's seq has not moved for 3 s: dead, and its request lost
    assert watch.lost(["r1"], holds(a=(1, ["r1"]), b=(3, [])), 3.0) == (["r1"], {"a"})
    # published again: not lost a second time while nobody has taken it yet
    assert watch.lost(["r1"], holds(b=(4, [])), 4.0) == ([], set())
    # the new copy is taken by b, alive
    assert watch.lost(["r1"], holds(b=(5, ["r1"])), 5.0) == ([], set())


def test_a_holder_that_stopped_cleanly_handed_its_requests_back() -> None:
    """Its entry is gone after it put its messages back on their queues: sending them again
    would call the upstream twice (tests/integration/ops/test_graceful.py)."""
    watch = HolderWatch(AFTER_S)
    watch.lost(["r1"], holds(a=(1, ["r1"])), 0.0)
    assert watch.lost(["r1"], {}, 1.0) == ([], set())  # back on its queue, not taken
    assert watch.lost(["r1"], {}, 9.0) == ([], set())
    # had it stayed taken (the worker vanished without handing it back), it is lost
    watch.lost(["r2"], holds(a=(2, ["r2"])), 10.0)
    assert watch.lost(["r2"], {}, 11.0, taken={"r2"}) == ([], set())
    assert watch.lost(["r2"], {}, 14.0, taken={"r2"}) == (["r2"], set())


def test_a_live_holder_letting_go_is_not_a_loss() -> None:
    watch = HolderWatch(AFTER_S)
    watch.lost(["r1"], holds(a=(1, ["r1"])), 0.0)
    assert watch.lost(["r1"], holds(a=(2, [])), 1.0) == ([], set())  # handed on, or answered
    assert watch.lost(["r1"], holds(a=(3, [])), 9.0) == ([], set())  # queued again: waits


def test_a_taken_message_no_live_worker_lists_is_lost_after_the_delay() -> None:
    watch = HolderWatch(AFTER_S)
    assert watch.unheld(["r1", "r2"], holds(a=(1, ["r2"]))) == ["r1"]
    assert watch.lost(["r1"], holds(a=(1, [])), 0.0, taken={"r1"}) == ([], set())
    assert watch.lost(["r1"], holds(a=(2, [])), 2.9, taken={"r1"}) == ([], set())
    assert watch.lost(["r1"], holds(a=(3, [])), 3.0, taken={"r1"}) == (["r1"], set())
    # a message still queued (not taken) is never lost, however long it waits
    assert watch.lost(["r2"], holds(a=(4, [])), 60.0) == ([], set())


def test_a_worker_listing_it_again_keeps_it() -> None:
    watch = HolderWatch(AFTER_S)
    watch.lost(["r1"], holds(a=(1, [])), 0.0, taken={"r1"})
    assert watch.lost(["r1"], holds(a=(2, ["r1"])), 5.0, taken={"r1"}) == ([], set())


def test_the_held_set_counts_copies_of_one_id() -> None:
    changes: list[int] = []
    held = HeldSet(lambda: changes.append(1))
    held.take("r1")
    held.take("r1")  # the next copy arrives before the first visit's task has ended
    held.release("r1")
    assert held.ids() == ["r1"]
    held.release("r1")
    assert held.ids() == []
    assert len(changes) == 2
