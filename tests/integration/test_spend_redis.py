"""The spend rates on the real Redis: concurrent writers add up, counts decay with time, and
a worker's calls reach its provider's, model's and key's scopes."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from relay_core.events import CallRecord
from relay_core.forecast.spend import SpendSink, SpendStore
from tests.unit.limits._support import REDIS_URL

pytestmark = pytest.mark.integration
TAU = 100.0


@pytest.fixture
async def store() -> AsyncIterator[SpendStore]:
    client = Redis.from_url(REDIS_URL)
    prefix = f"rt-spend-{uuid.uuid4().hex[:8]}"
    yield SpendStore(client, prefix, TAU)
    scopes = ("groq", "groq/m", "key:kaaa")
    await client.delete(*(f"{prefix}:spend:{s}" for s in scopes), f"{prefix}:spend-owners")
    await client.aclose()


async def test_concurrent_writers_add_up_and_the_count_decays(store: SpendStore) -> None:
    writers = [SpendStore(Redis.from_url(REDIS_URL), store.prefix, TAU) for _ in range(4)]
    await asyncio.gather(*(w.add({"groq": (1, 10)}, 1000.0) for w in writers for _ in range(25)))
    now = await store.read(["groq", "idle"], 1000.0)
    assert now["groq"].requests == pytest.approx(100 / TAU)  # 100 requests over tau
    assert now["groq"].tokens == pytest.approx(1000 / TAU)
    assert now["idle"].requests == 0.0
    later = (await store.read(["groq"], 1000.0 + TAU))["groq"]
    assert later.requests == pytest.approx(100 / TAU / math.e)
    for w in writers:
        await w.redis.aclose()


async def test_the_sink_counts_each_call_on_its_provider_model_and_key(
    store: SpendStore,
) -> None:
    sink = SpendSink(store, flush_s=60.0, clock=lambda: 5000.0)
    for owner in ("kaaa", "kaaa", None):
        record = CallRecord(
            "groq", "m", owner, "interactive", True, None, 0.1, 0.0, 30, 20, at=5000.0
        )
        await sink.call_finished(record)
    await sink.aclose()
    got = await store.read(["groq", "groq/m", "key:kaaa"], 5000.0)
    assert [round(got[s].requests * TAU, 6) for s in ("groq", "groq/m", "key:kaaa")] == [3, 3, 2]
    assert got["key:kaaa"].tokens * TAU == pytest.approx(100)
    assert await store.owners() == ["kaaa"]  # relay status lists the keys spending
