"""Load: 1,000 concurrent synchronous chat requests held without errors, with bounded memory.

    .venv/bin/python -m bench.load [--requests 1000] [--latency-ms 1000] [--workers 1]
        [--rounds 2]

One simulated provider answering after ``--latency-ms`` (no rate limits), so that requests
overlap: all ``--requests`` are sent at once, each on its own connection, and the API holds
them while the workers drain them. This is done ``--rounds`` times on the same farm; memory is
bounded if a later round peaks no higher than the first. The API's and the workers' resident
memory is sampled every 50 ms. Figures, not a timed assertion: status codes, client errors,
latency percentiles, peak RSS per round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections import Counter
from typing import Any

import httpx

from bench.harness import Farm, farm, percentile, provider, rss_mb

PER_CLIENT = 50  # connections per httpx client: one pool of 1,000 is slow on the client side


class Memory(threading.Thread):
    """Resident memory of the API and of the workers (summed) every 50 ms, and the number of
    requests the client has outstanding; a point every ``every`` samples is kept for plots."""

    def __init__(self, f: Farm, workers: int, every: int = 5) -> None:
        super().__init__(daemon=True)
        self.api, self.workers = f.pid("api"), [f.pid(f"worker{i}") for i in range(workers)]
        self.every, self.stop, self.in_flight = every, threading.Event(), 0
        self.peak_api = self.peak_workers = 0.0
        self.series: dict[str, list[float]] = {
            k: [] for k in ("t", "api_mb", "workers_mb", "in_flight")
        }
        self.start_t = time.perf_counter()

    def reset_peaks(self) -> None:
        self.peak_api = self.peak_workers = 0.0

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            api, workers = rss_mb(self.api), sum(rss_mb(p) for p in self.workers)
            self.peak_api, self.peak_workers = (
                max(self.peak_api, api),
                max(self.peak_workers, workers),
            )
            if i % self.every == 0:
                point = (time.perf_counter() - self.start_t, api, workers, self.in_flight)
                for k, v in zip(self.series, point, strict=True):
                    self.series[k].append(round(v, 2))
            i += 1
            time.sleep(0.05)


async def wave(api: str, n: int, memory: Memory) -> dict[str, Any]:
    """``n`` requests sent at once; their outcomes and latencies."""
    clients = [
        httpx.AsyncClient(
            base_url=api, timeout=300, limits=httpx.Limits(max_connections=PER_CLIENT)
        )
        for _ in range(-(-n // PER_CLIENT))
    ]
    outcomes: Counter[str] = Counter()
    lat: list[float] = []

    async def one(i: int) -> None:
        memory.in_flight += 1
        t = time.perf_counter()
        try:
            r = await clients[i // PER_CLIENT].post(
                "/v1/chat/completions",
                json={"model": "chat", "messages": [{"role": "user", "content": f"load {i}"}]},
            )
            ok = r.status_code == 200 and r.json()["choices"][0]["message"]["content"].endswith(
                f": load {i}"
            )
            outcomes[str(r.status_code) if ok or r.status_code != 200 else "wrong_answer"] += 1
            if ok:
                lat.append(time.perf_counter() - t)
        except httpx.HTTPError as exc:
            outcomes[type(exc).__name__] += 1
        finally:
            memory.in_flight -= 1

    start = time.perf_counter()
    try:
        await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        for c in clients:
            await c.aclose()
    wall = time.perf_counter() - start
    return {
        "wall_s": round(wall, 2),
        "outcomes": dict(outcomes),
        "errors": n - outcomes["200"],
        **{f"p{q}_ms": round(percentile(lat, q) * 1000, 1) for q in (50, 90, 99)},
        "max_ms": round(max(lat, default=float("nan")) * 1000, 1),
    }


def measure(f: Farm, n: int, workers: int, rounds: int) -> dict[str, Any]:
    memory = Memory(f, workers)
    idle_api, idle_workers = rss_mb(memory.api), sum(rss_mb(p) for p in memory.workers)
    memory.start()
    waves = []
    for _ in range(rounds):
        memory.reset_peaks()
        result = asyncio.run(wave(f.api_url, n, memory))
        result["api_rss_mb_peak"] = round(memory.peak_api, 1)
        result["workers_rss_mb_peak"] = round(memory.peak_workers, 1)
        waves.append(result)
    memory.stop.set()
    memory.join()
    stats = f.sim_stats()["totals"]
    return {
        "api_rss_mb_idle": round(idle_api, 1),
        "workers_rss_mb_idle": round(idle_workers, 1),
        "rounds": waves,
        "errors": sum(w["errors"] for w in waves),
        "upstream_max_in_flight": stats["max_in_flight"],
        "series": memory.series,
    }


def run(
    n: int = 1000, latency_ms: float = 1000.0, workers: int = 1, rounds: int = 2
) -> dict[str, Any]:
    with farm(lambda url: [provider("solo", "openai", url)], workers=workers) as f:
        f.sim("solo", latency_ms=latency_ms)
        report = measure(f, n, workers, rounds)
    return {"requests": n, "upstream_latency_ms": latency_ms, "workers": workers, **report}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=1000.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    report = run(args.requests, args.latency_ms, args.workers, args.rounds)
    report.pop("series")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
