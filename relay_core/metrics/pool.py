"""The pool as the console's pool page shows it (``GET /v1/relay/pool``).

The same snapshot ``relay status`` prints (:func:`~relay_core.metrics.live.read_snapshot`:
breakers, limit levels, queue depths, calls in flight, workers), less the batches (they belong
to their owners: the console lists a key's own through ``/v1/batches``), plus the last minutes
of calls per provider (:mod:`relay_core.metrics.recent`), as typed wire models.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel
from redis.asyncio import Redis

from relay_core.breaker import Breaker
from relay_core.catalogue.models import ProviderConfig
from relay_core.heartbeat import WorkerBeat
from relay_core.limits import Limiter
from relay_core.metrics.live import LimitLevel, ProviderLive, read_snapshot
from relay_core.metrics.recent import BIN_S, WINDOW_S, RecentCalls, read_recent


class PoolLimit(BaseModel):
    limit: str  # rpm | tpm | rpd | tpd | concurrency
    available: float
    capacity: float
    resets_at: float | None  # epoch s; None for a concurrency limit
    rate_per_s: float | None  # rpm and tpm: the bucket's refill rate (Relay paces calls)


class PoolModel(BaseModel):
    id: str
    breaker: str  # closed | half_open | open
    limits: list[PoolLimit]  # the model's own, beyond its provider's


class PoolProvider(BaseModel):
    name: str
    breaker: str  # closed | half_open | open | disabled
    limits: list[PoolLimit]
    queue_depth: int
    in_flight: int
    models: list[PoolModel]
    recent: RecentCalls


class PoolView(BaseModel):
    at: float
    bin_s: int  # the width of each bin of ``recent.bins``
    window_s: int
    providers: list[PoolProvider]
    workers: list[WorkerBeat]


def _limits(levels: Sequence[LimitLevel], scope: str) -> list[PoolLimit]:
    return [
        PoolLimit(
            limit=lv.limit,
            available=lv.available,
            capacity=lv.capacity,
            resets_at=lv.resets_at,
            rate_per_s=lv.rate_per_s,
        )
        for lv in levels
        if lv.scope == scope
    ]


def _provider(config: ProviderConfig, live: ProviderLive, recent: RecentCalls) -> PoolProvider:
    models = [
        PoolModel(
            id=m.id,
            breaker=live.model_breakers.get(m.id, "closed"),
            limits=_limits(live.levels, f"{config.name}/{m.id}"),
        )
        for m in config.models
    ]
    return PoolProvider(
        name=live.name,
        breaker=live.breaker,
        limits=_limits(live.levels, config.name),
        queue_depth=live.queue_depth,
        in_flight=live.in_flight,
        models=models,
        recent=recent,
    )


async def read_pool(
    redis: Redis,
    prefix: str,
    providers: Sequence[ProviderConfig],
    limiter: Limiter,
    breaker: Breaker,
    *,
    now: float,
    window_s: int = WINDOW_S,
) -> PoolView:
    snap = await read_snapshot(redis, prefix, providers, limiter, breaker, now=now, batches=False)
    recent = await read_recent(redis, prefix, [p.name for p in providers], now, window_s)
    rows = [
        _provider(config, live, recent[live.name])
        for config, live in zip(providers, snap.providers, strict=True)
    ]
    return PoolView(at=now, bin_s=BIN_S, window_s=window_s, providers=rows, workers=snap.workers)
