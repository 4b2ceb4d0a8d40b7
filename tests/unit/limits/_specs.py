"""Small builders for hand-made plans in the contract tests."""

from __future__ import annotations

from relay_core.limits import BucketSpec, ConcurrencySpec, CounterSpec, LimitPlan, Reason


def bucket(prefix: str, name: str, rate: float, capacity: float, reason: Reason) -> BucketSpec:
    return BucketSpec(f"{prefix}:{name}", rate, capacity, reason, name)


def counter(prefix: str, name: str, limit: int, reset_at: float, reason: Reason) -> CounterSpec:
    return CounterSpec(f"{prefix}:{name}", limit, 2 * 86_400, reset_at, reason, name)


def cap(prefix: str, name: str, limit: int, lease_ttl_s: float = 30.0) -> ConcurrencySpec:
    return ConcurrencySpec(f"{prefix}:{name}", limit, lease_ttl_s, name)


def plan(
    *specs: BucketSpec | CounterSpec | ConcurrencySpec, pauses: tuple[str, ...] = ()
) -> LimitPlan:
    return LimitPlan(
        provider="p",
        model="m",
        buckets=tuple(s for s in specs if isinstance(s, BucketSpec)),
        counters=tuple(s for s in specs if isinstance(s, CounterSpec)),
        concurrency=tuple(s for s in specs if isinstance(s, ConcurrencySpec)),
        pauses=pauses,
    )
