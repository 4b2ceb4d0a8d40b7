"""The live snapshot behind ``relay status`` and ``/metrics``, read from a real Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from relay_core.breaker import Breaker, fingerprint
from relay_core.breaker import RedisBackend as BreakerRedis
from relay_core.catalogue.models import Limits, ModelConfig, ProviderConfig
from relay_core.heartbeat import WorkerBeat, beat
from relay_core.limits import Limiter, RedisBackend
from relay_core.metrics import publish_load, read_snapshot
from relay_core.metrics.live import PRIORITY_SEP
from relay_core.settings import Settings

pytestmark = pytest.mark.integration

GROQ = ProviderConfig(
    name="groq",
    api="openai",
    base_url="https://api.groq.com/openai/v1",
    limits=Limits(rpm=60, rpd=100),
    models=[ModelConfig(id="llama", limits=Limits(tpm=1000)), ModelConfig(id="mixtral")],
)
OLLAMA = ProviderConfig(
    name="ollama", api="ollama", base_url="http://127.0.0.1:11434", models=[ModelConfig(id="q")]
)


@pytest.fixture
async def redis() -> AsyncIterator[tuple[Redis, Settings]]:
    settings = Settings(key_prefix=f"rt{uuid.uuid4().hex[:10]}", breaker_failures=1)
    client = Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        yield client, settings
    finally:
        keys = [k async for k in client.scan_iter(match=f"{settings.key_prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_snapshot_reads_queues_load_breakers_limits_and_workers(
    redis: tuple[Redis, Settings],
) -> None:
    client, settings = redis
    prefix = settings.key_prefix
    limiter = Limiter.from_settings(settings, RedisBackend(client))
    breaker = Breaker.from_settings(settings, BreakerRedis(client))
    now = time.time()
    # 3 messages waiting for groq (one of them with a priority), none for ollama.
    await client.lpush(f"{prefix}.groq", b"m1", b"m2")
    await client.lpush(f"{prefix}.groq{PRIORITY_SEP}6", b"m3")
    # Two workers with calls in flight, one heartbeat.
    await publish_load(client, prefix, "w1", {"groq": 2})
    await publish_load(client, prefix, "w2", {"groq": 1, "ollama": 1})
    await beat(client, prefix, WorkerBeat(name="w1", pid=1, providers=["groq"], at=now))
    # One call's tokens taken from groq/llama; the mixtral breaker opened by one failure;
    # ollama's key disabled (it needs none: the fingerprint of "").
    plan = limiter.plan(GROQ, GROQ.models[0], now)
    assert (await limiter.acquire(plan, 200, "lease-1", now)).granted
    permit = await breaker.allow_all(breaker.keys("groq", "mixtral"), now)
    await breaker.record_permit(permit, False, now)
    await breaker.disable("ollama", fingerprint(""), "auth", now)

    snap = await read_snapshot(client, prefix, [GROQ, OLLAMA], limiter, breaker, now=now)

    groq, ollama = snap.providers
    assert (groq.queue_depth, groq.in_flight, ollama.queue_depth, ollama.in_flight) == (3, 3, 0, 1)
    assert groq.breaker == "open"  # one failure opens both breakers the call went through
    assert groq.model_breakers == {"mixtral": "open"}
    assert ollama.breaker == "disabled"
    levels = {(lv.scope, lv.limit): (lv.available, lv.capacity) for lv in groq.levels}
    assert levels[("groq", "rpd")] == (99, 100)
    tpm_left, tpm_size = levels[("groq/llama", "tpm")]
    assert tpm_size == pytest.approx(1000 / 60 * 0.98)
    assert tpm_left < tpm_size  # 200 tokens taken; the bucket holds one second's worth
    assert [w.name for w in snap.workers] == ["w1"]
