"""Time to first token: streaming through the farm versus streaming from the simulator directly.

    .venv/bin/python -m bench.ttft [--requests 200] [--chunk-delay-ms 20]

One simulated openai-family provider streaming 16-character chunks ``chunk_delay_ms`` apart, no
rate limits; one API process and one worker process (threads pool). Time to first token is the
time from sending the request to receiving the first SSE event whose delta carries content
(the role-only opening chunk does not count). Requests are sequential, over one warm
connection. For reference, the same number of non-streaming requests measures the farm's
dispatch overhead alone. Prints a JSON-able dict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx
import orjson

from bench.harness import farm, percentile, provider


def body(i: int, stream: bool = True) -> dict[str, Any]:
    return {
        "model": "chat",
        "stream": stream,
        "messages": [{"role": "user", "content": f"time to first token, probe {i}"}],
    }


async def ttft(client: httpx.AsyncClient, url: str, i: int) -> tuple[float, float]:
    """(time to first content token, time to the end of the stream)."""
    start = time.perf_counter()
    first = None
    async with client.stream("POST", url, json=body(i)) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if first is None and line.startswith("data: {"):
                choices = orjson.loads(line[6:]).get("choices") or [{}]
                if choices[0].get("delta", {}).get("content"):
                    first = time.perf_counter() - start
    if first is None:
        raise RuntimeError("the stream carried no content")
    return first, time.perf_counter() - start


async def series(url: str, n: int) -> tuple[list[float], list[float]]:
    async with httpx.AsyncClient(timeout=30) as client:
        for i in range(5):  # warm the connection and both processes
            await ttft(client, url, -1 - i)
        firsts, totals = [], []
        for i in range(n):
            first, total = await ttft(client, url, i)
            firsts.append(first)
            totals.append(total)
        return firsts, totals


async def whole(url: str, n: int) -> list[float]:
    """Non-streaming round trips (the farm's dispatch overhead, for reference)."""
    async with httpx.AsyncClient(timeout=30) as client:
        out = []
        for i in range(-5, n):
            start = time.perf_counter()
            r = await client.post(url, json=body(i, stream=False))
            r.raise_for_status()
            if i >= 0:
                out.append(time.perf_counter() - start)
        return out


def ms(x: float) -> float:
    return round(x * 1000, 2)


def summary(direct: list[float], through: list[float]) -> dict[str, float]:
    return {
        "direct_p50_ms": ms(percentile(direct, 50)),
        "direct_p99_ms": ms(percentile(direct, 99)),
        "farm_p50_ms": ms(percentile(through, 50)),
        "farm_p99_ms": ms(percentile(through, 99)),
        "added_p50_ms": ms(percentile(through, 50) - percentile(direct, 50)),
        "added_p99_ms": ms(percentile(through, 99) - percentile(direct, 99)),
    }


def run(n: int = 200, chunk_delay_ms: float = 20.0) -> dict[str, Any]:
    with farm(lambda url: [provider("solo", "openai", url)]) as f:
        f.sim("solo", chunk_delay_ms=chunk_delay_ms)
        direct_first, direct_total = asyncio.run(series(f"{f.sim_url}/solo/v1/chat/completions", n))
        farm_first, farm_total = asyncio.run(series(f"{f.api_url}/v1/chat/completions", n))
        direct_whole = asyncio.run(whole(f"{f.sim_url}/solo/v1/chat/completions", n))
        farm_whole = asyncio.run(whole(f"{f.api_url}/v1/chat/completions", n))
    return {
        "requests": n,
        "chunk_delay_ms": chunk_delay_ms,
        "time_to_first_token": summary(direct_first, farm_first),
        "whole_stream": summary(direct_total, farm_total),
        "non_streaming_reference": summary(direct_whole, farm_whole),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--chunk-delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    print(json.dumps(run(args.requests, args.chunk_delay_ms), indent=2))


if __name__ == "__main__":
    main()
