"""How fast one worker process drains its queue, and its CPU per task, without the API.

    .venv/bin/python -m bench.worker_drain [--tasks 500] [--latency-ms 0] [--concurrency 64]

Tasks are published straight onto the provider queue (as the API does), then the simulator's
counters are watched until every one was answered. A first 100 tasks warm the worker up (imports,
connections) and are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import redis.asyncio as aredis

from bench.harness import REDIS_URL, farm, provider
from relay_core.dispatch.envelope import Candidate, Envelope
from relay_core.dispatch.publish import publish_envelope

WARM_UP = 100  # tasks drained first and not counted (first imports, connections, caches)


async def push_and_wait(f: Any, r: aredis.Redis, n: int, done_before: int) -> dict[str, Any]:
    """Publish ``n`` tasks, then wait until the simulator answered them all."""
    for i in range(n):
        env = Envelope(
            id=uuid.uuid4().hex,
            request={"model": "chat", "messages": [{"role": "user", "content": f"d{i}"}]},
            candidates=[Candidate(provider="solo", model="solo-m")],
            deadline=time.time() + 300,
        )
        await publish_envelope(r, f.prefix, env)
    async with httpx.AsyncClient() as http:
        while True:
            stats: dict[str, Any] = (await http.get(f"{f.sim_url}/_sim/stats")).json()["totals"]
            if stats["succeeded"] >= done_before + n:
                return stats
            await asyncio.sleep(0.05)


async def drain(f: Any, n: int) -> dict[str, Any]:
    r = aredis.Redis.from_url(REDIS_URL)
    while not [k async for k in r.scan_iter(match=f"{f.prefix}:worker:*")]:
        await asyncio.sleep(0.1)  # until the worker's first heartbeat
    await push_and_wait(f, r, WARM_UP, 0)
    cpu0 = f.cpu("worker0")
    start = time.perf_counter()
    stats = await push_and_wait(f, r, n, WARM_UP)
    wall = time.perf_counter() - start
    await r.aclose()
    return {
        "tasks": n,
        "tasks_per_s": round(n / wall, 1),
        "cpu_ms_per_task": round((f.cpu("worker0") - cpu0) / n * 1000, 2),
        "max_in_flight_upstream": stats["max_in_flight"],
    }


def run(n: int = 500, latency_ms: float = 0, concurrency: int = 64) -> dict[str, Any]:
    with farm(
        lambda url: [provider("solo", "openai", url)], with_api=False, concurrency=concurrency
    ) as f:
        f.sim("solo", latency_ms=latency_ms)
        result = asyncio.run(drain(f, n))
    return {"latency_ms": latency_ms, "concurrency": concurrency, **result}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(run(args.tasks, args.latency_ms, args.concurrency), indent=2))


if __name__ == "__main__":
    main()
