"""Circuit breaker vocabulary: the policy (from Settings), states, permits and status."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from relay_core.settings import Settings

# The failure-ratio window is kept as this many slots of ``window_s / WINDOW_SLOTS`` seconds:
# a call leaves the window at its slot's end, not to the millisecond.
WINDOW_SLOTS = 10


class BreakerState(StrEnum):
    closed = "closed"  # traffic flows; failures are counted
    open = "open"  # traffic is kept off until the cool-down ends
    half_open = "half_open"  # one probe call at a time decides: closed again, or open again


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failures: int = 5  # consecutive failures that open the breaker
    ratio: float = 0.5  # ... or this failure ratio over the window,
    window_s: float = 60.0
    min_calls: int = 10  # ... once the window saw at least this many calls
    cooldown_s: float = 5.0  # first open period; doubles on each failed probe
    cooldown_max_s: float = 300.0
    probe_ttl_s: float = 120.0  # a probe not reported by then is presumed dead

    @classmethod
    def from_settings(cls, settings: Settings) -> BreakerPolicy:
        """The ``breaker_*`` settings; a probe is one upstream call, so it cannot outlive
        ``request_timeout_s``."""
        return cls(
            failures=settings.breaker_failures,
            ratio=settings.breaker_ratio,
            window_s=settings.breaker_window_s,
            min_calls=settings.breaker_min_calls,
            cooldown_s=settings.breaker_cooldown_s,
            cooldown_max_s=max(settings.breaker_cooldown_max_s, settings.breaker_cooldown_s),
            probe_ttl_s=settings.request_timeout_s,
        )

    @property
    def ttl_s(self) -> int:
        """How long a breaker nobody touches keeps its state (then it starts closed)."""
        return int(max(self.window_s, self.cooldown_max_s, self.probe_ttl_s)) + 86_400


@dataclass(frozen=True, slots=True)
class Permit:
    """May a call go ahead? ``probe_keys``: the breakers it probes (report with probe=True)."""

    allowed: bool
    state: BreakerState
    retry_in_s: float = 0.0
    keys: tuple[str, ...] = ()
    probe_keys: tuple[str, ...] = ()

    @property
    def is_probe(self) -> bool:
        return bool(self.probe_keys)


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    """One breaker as routing and status screens see it (reading it changes nothing)."""

    key: str
    state: BreakerState
    retry_in_s: float  # until the cool-down ends, or the probe in flight expires
    consecutive_failures: int
    calls: int  # in the window
    failures: int  # in the window
    cooldown_s: float  # the current (or next) open period


@dataclass(frozen=True, slots=True)
class DisabledKey:
    """A provider key that failed authentication, by fingerprint (never the key itself)."""

    fingerprint: str
    reason: str
    since: float


def fingerprint(api_key: str) -> str:
    """A short, stable name for a key: the first 16 hex digits of its sha256."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]
