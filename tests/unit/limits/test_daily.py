"""daily_window: the window id changes exactly at the reset instant, DST included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from relay_core.limits import daily_window
from relay_core.limits.daily import parse_reset


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("spec", "now", "window_id", "starts", "resets"),
    [
        ("00:00 UTC", at(2025, 1, 15, 12), "2025-01-15", at(2025, 1, 15), at(2025, 1, 16)),
        ("00:00 UTC", at(2025, 1, 16), "2025-01-16", at(2025, 1, 16), at(2025, 1, 17)),
        (
            "06:30 UTC",
            at(2025, 1, 15, 6, 29),
            "2025-01-14",
            at(2025, 1, 14, 6, 30),
            at(2025, 1, 15, 6, 30),
        ),
        # Pacific standard time is UTC-8, daylight time UTC-7.
        (
            "00:00 America/Los_Angeles",
            at(2025, 1, 15, 7, 59),
            "2025-01-14",
            at(2025, 1, 14, 8),
            at(2025, 1, 15, 8),
        ),
        (
            "00:00 America/Los_Angeles",
            at(2025, 1, 15, 8),
            "2025-01-15",
            at(2025, 1, 15, 8),
            at(2025, 1, 16, 8),
        ),
        ("00:00 Pacific", at(2025, 7, 1, 7), "2025-07-01", at(2025, 7, 1, 7), at(2025, 7, 2, 7)),
        # The days the clocks change are 23 and 25 hours long.
        (
            "00:00 America/Los_Angeles",
            at(2025, 3, 9, 12),
            "2025-03-09",
            at(2025, 3, 9, 8),
            at(2025, 3, 10, 7),
        ),
        (
            "00:00 America/Los_Angeles",
            at(2025, 11, 2, 12),
            "2025-11-02",
            at(2025, 11, 2, 7),
            at(2025, 11, 3, 8),
        ),
    ],
)
def test_windows(spec: str, now: float, window_id: str, starts: float, resets: float):
    window = daily_window(spec, now)
    assert (window.id, window.starts_at, window.resets_at) == (window_id, starts, resets)


def test_the_id_changes_at_the_instant_and_not_before():
    reset = at(2025, 1, 15, 8)
    before = daily_window("00:00 America/Los_Angeles", reset - 0.001)
    after = daily_window("00:00 America/Los_Angeles", reset)
    assert before.id != after.id
    assert before.resets_at == after.starts_at == reset


def test_unknown_zone_is_refused():
    with pytest.raises(ValueError, match="Europe/Paris"):
        parse_reset("00:00 Europe/Paris")
