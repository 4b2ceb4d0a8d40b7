"""Added latency and CPU per request through the farm, versus calling the simulator directly.

    .venv/bin/python -m bench.farm_latency [--requests 300] [--concurrent 50] [--workers 1]

One simulated openai-family provider answering after 50 ms, no rate limits; one API process
and ``--workers`` worker processes (threads pool; ``make bench`` runs two). A second farm puts
ten such providers behind ``meta-model``: every request is ranked over ten candidates on the
farm's live state (the row users of the pool meet). Sequential latency
is measured with direct and farm requests taking turns, so that a drift in the machine's speed
weighs on both sides alike (measured one block after the other, the same code gave 6.3 to
8.5 ms from run to run on the 2-core box). CPU per request counts the API and every worker,
over a farm-only run. The concurrent run is measured after a warm-up at full width
(connections open, worker threads started): the steady state, not the first second.
Prints and returns a JSON-able dict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx

from bench.harness import Farm, farm, percentile, provider

UPSTREAM_MS = 50.0


TEN = 10  # providers behind meta-model in the second row


def body(i: int, model: str = "chat") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": f"latency probe {i}"}]}


async def timed(client: httpx.AsyncClient, url: str, i: int, model: str = "chat") -> float:
    t = time.perf_counter()
    r = await client.post(url, json=body(i, model))
    r.raise_for_status()
    return time.perf_counter() - t


async def sequential(url: str, n: int) -> list[float]:
    async with httpx.AsyncClient(timeout=30) as client:
        await timed(client, url, -1)  # warm the connection
        return [await timed(client, url, i) for i in range(n)]


async def alternating(
    first: str, second: str, n: int, second_model: str = "chat"
) -> tuple[list[float], list[float]]:
    """``n`` requests to each URL, one at a time, taking turns (first, second, first...)."""
    async with httpx.AsyncClient(timeout=30) as client:
        await timed(client, first, -1)  # warm both connections
        await timed(client, second, -1, second_model)
        a: list[float] = []
        b: list[float] = []
        for i in range(n):
            a.append(await timed(client, first, i))
            b.append(await timed(client, second, i, second_model))
        return a, b


def added_by_third(direct: list[float], through: list[float]) -> list[float]:
    """The added p50 over each third of an alternating run: how steady the figure is."""
    k = len(direct) // 3
    return [
        ms(percentile(through[i : i + k], 50) - percentile(direct[i : i + k], 50))
        for i in range(0, 3 * k, k)
    ]


async def concurrent(url: str, n: int, width: int) -> tuple[list[float], float]:
    """``n`` requests, ``width`` at a time. One client per lane: a single httpx client's pool
    is itself a bottleneck near this concurrency, and we measure the server, not the client."""
    clients = [httpx.AsyncClient(timeout=60) for _ in range(width)]
    try:
        for c in clients:  # warm up every connection
            await timed(c, url, -1)
        queue = iter(range(n))
        lat: list[float] = []

        async def lane(client: httpx.AsyncClient) -> None:
            for i in queue:
                lat.append(await timed(client, url, i))

        start = time.perf_counter()
        await asyncio.gather(*(lane(c) for c in clients))
        return lat, time.perf_counter() - start
    finally:
        for c in clients:
            await c.aclose()


def ms(x: float) -> float:
    return round(x * 1000, 2)


def measure(f: Farm, n: int, width: int) -> dict[str, Any]:
    direct_url = f"{f.sim_url}/solo/v1/chat/completions"
    farm_url = f"{f.api_url}/v1/chat/completions"
    farm_procs = ["api", *(p for p in f.procs if p.startswith("worker"))]  # every worker
    direct, through = asyncio.run(alternating(direct_url, farm_url, n))
    cpu0 = f.cpu(*farm_procs)
    asyncio.run(sequential(farm_url, n))
    cpu_seq = (f.cpu(*farm_procs) - cpu0) / n
    d_conc, d_wall = asyncio.run(concurrent(direct_url, n * 2, width))
    # Warm up at full width first (connections, worker threads): steady state is measured.
    asyncio.run(concurrent(farm_url, width * 4, width))
    cpu1 = f.cpu(*farm_procs)
    f_conc, f_wall = asyncio.run(concurrent(farm_url, n * 2, width))
    cpu_conc = (f.cpu(*farm_procs) - cpu1) / (n * 2)
    return {
        "upstream_ms": UPSTREAM_MS,
        "requests": n,
        "sequential": {
            "direct_p50_ms": ms(percentile(direct, 50)),
            "farm_p50_ms": ms(percentile(through, 50)),
            "added_p50_ms": ms(percentile(through, 50) - percentile(direct, 50)),
            "added_p99_ms": ms(percentile(through, 99) - percentile(direct, 99)),
            "added_p50_by_third_ms": added_by_third(direct, through),
            "cpu_ms_per_request": ms(cpu_seq),
        },
        "concurrent": {
            "width": width,
            "direct_p50_ms": ms(percentile(d_conc, 50)),
            "farm_p50_ms": ms(percentile(f_conc, 50)),
            "added_p50_ms": ms(percentile(f_conc, 50) - percentile(d_conc, 50)),
            "added_p99_ms": ms(percentile(f_conc, 99) - percentile(d_conc, 99)),
            "direct_rps": round(n * 2 / d_wall, 1),
            "farm_rps": round(n * 2 / f_wall, 1),
            "cpu_ms_per_request": ms(cpu_conc),
        },
    }


def measure_meta(f: Farm, n: int) -> dict[str, Any]:
    """Sequential added latency of ``meta-model`` over ten providers (every request ranks
    ten candidates on the farm's live state), against calling one of them directly."""
    direct_url = f"{f.sim_url}/p0/v1/chat/completions"
    farm_url = f"{f.api_url}/v1/chat/completions"
    direct, through = asyncio.run(alternating(direct_url, farm_url, n, "meta-model"))
    return {
        "providers": TEN,
        "direct_p50_ms": ms(percentile(direct, 50)),
        "farm_p50_ms": ms(percentile(through, 50)),
        "added_p50_ms": ms(percentile(through, 50) - percentile(direct, 50)),
        "added_p99_ms": ms(percentile(through, 99) - percentile(direct, 99)),
        "added_p50_by_third_ms": added_by_third(direct, through),
    }


def ten_providers(url: str) -> list[dict[str, Any]]:
    return [provider(f"p{i}", "openai", url) for i in range(TEN)]


def run(n: int = 300, width: int = 50, workers: int = 1) -> dict[str, Any]:
    with farm(lambda url: [provider("solo", "openai", url)], workers=workers) as f:
        f.sim("solo", latency_ms=UPSTREAM_MS)
        result = measure(f, n, width)
    with farm(ten_providers, workers=workers) as f:
        for i in range(TEN):
            f.sim(f"p{i}", latency_ms=UPSTREAM_MS)
        result["meta_model"] = measure_meta(f, n)
    result["worker_processes"] = workers
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(run(args.requests, args.concurrent, args.workers), indent=2))


if __name__ == "__main__":
    main()
