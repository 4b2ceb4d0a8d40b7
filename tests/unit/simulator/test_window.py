from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from relay_sim.window import DailyWindow, SlidingWindow

T0 = 1_000_000.0


def test_sliding_window_admits_up_to_the_limit_then_refuses():
    w = SlidingWindow(limit=3, length_s=60)
    for i in range(3):
        assert w.fits(1, T0 + i)
        w.take(1, T0 + i)
    assert not w.fits(1, T0 + 10)
    assert w.remaining(T0 + 10) == 0


def test_sliding_window_frees_each_take_exactly_one_window_later():
    w = SlidingWindow(limit=2, length_s=60)
    w.take(1, T0)
    w.take(1, T0 + 5)
    assert w.wait_s(1, T0 + 30) == pytest.approx(30)  # the first take expires at T0+60
    assert not w.fits(1, T0 + 59.999)
    assert w.fits(1, T0 + 60)
    assert w.used(T0 + 60) == 1
    assert w.used(T0 + 65) == 0


def test_sliding_window_wait_for_a_large_amount_counts_enough_expiries():
    w = SlidingWindow(limit=100, length_s=60)
    w.take(30, T0)
    w.take(30, T0 + 10)
    w.take(30, T0 + 20)
    # 90 used; 50 more needs 40 freed: the first two takes (60) must expire, at T0+70.
    assert w.wait_s(50, T0 + 25) == pytest.approx(45)
    assert w.wait_s(10, T0 + 25) == 0
    # More than the whole limit never fits: a whole window is the honest answer.
    assert w.wait_s(101, T0 + 25) == 60


def test_sliding_window_reset_is_when_the_newest_take_expires():
    w = SlidingWindow(limit=10, length_s=60)
    assert w.reset_s(T0) == 0
    w.take(1, T0)
    w.take(1, T0 + 20)
    assert w.reset_s(T0 + 30) == pytest.approx(50)


def test_sliding_window_memory_is_bounded_by_what_it_admits():
    w = SlidingWindow(limit=5, length_s=1)
    for i in range(10_000):
        now = T0 + i * 0.01
        if w.fits(1, now):
            w.take(1, now)
    assert len(w._log) <= 5


def test_sliding_window_clear_empties_it():
    w = SlidingWindow(limit=1, length_s=60)
    w.take(1, T0)
    w.clear()
    assert w.fits(1, T0)


def _ts(year, month, day, hour, minute=0, tz=UTC):
    return datetime(year, month, day, hour, minute, tzinfo=tz).timestamp()


def test_daily_window_resets_at_utc_midnight():
    w = DailyWindow(limit=2, reset="00:00 UTC")
    evening = _ts(2025, 3, 1, 23, 0)
    w.take(1, evening)
    w.take(1, evening)
    assert not w.fits(1, evening)
    assert w.wait_s(1, evening) == pytest.approx(3600)
    assert w.fits(1, _ts(2025, 3, 2, 0, 0))


def test_daily_window_resets_at_pacific_midnight_across_dst():
    pacific = ZoneInfo("America/Los_Angeles")
    w = DailyWindow(limit=1, reset="00:00 America/Los_Angeles")
    # 2025-03-09 is the spring-forward day: that day has 23 hours.
    before = _ts(2025, 3, 8, 12, tz=pacific)
    w.take(1, before)
    assert not w.fits(1, before)
    assert w.reset_s(before) == pytest.approx(12 * 3600)
    sunday = _ts(2025, 3, 9, 0, 30, tz=pacific)
    assert w.fits(1, sunday)
    w.take(1, sunday)
    assert w.reset_s(sunday) == pytest.approx(22.5 * 3600)


@pytest.mark.parametrize("zone", ["Pacific", "US/Pacific"])
def test_daily_window_understands_the_catalogue_zone_spellings(zone):
    w = DailyWindow(limit=1, reset=f"08:00 {zone}")
    pacific = ZoneInfo("America/Los_Angeles")
    w.take(1, _ts(2025, 6, 1, 7, 59, tz=pacific))
    assert w.fits(1, _ts(2025, 6, 1, 8, 0, tz=pacific))
