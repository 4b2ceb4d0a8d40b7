"""Breakers on the real Redis: one probe among many concurrent callers, across connections
and processes, and agreement with the in-memory backend on random workloads."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from relay_core.breaker import Breaker, BreakerPolicy, MemoryBackend, RedisBackend
from tests.unit.limits._support import REDIS_URL, START, drop_prefix

pytestmark = pytest.mark.integration

POLICY = BreakerPolicy(
    failures=3,
    ratio=0.5,
    window_s=10,
    min_calls=4,
    cooldown_s=5,
    cooldown_max_s=40,
    probe_ttl_s=30,
)
HALF_OPEN_AT = START + POLICY.cooldown_s


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(client: Redis) -> AsyncIterator[str]:
    name = f"test:breaker-int:{uuid.uuid4().hex}"
    yield name
    await drop_prefix(client, name)


async def open_breaker(breaker: Breaker, key: str) -> None:
    for _ in range(POLICY.failures):
        await breaker.record(key, False, START)
    assert not (await breaker.allow(key, START)).allowed


async def test_exactly_one_probe_among_50_concurrent_connections(client: Redis, prefix: str):
    breaker = Breaker(RedisBackend(client), POLICY, prefix)
    key = breaker.key("prov")
    await open_breaker(breaker, key)
    clients = [Redis.from_url(REDIS_URL) for _ in range(50)]
    try:
        await asyncio.gather(*(c.ping() for c in clients))  # 50 connections, all open
        askers = [Breaker(RedisBackend(c), POLICY, prefix) for c in clients]
        permits = await asyncio.gather(*(b.allow(key, HALF_OPEN_AT) for b in askers))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    assert sum(p.allowed for p in permits) == 1
    assert sum(p.is_probe for p in permits) == 1


async def _ask_many(prefix: str, key: str, count: int) -> int:
    clients = [Redis.from_url(REDIS_URL) for _ in range(count)]
    await asyncio.gather(*(c.ping() for c in clients))
    askers = [Breaker(RedisBackend(c), POLICY, prefix) for c in clients]
    permits = await asyncio.gather(*(b.allow(key, HALF_OPEN_AT) for b in askers))
    await asyncio.gather(*(c.aclose() for c in clients))
    return sum(p.is_probe for p in permits)


def ask_many(prefix: str, key: str, count: int) -> int:
    return asyncio.run(_ask_many(prefix, key, count))


async def test_exactly_one_probe_among_processes(client: Redis, prefix: str):
    breaker = Breaker(RedisBackend(client), POLICY, prefix)
    key = breaker.key("prov")
    await open_breaker(breaker, key)
    ctx = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    with ctx.Pool(5) as pool:
        pending = [pool.apply_async(ask_many, (prefix, key, 10)) for _ in range(5)]
        probes = [await loop.run_in_executor(None, p.get, 60) for p in pending]
    assert sum(probes) == 1


@pytest.mark.parametrize("seed", range(6))
async def test_redis_and_memory_backends_agree_on_random_workloads(
    client: Redis, prefix: str, seed: int
):
    rng = random.Random(seed)
    sides = [
        Breaker(RedisBackend(client), POLICY, prefix),
        Breaker(MemoryBackend(), POLICY, prefix),
    ]
    keys = [sides[0].key("p"), sides[0].key("p", "m")]
    now = START
    for step in range(300):
        now += rng.choice([0.0, 0.1, 0.7, 2.5, 6.0])
        chosen = rng.sample(keys, rng.randint(1, 2))
        permits = [await side.allow_all(chosen, now) for side in sides]
        assert permits[0] == permits[1], step
        if permits[0].allowed and rng.random() < 0.8:  # some calls never report (dead worker)
            success = rng.random() < 0.4
            for side, permit in zip(sides, permits, strict=True):
                await side.record_permit(permit, success, now)
        if rng.random() < 0.3:  # a late result from before the breaker opened
            key, success = rng.choice(keys), rng.random() < 0.5
            for side in sides:
                await side.record(key, success, now)
        states = [await side.state(keys, now) for side in sides]
        assert states[0] == states[1], step
