"""The contract every limits backend keeps, and the choices both backends share.

Semantics (both backends, checked by one contract suite):

* A bucket refills continuously at ``rate`` up to ``capacity``; a missing bucket is full.
  A request may start when the bucket holds ``min(amount, capacity)`` and then takes
  ``amount``, so a request larger than the bucket leaves it in debt that refill pays off.
* A daily counter allows ``amount`` while ``used + min(amount, limit) <= limit``.
* A concurrency cap allows a lease while fewer than ``limit`` live leases exist (a lease id
  that already holds a slot may take it again).
* A pause refuses everything until its instant.
* ``acquire`` takes from everything or nothing; when refused, ``wait_s`` is the longest of the
  refusing limits' waits (the soonest all could pass) and ``reason`` names that limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from relay_core.limits.specs import (
    BucketSpec,
    Capacity,
    CounterSpec,
    Decision,
    LimitPlan,
    Remaining,
)

# How soon to retry when only a concurrency cap refused: slots free up when calls end, which
# no one can predict, so poll (unless a lease expires sooner).
CONCURRENCY_POLL_S = 0.05


class LimitBackend(Protocol):
    async def acquire(
        self,
        plan: LimitPlan,
        cost_tokens: int,
        lease_id: str,
        now: float,
        reserve_s: float = 0.0,
    ) -> Decision: ...

    async def release(
        self, plan: LimitPlan, lease_id: str, delta_tokens: int, now: float
    ) -> None: ...

    async def shift(self, plan: LimitPlan, late_s: float, now: float) -> None: ...

    async def pause(self, key: str, until: float, now: float) -> None: ...

    async def lower(self, plan: LimitPlan, remaining: Remaining, now: float) -> None: ...

    async def peek_many(
        self, plans: Sequence[LimitPlan], cost_tokens: int, now: float
    ) -> list[Capacity]: ...


def amount_for(spec: BucketSpec | CounterSpec, cost_tokens: int) -> int:
    """What one request takes from a limit: its tokens, or 1 request."""
    return cost_tokens if spec.reason.counts_tokens else 1


def token_limits(plan: LimitPlan) -> tuple[list[BucketSpec], list[CounterSpec]]:
    """The limits measured in tokens: the ones ``release`` corrects."""
    buckets = [b for b in plan.buckets if b.reason.counts_tokens]
    counters = [c for c in plan.counters if c.reason.counts_tokens]
    return buckets, counters


def to_lower(
    plan: LimitPlan, remaining: Remaining
) -> tuple[list[tuple[BucketSpec, float]], list[tuple[CounterSpec, float]]]:
    """For each kind an upstream reported, the most specific limit of that kind in the plan.

    A plan lists provider-level limits before model-level ones, so the last one wins: headers
    describe the key and model that answered.
    """
    buckets: dict[str, tuple[BucketSpec, float]] = {}
    counters: dict[str, tuple[CounterSpec, float]] = {}
    for bucket in plan.buckets:
        value = remaining.get(bucket.reason)
        if value is not None:
            buckets[bucket.reason] = (bucket, value)  # below zero: a debt to wait out
    for counter in plan.counters:
        value = remaining.get(counter.reason)
        if value is not None:
            counters[counter.reason] = (counter, max(0.0, value))
    return list(buckets.values()), list(counters.values())
