"""Fixtures for the breaker contract suite: a controllable clock and both backends.

``breaker`` runs each contract test against :class:`MemoryBackend` and against
:class:`RedisBackend` on the real Redis at 127.0.0.1:6379 (marked ``integration``), under a
key prefix unique to the test and deleted after it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from relay_core.breaker import Breaker, BreakerBackend, BreakerPolicy, MemoryBackend, RedisBackend
from tests.unit.limits._support import REDIS_URL, START, Clock, drop_prefix

POLICY = BreakerPolicy(
    failures=3,
    ratio=0.5,
    window_s=10.0,
    min_calls=4,
    cooldown_s=5.0,
    cooldown_max_s=20.0,
    probe_ttl_s=30.0,
)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def prefix() -> str:
    return f"test:breaker:{uuid.uuid4().hex}"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def backend(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[BreakerBackend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    client = Redis.from_url(REDIS_URL)
    try:
        yield RedisBackend(client)
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()


@pytest.fixture
def breaker(backend: BreakerBackend, prefix: str) -> Breaker:
    return Breaker(backend, POLICY, prefix)
