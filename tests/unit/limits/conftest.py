"""Fixtures for the limits contract suite: a controllable clock and both backends.

The ``backend`` fixture runs each contract test twice: against :class:`MemoryBackend` and
against :class:`RedisBackend` on the real Redis at 127.0.0.1:6379 (marked ``integration``),
under a key prefix unique to the test and deleted after it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from relay_core.limits import LimitBackend, Limiter, MemoryBackend, RedisBackend
from tests.unit.limits._support import REDIS_URL, START, Clock, drop_prefix


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def prefix() -> str:
    return f"test:limits:{uuid.uuid4().hex}"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def backend(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[LimitBackend]:
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
def limiter(backend: LimitBackend, prefix: str) -> Limiter:
    return Limiter(backend, prefix)
