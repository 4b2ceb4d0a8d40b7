"""LiveCache: one read of the limits and breakers ranks a moment of requests (issue 14, 15)."""

from __future__ import annotations

import time

from relay_core.breaker import Breaker
from relay_core.breaker import MemoryBackend as BreakerMemory
from relay_core.catalogue.models import ModelConfig, ProviderConfig
from relay_core.limits import Limiter, MemoryBackend
from relay_core.routing.live import LiveCache
from relay_core.routing.ranking import Ranker
from relay_core.routing.targets import Target
from relay_core.settings import Mode, Settings, Strategy


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def target(name: str, rpm: int = 60) -> Target:
    provider = ProviderConfig(
        name=name,
        api="openai",
        base_url=f"https://{name}.example.com/v1",
        limits={"rpm": rpm},
        models=[ModelConfig(id="m")],
    )
    return Target(provider, provider.models[0])


def parts() -> tuple[Limiter, Breaker]:
    settings = Settings(key_prefix="t")
    return Limiter(MemoryBackend(), "t"), Breaker.from_settings(settings, BreakerMemory())


async def test_a_snapshot_serves_until_its_ttl_then_is_read_again() -> None:
    limiter, breaker = parts()
    clock = Clock()
    cache = LiveCache(limiter, breaker, ttl_s=0.25, clock=clock)
    a = target("a")
    first = (await cache.states([a]))[a.key]
    plan = limiter.plan(a.provider, a.model, time.time())
    for i in range(30):  # someone else spends half of a's minute
        await limiter.acquire(plan, 0, f"lease{i}", time.time())
    clock.now = 0.2
    assert (await cache.states([a]))[a.key] == first  # not read again within the TTL
    clock.now = 0.25
    fresh = (await cache.states([a]))[a.key]
    assert fresh.headroom < first.headroom - 0.4


async def test_each_request_sent_lowers_its_targets_headroom_until_the_next_read() -> None:
    limiter, breaker = parts()
    cache = LiveCache(limiter, breaker, ttl_s=60, clock=Clock())
    a, b = target("a", rpm=60), target("b", rpm=60)
    ranker = Ranker(Strategy.least_loaded, Mode.free)
    picks = []
    for _ in range(6):
        ranked = ranker.rank([a, b], await cache.states([a, b]))
        cache.sent(ranked[0])
        picks.append(ranked[0].provider.name)
    # Without the local count every request of the snapshot would go to the same one.
    assert sorted(picks) == ["a", "a", "a", "b", "b", "b"]


async def test_a_ttl_of_zero_reads_for_every_request() -> None:
    limiter, breaker = parts()
    cache = LiveCache(limiter, breaker, ttl_s=0, clock=Clock())
    a = target("a")
    before = (await cache.states([a]))[a.key]
    plan = limiter.plan(a.provider, a.model, time.time())
    await limiter.acquire(plan, 0, "one", time.time())
    assert (await cache.states([a]))[a.key].headroom < before.headroom
