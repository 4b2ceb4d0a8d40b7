"""The vocabulary of global limits: what to take from where, and what came back.

A :class:`LimitPlan` lists every limit one (provider, model) call must respect. Backends take
from all of them at once or from none (see ``docs/limits.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Which limit refused a request (also the name of each limit)."""

    rpm = "rpm"
    tpm = "tpm"
    rpd = "rpd"
    tpd = "tpd"
    concurrency = "concurrency"
    paused = "paused"

    @property
    def counts_tokens(self) -> bool:
        """True when the limit is measured in tokens, False when in requests."""
        return self in (Reason.tpm, Reason.tpd)

    @property
    def daily(self) -> bool:
        """True for the daily counters (rpd, tpd)."""
        return self in (Reason.rpd, Reason.tpd)

    @property
    def reservable(self) -> bool:
        """True for token buckets, whose slots a caller may reserve ahead (see ``acquire``)."""
        return self in (Reason.rpm, Reason.tpm)


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """A token bucket refilled continuously at ``rate`` per second, holding at most ``capacity``."""

    key: str
    rate: float
    capacity: float
    reason: Reason  # rpm or tpm
    scope: str  # "provider" or "provider/model", for reports

    @property
    def limit(self) -> float:
        return self.capacity


@dataclass(frozen=True, slots=True)
class CounterSpec:
    """A daily counter; ``key`` already names the window, which ends at ``reset_at`` (epoch s)."""

    key: str
    limit: int
    ttl_s: int
    reset_at: float
    reason: Reason  # rpd or tpd
    scope: str


@dataclass(frozen=True, slots=True)
class ConcurrencySpec:
    """At most ``limit`` leases at once; a lease not released vanishes after ``lease_ttl_s``."""

    key: str
    limit: int
    lease_ttl_s: float
    scope: str

    @property
    def reason(self) -> Reason:
        return Reason.concurrency


@dataclass(frozen=True, slots=True)
class LimitPlan:
    """Every limit of one (provider, model), most general first, plus the pause keys to honour."""

    provider: str
    model: str
    buckets: tuple[BucketSpec, ...] = ()
    counters: tuple[CounterSpec, ...] = ()
    concurrency: tuple[ConcurrencySpec, ...] = ()
    pauses: tuple[str, ...] = ()

    def specs(self) -> list[BucketSpec | CounterSpec | ConcurrencySpec]:
        """Every limit in the order of a :class:`Capacity`'s levels."""
        return [*self.buckets, *self.counters, *self.concurrency]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of ``acquire``: refused, with ``wait_s`` until all limits could pass; or
    granted, to start now or (a reserved slot) after ``wait_s``."""

    granted: bool
    wait_s: float = 0.0
    reason: Reason | None = None


@dataclass(frozen=True, slots=True)
class Level:
    """How much one limit has left right now (tokens, remaining count or free slots)."""

    reason: Reason
    scope: str
    available: float
    limit: float


@dataclass(frozen=True, slots=True)
class Capacity:
    """What ``peek`` sees: the wait before a request could pass, and every limit's level.

    ``levels`` follow the plan's order: buckets, then counters, then concurrency.
    """

    wait_s: float
    reason: Reason | None
    levels: tuple[Level, ...]

    @property
    def headroom(self) -> float:
        """The smallest fraction left across the limits (1.0 with no limits; may be negative)."""
        fractions = [lv.available / lv.limit for lv in self.levels if lv.limit > 0]
        return min(fractions, default=1.0)


@dataclass(frozen=True, slots=True)
class Remaining:
    """What an upstream said is left (``x-ratelimit-remaining-*``), per kind of limit."""

    rpm: float | None = None
    tpm: float | None = None
    rpd: float | None = None
    tpd: float | None = None

    def get(self, reason: Reason) -> float | None:
        values = {
            Reason.rpm: self.rpm,
            Reason.tpm: self.tpm,
            Reason.rpd: self.rpd,
            Reason.tpd: self.tpd,
        }
        return values.get(reason)
