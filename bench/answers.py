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

from bench.harness import farm, percentile, provider

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


def ms(values: list[float], q: float) -> float:
    return round(percentile(values, q) * 1000, 2)


def run(requests: int = 400, hit_count: int = 300) -> dict[str, Any]:
    with farm(providers, workers=1) as f:
        f.sim("b-openai", invalid_json_rate=0.3)
        ok = asyncio.run(repair(f"{f.api_url}/v1/chat/completions", requests))
        stats = f.sim_stats()["providers"]
        calls = sum(p["requests"] for p in stats.values())
        hit, health = hits(f.api_url, hit_count)
    return {
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
    args = parser.parse_args()
    print(json.dumps(run(args.requests, args.hits), indent=2))


if __name__ == "__main__":
    main()
