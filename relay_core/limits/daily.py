"""Daily windows: which day a daily counter is counting, and when it resets.

Providers reset daily quotas at a wall-clock time in a named zone ("00:00 UTC" for Cloudflare,
midnight Pacific for Gemini). A window is named by the local date on which it began, so a
counter's key changes exactly at the reset instant, daylight saving time included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# The zone names the catalogue accepts (see ``DailyReset``), mapped to IANA names.
_ZONES = {
    "UTC": "UTC",
    "America/Los_Angeles": "America/Los_Angeles",
    "US/Pacific": "America/Los_Angeles",
    "Pacific": "America/Los_Angeles",
}


@dataclass(frozen=True, slots=True)
class DailyWindow:
    id: str  # the local date the window began on, e.g. "2025-03-09"
    starts_at: float  # epoch seconds
    resets_at: float  # epoch seconds; the next window begins here


def parse_reset(daily_reset: str) -> tuple[time, ZoneInfo]:
    """``"HH:MM UTC"`` or ``"HH:MM America/Los_Angeles"`` -> (wall-clock time, zone)."""
    clock, _, zone = daily_reset.partition(" ")
    hours, _, minutes = clock.partition(":")
    if zone not in _ZONES:
        raise ValueError(f"unknown daily_reset zone {zone!r}; use one of {sorted(_ZONES)}")
    return time(int(hours), int(minutes)), ZoneInfo(_ZONES[zone])


def _instant(day: date, at: time, zone: ZoneInfo) -> float:
    return datetime.combine(day, at, tzinfo=zone).timestamp()


def daily_window(daily_reset: str, now: float) -> DailyWindow:
    """The daily window containing ``now`` (epoch seconds) for a ``daily_reset`` spec."""
    at, zone = parse_reset(daily_reset)
    day = datetime.fromtimestamp(now, zone).date()
    if _instant(day, at, zone) > now:
        day -= timedelta(days=1)
    return DailyWindow(
        id=day.isoformat(),
        starts_at=_instant(day, at, zone),
        resets_at=_instant(day + timedelta(days=1), at, zone),
    )
