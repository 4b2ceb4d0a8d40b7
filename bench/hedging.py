"""Hedged requests against stragglers: interactive p99 with hedging off and on.

    .venv/bin/python -m bench.hedging [--requests 400]      # or: make bench BENCH_ONLY=hedging

Two simulated providers serving the same model (``first`` ranks first: twice the weight),
each answering whole in a lognormal 200 ms (sigma 0.25), and 5 % of calls straggling 5 s more
(``straggler_rate``, ``straggler_ms``). One API and one worker process; ``clients`` requests
in flight. Two fresh farms, ``RELAY_HEDGING`` false then true: on each a warm-up teaches
Relay the answer times, then ``requests`` are measured: for a whole answer the time to the
answer (its first token). Then, on the same farm, ``streams`` streamed requests after a
streamed warm-up (the worker learns each target's time to first chunk): the time to the first
chunk with content, as the client reads it. Prints a JSON-able dict: per series the p50 / p99
time, upstream calls per request, and hedges (whole answers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx

from bench.harness import Farm, farm, percentile, provider

STRAGGLERS = {
    "latency_median_ms": 200,
    "latency_sigma": 0.25,
    "straggler_rate": 0.05,
    "straggler_ms": 5000,
}
WARM = 60


def providers(sim_url: str) -> list[dict[str, Any]]:
    return [provider("first", "openai", sim_url, weight=2.0), provider("second", "openai", sim_url)]


async def series(url: str, n: int, clients: int, tag: str) -> list[tuple[float, bool]]:
    """(seconds to the answer, hedged) per request."""
    gate = asyncio.Semaphore(clients)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:

        async def one(i: int) -> tuple[float, bool]:
            body = {"model": "chat", "messages": [{"role": "user", "content": f"{tag} {i}"}]}
            async with gate:
                start = time.perf_counter()
                r = await http.post("/v1/chat/completions", json=body)
                r.raise_for_status()
                return time.perf_counter() - start, r.headers.get("x-relay-hedged") == "true"

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def upstream_calls(f: Farm) -> int:
    return sum(p["requests"] for p in f.sim_stats()["providers"].values())


def measure(f: Farm, n: int, clients: int) -> dict[str, Any]:
    before = upstream_calls(f)
    out = asyncio.run(series(f.api_url, n, clients, "measured"))
    calls = upstream_calls(f) - before
    times = [t for t, _ in out]
    return {
        "p50_ms": round(percentile(times, 50) * 1000, 1),
        "p99_ms": round(percentile(times, 99) * 1000, 1),
        "upstream_calls_per_request": round(calls / n, 4),
        "hedged": sum(h for _, h in out),
    }


async def first_chunks(url: str, n: int, clients: int, tag: str) -> list[float]:
    """Seconds to the first chunk with content, per streamed request."""
    gate = asyncio.Semaphore(clients)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:

        async def one(i: int) -> float:
            body = {
                "model": "chat",
                "stream": True,
                "messages": [{"role": "user", "content": f"{tag} {i}"}],
            }
            first: float | None = None
            async with gate:
                start = time.perf_counter()
                async with http.stream("POST", "/v1/chat/completions", json=body) as r:
                    r.raise_for_status()
                    async for line in r.aiter_lines():
                        if first is None and _has_content(line):
                            first = time.perf_counter() - start
            return float("nan") if first is None else first

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def _has_content(line: str) -> bool:
    if not line.startswith("data: {"):
        return False
    choices = json.loads(line[6:]).get("choices") or []
    return any((c.get("delta") or {}).get("content") for c in choices)


def measure_streams(f: Farm, n: int, clients: int) -> dict[str, Any]:
    before = upstream_calls(f)
    times = asyncio.run(first_chunks(f.api_url, n, clients, "streamed"))
    calls = upstream_calls(f) - before
    return {
        "ttft_p50_ms": round(percentile(times, 50) * 1000, 1),
        "ttft_p99_ms": round(percentile(times, 99) * 1000, 1),
        "upstream_calls_per_request": round(calls / n, 4),
    }


def farm_series(
    n: int, clients: int, hedging: bool, streams: int = 0, **extra_env: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A fresh farm with hedging on or off: a warm-up, then ``n`` whole answers measured;
    then (``streams`` > 0) a streamed warm-up and ``streams`` streams measured."""
    env = {"RELAY_HEDGING": "true" if hedging else "false", **extra_env}
    with farm(providers, concurrency=64, extra_env=env) as f:
        for name in ("first", "second"):
            f.sim(name, **STRAGGLERS)
        asyncio.run(series(f.api_url, WARM, clients, "warm-up"))
        whole = measure(f, n, clients)
        if not streams:
            return whole, None
        asyncio.run(first_chunks(f.api_url, WARM, clients, "stream warm-up"))
        return whole, measure_streams(f, streams, clients)


def run(n: int = 400, clients: int = 8, streams: int = 0, **extra_env: str) -> dict[str, Any]:
    off, stream_off = farm_series(n, clients, hedging=False, streams=streams)
    on, stream_on = farm_series(n, clients, hedging=True, streams=streams, **extra_env)
    out: dict[str, Any] = {
        "requests": n,
        "clients": clients,
        "stragglers": STRAGGLERS,
        "off": off,
        "on": on,
        "p99_ratio": round(on["p99_ms"] / off["p99_ms"], 3),
        "extra_upstream_calls": round(
            on["upstream_calls_per_request"] - off["upstream_calls_per_request"], 4
        ),
    }
    if stream_off is not None and stream_on is not None:
        out["streams"] = {
            "requests": streams,
            "off": stream_off,
            "on": stream_on,
            "ttft_p99_ratio": round(stream_on["ttft_p99_ms"] / stream_off["ttft_p99_ms"], 3),
            "extra_upstream_calls": round(
                stream_on["upstream_calls_per_request"] - stream_off["upstream_calls_per_request"],
                4,
            ),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--streams", type=int, default=400)
    args = parser.parse_args()
    print(json.dumps(run(args.requests, streams=args.streams), indent=2))


if __name__ == "__main__":
    main()
