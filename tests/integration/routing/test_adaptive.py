"""A provider with an unpublished concurrency limit that changes mid-run (issue 16, item 6):
the concurrency Relay learns by AIMD follows it down and back up, for every worker."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.farm import Farm, farm_factory, model, sim_provider

pytestmark = pytest.mark.integration

CLIENTS = 32  # requests in flight at once: more than the largest hidden limit
MAX_REQUESTS = 1200  # per phase: a farm that never learns fails instead of looping
ROUND = 16


def unknown_limit(sim_url: str) -> list[dict[str, Any]]:
    """One provider whose catalogue entry publishes no concurrency and asks Relay to learn it."""
    return [
        sim_provider(
            "pool",
            "openai",
            sim_url,
            [model("pool-m", aliases=["chat"])],
            adaptive_concurrency=True,
        )
    ]


def learned(farm: Farm) -> float:
    raw = farm.redis.hget(f"{farm.settings.key('limits')}:pool:aimd", "limit")
    assert raw is not None, "nothing learned yet"
    return float(raw)


async def _round(http: httpx.AsyncClient, start: int) -> None:
    async def one(i: int) -> None:
        body = {"model": "chat", "messages": [{"role": "user", "content": f"q{start + i}"}]}
        r = await http.post("/v1/chat/completions", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"].endswith(f"q{start + i}")

    gate = asyncio.Semaphore(CLIENTS)

    async def bounded(i: int) -> None:
        async with gate:
            await one(i)

    await asyncio.gather(*(bounded(i) for i in range(ROUND * 4)))


async def _until(farm: Farm, done: Any, sent: list[int]) -> int:
    """Send rounds of requests until ``done(learned)``; how many it took."""
    before = sent[0]
    async with httpx.AsyncClient(base_url=farm.url, timeout=30) as http:
        while sent[0] - before < MAX_REQUESTS:
            await _round(http, sent[0])
            sent[0] += ROUND * 4
            if done(learned(farm)):
                break
    return sent[0] - before


def test_the_learned_concurrency_follows_a_hidden_limit_down_and_up(tmp_path: Path) -> None:
    with farm_factory(tmp_path, unknown_limit) as make:
        farm = make(concurrency=CLIENTS + 8, sim_overrides={"latency_ms": 60})
        farm.sim("pool", concurrency=20)
        sent = [0]
        up = asyncio.run(_until(farm, lambda x: x >= 15, sent))
        assert learned(farm) >= 15, (up, learned(farm))
        farm.sim("pool", concurrency=5)
        down = asyncio.run(_until(farm, lambda x: x <= 6.25, sent))
        assert learned(farm) <= 6.25, (down, learned(farm))
        low = farm.sim_stats()["providers"]["pool"]
        farm.sim("pool", concurrency=20)
        again = asyncio.run(_until(farm, lambda x: x >= 15, sent))
        assert learned(farm) >= 15, (again, learned(farm))
        stats = farm.sim_stats()["providers"]["pool"]
    print(f"\nrequests to learn: up {up}, down {down}, up again {again}; sim {stats}")
    # The simulator never saw more in flight than its largest limit let through, and the
    # 429s it sent were the cap's (Relay's own pacing sent none of any other kind).
    assert low["concurrency_limited"] >= 1
    assert stats["rate_limited"] == stats["concurrency_limited"]
    assert stats["succeeded"] == sent[0]
