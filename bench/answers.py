"""Answers (docs/answers.md): JSON repair against a provider that answers prose 30 % of the
time, and what an exact-cache hit costs.

    .venv/bin/python -m bench.answers [--requests 400] [--hits 300]

Repair: four providers behind ``chat`` (one per API family, 1,200 RPM each, so the load
spreads over them), one of them (``b-openai``)
answering prose for 30 % of JSON-asked requests (``invalid_json_rate``); ``--requests``
json_schema requests, 16 at a time. Counts the answers that are valid JSON of the schema
(checked client-side with jsonschema) and the upstream calls the simulator saw, per request.

Cache: one deterministic request answered once, then ``--hits`` identical requests one at a
time (all hits), taking turns with the same request carrying a malformed ``x-relay-cache-ttl``
(the API's own overhead for a chat request: HTTP, body parsing and validation, an error
rendered; no Redis); p50/p99 of each and the difference.

Near-duplicates: ``--near-entries`` answers stored (in-process, straight on Redis), then 2,000
lookups of near-duplicates of them (another date): the keys' computation, the pipelined read
and the hit's counts, p50/p99, beside a bare Redis GET taking turns with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx
import jsonschema
import orjson

from bench.harness import REDIS_URL, farm, percentile, provider

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
TTL = "x-relay-cache-ttl"
FORMAT = {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}}
FAMILIES = [
    ("a-gemini", "gemini"),
    ("b-openai", "openai"),
    ("c-claude", "anthropic"),
    ("d-ollama", "ollama"),
]


def providers(sim_url: str) -> list[dict[str, Any]]:
    return [provider(name, api, sim_url, rpm=1200) for name, api in FAMILIES]


def valid(r: httpx.Response) -> bool:
    if r.status_code != 200:
        return False
    try:
        jsonschema.validate(orjson.loads(r.json()["choices"][0]["message"]["content"]), SCHEMA)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


async def repair(url: str, n: int) -> list[bool]:
    gate = asyncio.Semaphore(16)

    async def one(client: httpx.AsyncClient, i: int) -> bool:
        body = {
            "model": "chat",
            "messages": [{"role": "user", "content": f"person {i}"}],
            "response_format": FORMAT,
        }
        async with gate:
            return valid(await client.post(url, json=body))

    async with httpx.AsyncClient(timeout=60) as client:
        return list(await asyncio.gather(*(one(client, i) for i in range(n))))


def hits(api: str, n: int) -> tuple[list[float], list[float]]:
    body = {"model": "chat", "messages": [{"role": "user", "content": "2+2?"}], "temperature": 0}
    hit, health = [], []
    with httpx.Client(base_url=api, timeout=30) as http:
        assert http.post("/v1/chat/completions", json=body).headers["x-relay-cache"] == "miss"
        for _ in range(n):
            t = time.perf_counter()
            r = http.post("/v1/chat/completions", json=body)
            hit.append(time.perf_counter() - t)
            assert r.headers["x-relay-cache"] == "hit"
            t = time.perf_counter()
            r = http.post("/v1/chat/completions", json=body, headers={TTL: "x"})
            health.append(time.perf_counter() - t)
            assert r.status_code == 400
    return hit, health


async def near_lookups(entries: int, lookups: int) -> tuple[list[float], list[float]]:
    """Time ``lookups`` near-duplicate lookups (key and the Redis read) with ``entries``
    answers stored, each near-duplicate of a stored one."""
    from redis.asyncio import Redis

    from relay_core.answers.cache import AnswerCache
    from relay_core.answers.policy import cache_keys, cache_policy
    from relay_core.dispatch.envelope import Reply
    from relay_core.schemas.chat import ChatCompletion, ChatCompletionRequest
    from relay_core.settings import Settings

    settings = Settings(key_prefix=f"benchnear{time.time_ns()}")
    redis = Redis.from_url(REDIS_URL)
    cache = AnswerCache.from_settings(redis, settings)
    body = ChatCompletion.model_validate(
        {"model": "m", "choices": [{"message": {"content": "an answer"}}]}
    )
    reply = Reply(id="r", ok=True, completion=body, provider="p", model="m")

    def request(i: int, day: int) -> ChatCompletionRequest:
        text = f"Today is 2024-05-{day:02d}. Summarize ticket INV-{20000 + i} about topic {i}."
        return ChatCompletionRequest.model_validate(
            {"model": "chat", "messages": [{"role": "user", "content": text}], "temperature": 0}
        )

    try:
        policy = cache_policy(request(0, 1), settings, near="on")
        for start in range(0, entries, 1000):
            for i in range(start, min(entries, start + 1000)):
                await cache.put("o", cache_keys(request(i, 1), settings, policy), reply, 600, "b")
        took: list[float] = []
        plain: list[float] = []  # one bare GET, taking turns: the box's own Redis round trip
        for j in range(lookups):
            req = request(j * 7 % entries, 2)  # another day: a near-duplicate
            t = time.perf_counter()
            found = await cache.get("o", cache_keys(req, settings, policy), "b")
            took.append(time.perf_counter() - t)
            assert found is not None and found.match == "near"
            t = time.perf_counter()
            await redis.get(f"{settings.key_prefix}:nothing")
            plain.append(time.perf_counter() - t)
        return took, plain
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{settings.key_prefix}*", count=5000)]
        for start in range(0, len(keys), 5000):
            await redis.delete(*keys[start : start + 5000])
        await redis.aclose()


def ms(values: list[float], q: float) -> float:
    return round(percentile(values, q) * 1000, 2)


def run(requests: int = 400, hit_count: int = 300, near_entries: int = 100_000) -> dict[str, Any]:
    with farm(providers, workers=1) as f:
        f.sim("b-openai", invalid_json_rate=0.3)
        ok = asyncio.run(repair(f"{f.api_url}/v1/chat/completions", requests))
        stats = f.sim_stats()["providers"]
        calls = sum(p["requests"] for p in stats.values())
        hit, health = hits(f.api_url, hit_count)
    near, plain = asyncio.run(near_lookups(near_entries, 2000)) if near_entries else ([], [])
    return {
        "near_lookup_ms": {"entries": near_entries, "p50": ms(near, 50), "p99": ms(near, 99)},
        "redis_get_ms": {"p50": ms(plain, 50), "p99": ms(plain, 99)},
        "repair": {
            "requests": requests,
            "valid_share": round(sum(ok) / requests, 4),
            "upstream_calls_per_request": round(calls / requests, 3),
            "prose_answers": stats["b-openai"]["invalid_json"],
            "calls_by_provider": {name: p["requests"] for name, p in stats.items()},
        },
        "cache_hit_ms": {"p50": ms(hit, 50), "p99": ms(hit, 99)},
        "api_overhead_ms": {"p50": ms(health, 50), "p99": ms(health, 99)},
        "hit_over_api_ms": {
            "p50": round(ms(hit, 50) - ms(health, 50), 2),
            "p99": round(ms(hit, 99) - ms(health, 99), 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--hits", type=int, default=300)
    parser.add_argument("--near-entries", type=int, default=100_000)
    args = parser.parse_args()
    print(json.dumps(run(args.requests, args.hits, args.near_entries), indent=2))


if __name__ == "__main__":
    main()
