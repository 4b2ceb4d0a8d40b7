"""AIMD concurrency against a hidden limit that changes: 20 -> 5 -> 20.

    .venv/bin/python -m bench.aimd [--requests 300]      # or: make bench BENCH_ONLY=aimd

One simulated provider whose catalogue entry publishes no concurrency and says
``adaptive_concurrency: true``; the simulator enforces a concurrency cap (answers take 200 ms,
so the provider, not the farm, is the bottleneck) set through its admin API to 20, then 5,
then 20, ``requests`` each, 40 clients at once. After every answer the learned limit is read
from Redis. Per phase: the requests until the learned limit is within 25 % of the hidden one
(and stays there for the rest of the phase, or the phase's end), and the share of upstream
calls answered 429 over the phase's second half (steady state). Prints a JSON-able dict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import httpx
import redis

from bench.harness import REDIS_URL, Farm, farm

PHASES = (20, 5, 20)
CLIENTS = 40
TOLERANCE = 0.25


def providers(sim_url: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "pool",
            "api": "openai",
            "base_url": f"{sim_url}/pool/v1",
            "timeout_s": 10,
            "limits": {"adaptive_concurrency": True},
            "models": [{"id": "pool-m", "aliases": ["chat"]}],
        }
    ]


def limited(f: Farm) -> int:
    return int(f.sim_stats()["providers"]["pool"]["concurrency_limited"])


def accepted(f: Farm) -> int:
    stats = f.sim_stats()["providers"]["pool"]
    return int(stats["requests"])


async def phase(f: Farm, n: int, start: int) -> dict[str, Any]:
    """``n`` requests, 40 at once; the learned limit after each answer, and the 429s."""
    store = redis.Redis.from_url(REDIS_URL)
    key = f"{f.prefix}:limits:pool:aimd"
    seen: list[float] = []
    half: dict[str, int] = {}
    gate = asyncio.Semaphore(CLIENTS)
    async with httpx.AsyncClient(base_url=f.api_url, timeout=60) as http:

        async def one(i: int) -> None:
            body = {"model": "chat", "messages": [{"role": "user", "content": f"a{start + i}"}]}
            async with gate:
                r = await http.post("/v1/chat/completions", json=body)
                r.raise_for_status()
            raw = store.hget(key, "limit")
            seen.append(float(raw) if isinstance(raw, bytes) else float("nan"))
            if len(seen) == n // 2:
                half.update(limited=limited(f), calls=accepted(f))

        await asyncio.gather(*(one(i) for i in range(n)))
    return {
        "limits": seen,
        "limited_second_half": limited(f) - half["limited"],
        "calls_second_half": accepted(f) - half["calls"],
    }


def settled_after(limits: list[float], hidden: int) -> int | None:
    """Requests until the learned limit is within TOLERANCE of ``hidden`` for good."""
    ok = [abs(x - hidden) <= TOLERANCE * hidden for x in limits]
    for i in range(len(ok)):
        if all(ok[i:]):
            return i + 1
    return None


def run(n: int = 300) -> dict[str, Any]:
    results = []
    with farm(providers, concurrency=CLIENTS + 8) as f:
        f.sim("pool", latency_ms=200)
        for k, hidden in enumerate(PHASES):
            f.sim("pool", concurrency=hidden)
            seen = asyncio.run(phase(f, n, k * n))
            limits = seen["limits"]
            calls = max(1, seen["calls_second_half"])
            results.append(
                {
                    "hidden": hidden,
                    "requests_to_within_25pct": settled_after(limits, hidden),
                    "learned_end": round(limits[-1], 2),
                    "learned_min_max_second_half": [
                        round(min(limits[n // 2 :]), 2),
                        round(max(limits[n // 2 :]), 2),
                    ],
                    "steady_429_share": round(seen["limited_second_half"] / calls, 4),
                }
            )
    return {"requests_per_phase": n, "clients": CLIENTS, "phases": results}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    report = run(parser.parse_args().requests)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
