"""The pool view: ``relay status``'s snapshot as wire models, with each limit's reset time."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fakeredis
import pytest

from relay_core.breaker import Breaker
from relay_core.breaker.backends.memory import MemoryBackend as BreakerMemory
from relay_core.catalogue.models import Limits
from relay_core.limits import Limiter
from relay_core.limits.backends.memory import MemoryBackend
from relay_core.limits.daily import daily_window
from relay_core.limits.plan import PACING_MARGIN
from relay_core.metrics.pool import read_pool
from relay_core.settings import Settings
from tests.unit.limits._catalogue import model, provider

NOW = 1_700_000_002.0


@pytest.fixture
async def redis() -> AsyncIterator[fakeredis.FakeAsyncRedis]:
    client = fakeredis.FakeAsyncRedis()
    yield client
    await client.aclose()


async def test_each_limit_says_how_much_is_left_and_when_it_is_whole_again(redis) -> None:
    prov = provider(Limits(rpm=60, rpd=100), model("m1", Limits(rpm=30)), model("m2"))
    settings = Settings(key_prefix="t")
    limiter = Limiter(MemoryBackend(), "t")
    breaker = Breaker.from_settings(settings, BreakerMemory())
    plan = limiter.plan(prov, prov.models[0], NOW)
    assert (await limiter.acquire(plan, 0, "lease", NOW)).granted
    for _ in range(settings.breaker_failures):
        await breaker.record(breaker.key("prov", "m1"), False, NOW)

    view = await read_pool(redis, "t", [prov], limiter, breaker, now=NOW + 0.25)

    (row,) = view.providers
    rpm, rpd = row.limits
    rate = 60 / 60 * (1 - PACING_MARGIN)
    assert (rpm.limit, rpm.capacity) == ("rpm", 1.0)
    assert rpm.rate_per_s == pytest.approx(rate)
    assert rpm.available == pytest.approx(0.25 * rate)
    assert rpm.resets_at == pytest.approx(NOW + 0.25 + (1 - 0.25 * rate) / rate)
    assert (rpd.limit, rpd.available, rpd.capacity) == ("rpd", 99, 100)
    assert rpd.resets_at == daily_window(prov.limits.daily_reset, NOW).resets_at
    assert rpd.rate_per_s is None
    m1, m2 = row.models
    assert (m1.id, m1.breaker, [lv.limit for lv in m1.limits]) == ("m1", "open", ["rpm"])
    assert (m2.id, m2.breaker, m2.limits) == ("m2", "closed", [])
    assert row.breaker == "closed"
    assert (row.queue_depth, row.in_flight, row.recent.requests) == (0, 0, 0)
    assert view.workers == []
