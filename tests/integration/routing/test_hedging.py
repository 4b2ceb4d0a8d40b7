"""Hedged requests end to end (issue 16, item 7): when the first-ranked provider straggles,
a hedged request is answered by the other one, each client gets exactly one answer (its
own), and the budget caps the hedges."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from relay_core.dispatch.hedge import MAX_CREDIT
from tests.support.farm import Farm, farm_factory, model, sim_provider

pytestmark = pytest.mark.integration

WARM = 30  # answers that teach Relay the primary's p95 (it needs 10)
STRAGGLING = 30
BUDGET = 0.1
STRAGGLER_MS = 2000


def two_providers(sim_url: str) -> list[dict[str, Any]]:
    """``straggly`` ranks first (twice the weight); ``steady`` serves the same model."""
    found = []
    for name, weight in (("straggly", 2.0), ("steady", 1.0)):
        entry = sim_provider(name, "openai", sim_url, [model(f"{name}-m", aliases=["chat"])])
        found.append({**entry, "weight": weight})
    return found


async def _ask(farm: Farm, texts: list[str], **headers: str) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=farm.url, timeout=30, headers=headers) as http:
        bodies = [{"model": "chat", "messages": [{"role": "user", "content": t}]} for t in texts]
        return list(
            await asyncio.gather(*(http.post("/v1/chat/completions", json=b) for b in bodies))
        )


def _learned_answers(farm: Farm) -> float:
    raw = farm.redis.hgetall(f"{farm.settings.key_prefix}:outcomes:chat")
    fields = {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}
    return sum(v for k, v in fields.items() if k.startswith("straggly/straggly-m|h"))


def _wait_learned(farm: Farm) -> None:
    deadline = time.monotonic() + 10
    while _learned_answers(farm) < WARM / 2:
        assert time.monotonic() < deadline, "the answers were never counted"
        time.sleep(0.05)  # polling a condition, bounded by the deadline above


def test_a_straggler_is_hedged_to_the_other_provider_within_the_budget(tmp_path: Path) -> None:
    with farm_factory(tmp_path, two_providers) as make:
        farm = make(concurrency=STRAGGLING + 16, hedging=True, hedge_budget=BUDGET)
        warm = asyncio.run(_ask(farm, [f"w{i}" for i in range(WARM)]))
        assert {r.headers["x-relay-provider"] for r in warm} == {"straggly"}
        _wait_learned(farm)
        farm.sim("straggly", straggler_rate=1.0, straggler_ms=STRAGGLER_MS)
        before = farm.sim_stats()["providers"]
        texts = [f"s{i}" for i in range(STRAGGLING)]
        answers = asyncio.run(_ask(farm, texts))
        off = asyncio.run(_ask(farm, ["off0", "off1"], **{"x-relay-hedge": "off"}))
        after = farm.sim_stats()["providers"]
    calls = {p: after[p]["requests"] - before[p]["requests"] for p in after}
    for text, r in zip(texts, answers, strict=True):
        assert r.status_code == 200, r.text
        (choice,) = r.json()["choices"]  # one answer, and its own
        assert choice["message"]["content"].endswith(f": {text}")
    hedged = [r for r in answers if r.headers.get("x-relay-hedged") == "true"]
    print(f"\nhedged {len(hedged)} of {STRAGGLING}; upstream calls {calls}")
    assert {r.headers["x-relay-provider"] for r in hedged} == {"steady"}
    assert {r.headers["x-relay-provider"] for r in answers if r not in hedged} == {"straggly"}
    # Every call to steady was a hedge (each beat a 2 s straggler), and each reached a client.
    assert calls == {"steady": len(hedged), "straggly": STRAGGLING + len(off)}
    # The budget: what the warm-up banked, plus its share of the calls since.
    assert 1 <= len(hedged) <= min(MAX_CREDIT, BUDGET * WARM) + BUDGET * STRAGGLING
    assert [r.headers["x-relay-provider"] for r in off] == ["straggly", "straggly"]
    assert all("x-relay-hedged" not in r.headers for r in off)


async def _stream(farm: Farm, texts: list[str]) -> list[tuple[str, str]]:
    """Stream each text at once: (the provider that streamed it, its text) per request."""
    async with httpx.AsyncClient(base_url=farm.url, timeout=30) as http:

        async def one(text: str) -> tuple[str, str]:
            body = {
                "model": "chat",
                "stream": True,
                "messages": [{"role": "user", "content": text}],
            }
            pieces = []
            async with http.stream("POST", "/v1/chat/completions", json=body) as r:
                assert r.status_code == 200
                async for line in r.aiter_lines():
                    if line.startswith("data: {"):
                        for choice in orjson.loads(line[6:])["choices"]:
                            pieces.append(choice["delta"].get("content") or "")
                return r.headers["x-relay-provider"], "".join(pieces)

        return list(await asyncio.gather(*(one(t) for t in texts)))


def test_a_straggling_stream_is_hedged_and_the_first_chunk_wins(tmp_path: Path) -> None:
    with farm_factory(tmp_path, two_providers) as make:
        farm = make(concurrency=STRAGGLING + 16, hedging=True, hedge_budget=BUDGET)
        # The worker learns the primary's time to first chunk from its own streams.
        warm = asyncio.run(_stream(farm, [f"w{i}" for i in range(WARM)]))
        assert {provider for provider, _ in warm} == {"straggly"}
        farm.sim("straggly", straggler_rate=1.0, straggler_ms=STRAGGLER_MS)
        before = farm.sim_stats()["providers"]
        texts = [f"s{i}" for i in range(STRAGGLING)]
        streams = asyncio.run(_stream(farm, texts))
        after = farm.sim_stats()["providers"]
    calls = {p: after[p]["requests"] - before[p]["requests"] for p in after}
    for text, (_, answer) in zip(texts, streams, strict=True):
        assert answer.endswith(f": {text}"), answer  # one answer, its own, not two spliced
    hedged = [p for p, _ in streams if p == "steady"]
    print(f"\nstreams hedged {len(hedged)} of {STRAGGLING}; upstream calls {calls}")
    # Every call to steady was a hedge that beat a 2 s straggler to the first chunk.
    assert calls == {"steady": len(hedged), "straggly": STRAGGLING}
    assert 1 <= len(hedged) <= min(MAX_CREDIT, BUDGET * WARM) + BUDGET * STRAGGLING
