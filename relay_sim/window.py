"""Counting windows for the simulator's limits. Every method takes ``now`` (seconds): the
caller owns the clock, so tests drive time by hand.

:class:`SlidingWindow` is exact: it keeps a log of what was taken in the last ``length_s``
seconds, so its memory is bounded by the limit (one entry per admitted request). It is what
providers that count "per minute" look like from outside. :class:`DailyWindow` is a counter
that resets at a fixed time of day in a time zone ("00:00 UTC", "00:00 America/Los_Angeles").
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

_ZONES: Mapping[str, str] = MappingProxyType(
    {"Pacific": "America/Los_Angeles", "US/Pacific": "America/Los_Angeles"}
)


class SlidingWindow:
    """At most ``limit`` units taken in any ``length_s`` seconds."""

    __slots__ = ("_log", "_used", "length_s", "limit")

    def __init__(self, limit: float, length_s: float) -> None:
        self.limit = limit
        self.length_s = length_s
        self._log: deque[tuple[float, float]] = deque()
        self._used = 0.0

    def _expire(self, now: float) -> None:
        log = self._log
        horizon = now - self.length_s
        while log and log[0][0] <= horizon:
            self._used -= log.popleft()[1]
        if not log:
            self._used = 0.0  # no drift from float sums

    def used(self, now: float) -> float:
        self._expire(now)
        return self._used

    def fits(self, amount: float, now: float) -> bool:
        return self.used(now) + amount <= self.limit

    def take(self, amount: float, now: float) -> None:
        self._expire(now)
        self._log.append((now, amount))
        self._used += amount

    def wait_s(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` fits (0 if it fits now; a whole window if it never will)."""
        excess = self.used(now) + amount - self.limit
        if excess <= 0:
            return 0.0
        if amount > self.limit:
            return self.length_s
        freed = 0.0
        for taken_at, taken in self._log:
            freed += taken
            if freed >= excess:
                return max(0.0, taken_at + self.length_s - now)
        return self.length_s  # unreachable: the log holds everything that is used

    def reset_s(self, now: float) -> float:
        """Seconds until the window is empty again (the last take expires)."""
        self._expire(now)
        return max(0.0, self._log[-1][0] + self.length_s - now) if self._log else 0.0

    def remaining(self, now: float) -> int:
        return max(0, math.floor(self.limit - self.used(now)))

    def clear(self) -> None:
        self._log.clear()
        self._used = 0.0


def parse_daily_reset(spec: str) -> tuple[ZoneInfo, time]:
    """``"HH:MM Zone"`` → (zone, time of day)."""
    clock, zone = spec.split(" ", 1)
    hours, minutes = clock.split(":")
    return ZoneInfo(_ZONES.get(zone, zone)), time(int(hours), int(minutes))


class DailyWindow:
    """At most ``limit`` units per day, the day starting at ``reset`` (``"HH:MM Zone"``)."""

    __slots__ = ("_at", "_next_reset", "_used", "_zone", "limit")

    def __init__(self, limit: float, reset: str = "00:00 UTC") -> None:
        self.limit = limit
        self._zone, self._at = parse_daily_reset(reset)
        self._used = 0.0
        self._next_reset = -math.inf

    def _day(self, now: float) -> date:
        local = datetime.fromtimestamp(now, self._zone)
        shifted = local - timedelta(hours=self._at.hour, minutes=self._at.minute)
        return shifted.date()

    def _roll(self, now: float) -> None:
        if now < self._next_reset:
            return
        following = self._day(now) + timedelta(days=1)
        self._next_reset = datetime.combine(following, self._at, tzinfo=self._zone).timestamp()
        self._used = 0.0

    def used(self, now: float) -> float:
        self._roll(now)
        return self._used

    def fits(self, amount: float, now: float) -> bool:
        return self.used(now) + amount <= self.limit

    def take(self, amount: float, now: float) -> None:
        self._roll(now)
        self._used += amount

    def wait_s(self, amount: float, now: float) -> float:
        return 0.0 if self.fits(amount, now) else self.reset_s(now)

    def reset_s(self, now: float) -> float:
        """Seconds until the next daily reset."""
        self._roll(now)
        return self._next_reset - now

    def remaining(self, now: float) -> int:
        return max(0, math.floor(self.limit - self.used(now)))

    def resets_between(self, start: float, end: float) -> int:
        """How many daily resets fall after ``start`` and up to ``end``."""
        return max(0, (self._day(end) - self._day(start)).days)

    def clear(self) -> None:
        self._used = 0.0
        self._next_reset = -math.inf
