"""Limits kept in this process's memory: the semantics of the Lua scripts, in Python.

For unit tests and single-process tools. Every method runs without awaiting, so each is atomic
within one event loop. Nothing expires: time is whatever ``now`` the caller passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from relay_core.limits.backends.base import (
    CONCURRENCY_POLL_S,
    amount_for,
    to_lower,
    token_limits,
)
from relay_core.limits.specs import (
    BucketSpec,
    Capacity,
    Decision,
    Level,
    LimitPlan,
    Reason,
    Remaining,
)


@dataclass
class _Check:
    """One evaluation of a plan: the longest wait among refusals, and every level."""

    wait: float = 0.0
    reason: Reason | None = None
    levels: list[Level] = field(default_factory=list)
    hard: bool = False  # refused by something that cannot be reserved (not a bucket)

    def refuse(self, wait: float, reason: Reason, *, bucket: bool = False) -> None:
        if wait > self.wait:
            self.wait, self.reason = wait, reason
        self.hard = self.hard or not bucket


class MemoryBackend:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, ts)
        self._counters: dict[str, float] = {}
        self._leases: dict[str, dict[str, float]] = {}  # key -> lease id -> expiry
        self._pauses: dict[str, float] = {}

    def _bucket(self, spec: BucketSpec, now: float) -> tuple[float, float]:
        stored = self._buckets.get(spec.key)
        if stored is None:
            return spec.capacity, now
        tokens, ts = stored
        return min(spec.capacity, tokens + max(0.0, now - ts) * spec.rate), max(ts, now)

    def _live(self, key: str, now: float) -> dict[str, float]:
        return {lease: exp for lease, exp in self._leases.get(key, {}).items() if exp > now}

    def leases(self, key: str, now: float) -> int:
        """Leases of the cap at ``key`` in flight at ``now``."""
        return len(self._live(key, now))

    def _check(self, plan: LimitPlan, cost: int, lease_id: str, now: float) -> _Check:
        check = _Check()
        for key in plan.pauses:
            until = self._pauses.get(key)
            if until is not None and until > now:
                check.refuse(until - now, Reason.paused)
        for b in plan.buckets:
            tokens, _ = self._bucket(b, now)
            need = min(amount_for(b, cost), b.capacity)
            if tokens < need:
                check.refuse((need - tokens) / b.rate, b.reason, bucket=True)
            check.levels.append(Level(b.reason, b.scope, tokens, b.capacity))
        for c in plan.counters:
            used = self._counters.get(c.key, 0.0)
            if used + min(amount_for(c, cost), c.limit) > c.limit:
                check.refuse(max(c.reset_at - now, CONCURRENCY_POLL_S), c.reason)
            check.levels.append(Level(c.reason, c.scope, c.limit - used, c.limit))
        for s in plan.concurrency:
            live = self._live(s.key, now)
            if lease_id not in live and len(live) >= s.limit:
                check.refuse(min(CONCURRENCY_POLL_S, min(live.values()) - now), s.reason)
            check.levels.append(Level(s.reason, s.scope, s.limit - len(live), s.limit))
        return check

    async def acquire(
        self,
        plan: LimitPlan,
        cost_tokens: int,
        lease_id: str,
        now: float,
        reserve_s: float = 0.0,
    ) -> Decision:
        check = self._check(plan, cost_tokens, lease_id, now)
        if check.hard or check.wait > reserve_s:
            return Decision(granted=False, wait_s=check.wait, reason=check.reason)
        for b in plan.buckets:
            tokens, ts = self._bucket(b, now)
            self._buckets[b.key] = (tokens - amount_for(b, cost_tokens), ts)
        for c in plan.counters:
            self._counters[c.key] = self._counters.get(c.key, 0.0) + amount_for(c, cost_tokens)
        for s in plan.concurrency:
            self._leases[s.key] = self._live(s.key, now) | {lease_id: now + s.lease_ttl_s}
        return Decision(granted=True, wait_s=check.wait, reason=check.reason)

    async def release(self, plan: LimitPlan, lease_id: str, delta_tokens: int, now: float) -> None:
        for s in plan.concurrency:
            self._leases.get(s.key, {}).pop(lease_id, None)
        if delta_tokens == 0:
            return
        buckets, counters = token_limits(plan)
        for b in buckets:
            tokens, ts = self._bucket(b, now)
            self._buckets[b.key] = (min(b.capacity, tokens - delta_tokens), ts)
        for c in counters:
            if c.key in self._counters or delta_tokens > 0:
                self._counters[c.key] = max(0.0, self._counters.get(c.key, 0.0) + delta_tokens)

    async def shift(self, plan: LimitPlan, late_s: float, now: float) -> None:
        for b in plan.buckets:
            tokens, ts = self._bucket(b, now)
            self._buckets[b.key] = (tokens - late_s * b.rate, ts)

    async def pause(self, key: str, until: float, now: float) -> None:
        if until > now and until > self._pauses.get(key, 0.0):
            self._pauses[key] = until

    async def lower(self, plan: LimitPlan, remaining: Remaining, now: float) -> None:
        buckets, counters = to_lower(plan, remaining)
        for b, left in buckets:
            tokens, ts = self._bucket(b, now)
            self._buckets[b.key] = (min(tokens, left), ts)
        for c, left in counters:
            self._counters[c.key] = max(self._counters.get(c.key, 0.0), c.limit - left)

    async def peek_many(
        self, plans: Sequence[LimitPlan], cost_tokens: int, now: float
    ) -> list[Capacity]:
        checks = [self._check(plan, cost_tokens, "", now) for plan in plans]
        return [Capacity(c.wait, c.reason, tuple(c.levels)) for c in checks]
