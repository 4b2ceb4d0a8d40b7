"""The farm's condition right now, read from Redis: what ``relay status`` shows and what the
live gauges of ``/metrics`` report.

One snapshot costs a handful of round trips whatever the number of providers: queue lengths in
one pipeline, every bucket in one ``peek_many``, every breaker in one ``state`` call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from relay_core.batch.models import BatchProgress
from relay_core.breaker import Breaker, BreakerState, fingerprint
from relay_core.catalogue.models import ProviderConfig
from relay_core.dispatch.envelope import queue_name
from relay_core.heartbeat import WorkerBeat, live_workers
from relay_core.limits import Capacity, Limiter, LimitPlan
from relay_core.limits.specs import BucketSpec, ConcurrencySpec, CounterSpec, Level
from relay_core.metrics.batches import running_batches
from relay_core.metrics.load import read_load

# kombu's Redis transport keeps messages of priority p > 0 in "{queue}\x06\x16{p}".
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)
DISABLED = "disabled"  # the provider refused its key: kept off until the key changes


@dataclass(frozen=True, slots=True)
class LimitLevel:
    """How much of one limit is left: ``scope`` is ``provider`` or ``provider/model``."""

    scope: str
    limit: str  # rpm | tpm | rpd | tpd | concurrency
    available: float
    capacity: float
    resets_at: float | None = None  # epoch s: a bucket full again, a daily counter's new day
    rate_per_s: float | None = None  # a bucket's refill rate (rpm and tpm are paced)


@dataclass(frozen=True, slots=True)
class ProviderLive:
    name: str
    queue_depth: int
    in_flight: int
    breaker: str  # closed | half_open | open | disabled
    model_breakers: dict[str, str] = field(default_factory=dict)  # only the ones not closed
    levels: tuple[LimitLevel, ...] = ()


@dataclass(frozen=True, slots=True)
class FarmSnapshot:
    providers: list[ProviderLive]
    workers: list[WorkerBeat]
    at: float
    batches: list[BatchProgress] = field(default_factory=list)  # running ones


def queue_keys(prefix: str, provider: str) -> list[str]:
    base = queue_name(prefix, provider)
    return [base, *(f"{base}{PRIORITY_SEP}{p}" for p in PRIORITY_STEPS)]


async def queue_depths(redis: Redis, prefix: str, providers: Sequence[str]) -> dict[str, int]:
    """Messages waiting in each provider's queue (every priority level)."""
    if not providers:
        return {}
    per = len(queue_keys(prefix, providers[0]))
    async with redis.pipeline(transaction=False) as pipe:
        for name in providers:
            for key in queue_keys(prefix, name):
                pipe.llen(key)
        lengths = await pipe.execute()
    return {name: sum(lengths[i * per : (i + 1) * per]) for i, name in enumerate(providers)}


def _resets_at(
    spec: BucketSpec | CounterSpec | ConcurrencySpec, level: Level, now: float
) -> float | None:
    """When the limit is whole again: a bucket refilled, a daily counter's next window (a
    concurrency limit has no such time: it frees as calls end)."""
    if isinstance(spec, CounterSpec):
        return spec.reset_at
    if isinstance(spec, BucketSpec) and spec.rate > 0:
        return now + max(0.0, spec.capacity - level.available) / spec.rate
    return None


def _levels(
    plans: Sequence[LimitPlan], caps: Sequence[Capacity], now: float
) -> dict[str, list[LimitLevel]]:
    """Every distinct (scope, limit) level, grouped by provider."""
    seen: set[tuple[str, str]] = set()
    out: dict[str, list[LimitLevel]] = {}
    for plan, cap in zip(plans, caps, strict=True):
        for spec, lv in zip(plan.specs(), cap.levels, strict=True):
            if (lv.scope, lv.reason) in seen:
                continue
            seen.add((lv.scope, lv.reason))
            rate = spec.rate if isinstance(spec, BucketSpec) else None
            resets_at = _resets_at(spec, lv, now)
            level = LimitLevel(lv.scope, str(lv.reason), lv.available, lv.limit, resets_at, rate)
            out.setdefault(plan.provider, []).append(level)
    return out


async def _breakers(
    breaker: Breaker, providers: Sequence[ProviderConfig], now: float
) -> dict[str, tuple[str, dict[str, str]]]:
    keys: list[str] = []
    for p in providers:
        keys.append(breaker.key(p.name))
        keys += [breaker.key(p.name, m.id) for m in p.models]
    states = iter(await breaker.state(keys, now))
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for p in providers:
        own = next(states).state
        models = {m.id: next(states).state for m in p.models}
        off = await breaker.disabled(p.name)
        shown = str(own)
        if off is not None and off.fingerprint == fingerprint(p.api_key() or ""):
            shown = DISABLED
        not_closed = {m: str(s) for m, s in models.items() if s is not BreakerState.closed}
        out[p.name] = (shown, not_closed)
    return out


async def read_snapshot(
    redis: Redis,
    prefix: str,
    providers: Sequence[ProviderConfig],
    limiter: Limiter,
    breaker: Breaker,
    *,
    now: float,
    batches: bool = True,
) -> FarmSnapshot:
    """Queues, in-flight calls, breakers and limit levels of ``providers``, live workers and
    (unless ``batches`` is false) running batches of every owner."""
    names = [p.name for p in providers]
    depths = await queue_depths(redis, prefix, names)
    load = await read_load(redis, prefix)
    plans = [limiter.plan(p, m, now) for p in providers for m in p.models]
    caps = await limiter.peek_many(plans, now)
    levels = _levels(plans, caps, now)
    breakers = await _breakers(breaker, providers, now)
    rows = [
        ProviderLive(
            name=p.name,
            queue_depth=depths.get(p.name, 0),
            in_flight=load.get(p.name, 0),
            breaker=breakers[p.name][0],
            model_breakers=breakers[p.name][1],
            levels=tuple(levels.get(p.name, ())),
        )
        for p in providers
    ]
    workers = sorted(await live_workers(redis, prefix), key=lambda w: w.name)
    running = await running_batches(redis, prefix) if batches else []
    return FarmSnapshot(providers=rows, workers=workers, at=now, batches=running)
