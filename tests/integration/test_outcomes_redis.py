"""The outcome store on the real Redis: workers' counts add up atomically, the window
scales them down, and the sink and the cache carry them from a call to a ranking."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from relay_core.errors import UpstreamTimeout, UpstreamUnusableAnswer
from relay_core.events import CallRecord
from relay_core.routing.outcomes import OutcomeCache, OutcomeSink, OutcomeStore
from tests.unit.limits._support import REDIS_URL, drop_prefix

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis() -> AsyncIterator[tuple[Redis, str]]:
    client = Redis.from_url(REDIS_URL)
    prefix = f"rt-outcomes-{uuid.uuid4().hex[:8]}"
    yield client, prefix
    await drop_prefix(client, prefix)
    await client.aclose()


async def test_concurrent_writers_lose_no_count(redis: tuple[Redis, str]) -> None:
    _client, prefix = redis
    stores = [OutcomeStore(Redis.from_url(REDIS_URL), prefix, window=1e9) for _ in range(4)]
    await asyncio.gather(
        *(s.record({("chat", "a/m"): {"s": 1, "h2": 1}}, 10.0) for s in stores for _ in range(25))
    )
    got = (await stores[0].read("chat"))["a/m"]
    assert (got.successes, got.failures, got.latency[2], got.at) == (100.0, 0.0, 100.0, 10.0)
    for s in stores:
        await s.redis.aclose()


async def test_the_window_scales_a_targets_counts_down(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    store = OutcomeStore(client, prefix, window=50)
    await store.record({("json", "a/m"): {"s": 40, "h1": 40}}, 1.0)
    await store.record({("json", "a/m"): {"f": 60}}, 2.0)
    got = (await store.read("json"))["a/m"]
    assert got.successes + got.failures == pytest.approx(50)
    assert got.successes == pytest.approx(20) and got.latency[1] == pytest.approx(20)


async def test_a_calls_outcome_reaches_the_routers_snapshot(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    store = OutcomeStore(client, prefix)
    sink = OutcomeSink(store, every_s=60)

    def call(ok: bool, error: type | None = None, family: str | None = "extraction") -> CallRecord:
        return CallRecord("a", "m", None, "interactive", ok, error, 0.3, 0.0, family=family)

    for record in (
        call(True),
        call(False, UpstreamUnusableAnswer),
        call(False, UpstreamUnusableAnswer),
        call(False, UpstreamTimeout),  # the breaker's business, not an answer's worth
        call(True, family=None),  # not profiled: not counted
    ):
        await sink.call_finished(record)
    await sink.aclose()
    learned = await OutcomeCache(store, ttl_s=10).stats("extraction")
    got = learned["a/m"]
    assert (round(got.successes), round(got.failures)) == (1, 2)
    assert got.percentile(0.5) == 0.4
