"""Calls in flight per provider, per worker: counted in memory, published to Redis.

Each worker process keeps a count of the envelopes it is working on per provider and writes it
beside its heartbeat (``{prefix}:load:{worker}``, short TTL, so a dead worker's count vanishes).
``relay status`` and ``/metrics`` add the counts of every live worker.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from redis.asyncio import Redis

LOAD_TTL_S = 15


def load_key(prefix: str, worker: str) -> str:
    return f"{prefix}:load:{worker}"


class InFlight:
    """In-memory counts for one worker process (used from its one event-loop thread)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    @contextmanager
    def track(self, provider: str) -> Iterator[None]:
        self.counts[provider] += 1
        try:
            yield
        finally:
            self.counts[provider] -= 1
            if self.counts[provider] <= 0:
                del self.counts[provider]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)


async def publish_load(
    redis: Redis, prefix: str, worker: str, counts: Mapping[str, int], ttl_s: int = LOAD_TTL_S
) -> None:
    await redis.set(load_key(prefix, worker), json.dumps(dict(counts)), ex=ttl_s)


async def forget_load(redis: Redis, prefix: str, worker: str) -> None:
    await redis.delete(load_key(prefix, worker))


async def read_load(redis: Redis, prefix: str) -> dict[str, int]:
    """Calls in flight per provider, summed over every live worker."""
    keys = [k async for k in redis.scan_iter(match=load_key(prefix, "*"), count=200)]
    if not keys:
        return {}
    total: Counter[str] = Counter()
    for raw in await redis.mget(keys):
        if raw is None:
            continue
        data = json.loads(raw)
        if isinstance(data, dict):
            total.update({str(k): int(v) for k, v in data.items()})
    return dict(total)
