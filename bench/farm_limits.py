"""Throughput under real limits: does the farm use every free tier to its limit, and no more?

    .venv/bin/python -m bench.farm_limits [--requests 1200] [--concurrent 64]

Four simulated providers (one per API family) whose simulator limits equal the catalogue's
(300, 300, 600, 600 RPM) and are enforced per second (window_s=1). Runs the load twice: all
providers up, then with one 600-RPM provider down for the whole run. Reports the time against
the ideal (requests / pooled rate), client failures, upstream 429s and wrong answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx

from bench.harness import farm, provider

RPMS = {
    "lim-openai": ("openai", 300),
    "lim-gemini": ("gemini", 300),
    "lim-claude": ("anthropic", 600),
    "lim-ollama": ("ollama", 600),
}


def providers(url: str) -> list[dict[str, Any]]:
    return [provider(name, api, url, rpm=rpm) for name, (api, rpm) in RPMS.items()]


async def load(api_url: str, n: int, width: int) -> dict[str, Any]:
    clients = [httpx.AsyncClient(timeout=300) for _ in range(width)]
    todo = iter(range(n))
    failures: list[int] = []
    wrong: list[int] = []
    served: dict[str, int] = {}

    async def lane(client: httpx.AsyncClient) -> None:
        for i in todo:
            r = await client.post(
                f"{api_url}/v1/chat/completions",
                json={"model": "chat", "messages": [{"role": "user", "content": f"limits {i}"}]},
            )
            if r.status_code != 200:
                failures.append(r.status_code)
                continue
            if not r.json()["choices"][0]["message"]["content"].endswith(f": limits {i}"):
                wrong.append(i)
            p = r.headers["x-relay-provider"]
            served[p] = served.get(p, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(lane(c) for c in clients))
    wall = time.perf_counter() - start
    for c in clients:
        await c.aclose()
    return {"wall_s": wall, "failures": failures, "wrong_answers": len(wrong), "served": served}


def scenario(n: int, width: int, down: str | None, workers: int = 1) -> dict[str, Any]:
    with farm(providers, window_s=1, concurrency=64, workers=workers) as f:
        if down:
            f.sim(down, outage=True)
        f.sim_reset()
        result = asyncio.run(load(f.api_url, n, width))
        stats = f.sim_stats()
    rpm = sum(r for name, (_, r) in RPMS.items() if name != down)
    ideal = n / (rpm / 60)
    throttled = sum(p["rate_limited"] for p in stats["providers"].values())
    return {
        "down": down,
        "requests": n,
        "pooled_rpm": rpm,
        "ideal_s": round(ideal, 1),
        "wall_s": round(result["wall_s"], 1),
        "of_ceiling_pct": round(100 * ideal / result["wall_s"], 1),
        "client_failures": len(result["failures"]),
        "wrong_answers": result["wrong_answers"],
        "upstream_429": throttled,
        "upstream_429_pct": round(100 * throttled / n, 2),
        "served": result["served"],
    }


def run(n: int = 1200, width: int = 64, workers: int = 1) -> dict[str, Any]:
    return {
        "workers": workers,
        "all_up": scenario(n, width, None, workers),
        "one_down": scenario(n, width, "lim-claude", workers),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1200)
    parser.add_argument("--concurrent", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    args = parser.parse_args()
    print(json.dumps(run(args.requests, args.concurrent, args.workers), indent=2))


if __name__ == "__main__":
    main()
