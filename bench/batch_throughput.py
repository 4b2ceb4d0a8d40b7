"""Batch throughput against a known ceiling: are the pooled free tiers used to their limit?

    .venv/bin/python -m bench.batch_throughput [--lines 10000] [--workers 2]
        [--interactive-rps 0]

Four simulated providers, one per API family, whose simulator limits equal the catalogue's and
are enforced per second (window_s=1); their RPMs sum to the ceiling. One API process and
``--workers`` worker processes. The batch is uploaded, created and polled over HTTP; the
output file is then checked: every ``custom_id`` exactly once, each with its own answer.
With ``--interactive-rps`` a steady trickle of interactive chat requests runs beside the
batch, and their latency is compared with the same trickle on the idle farm.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.harness import Farm, farm, percentile, provider

RPMS = {
    "bt-openai": ("openai", 600),
    "bt-gemini": ("gemini", 600),
    "bt-claude": ("anthropic", 600),
    "bt-ollama": ("ollama", 600),
}


def providers(url: str) -> list[dict[str, Any]]:
    return [provider(name, api, url, rpm=rpm) for name, (api, rpm) in RPMS.items()]


def batch_file(n: int) -> bytes:
    lines = (
        {
            "custom_id": f"q{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "chat", "messages": [{"role": "user", "content": f"bench {i}"}]},
        }
        for i in range(n)
    )
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


def run_batch(api: str, n: int) -> dict[str, Any]:
    with httpx.Client(base_url=api, timeout=300) as http:
        up = http.post(
            "/v1/files", files={"file": ("b.jsonl", batch_file(n))}, data={"purpose": "batch"}
        )
        up.raise_for_status()
        started = time.perf_counter()
        batch = http.post(
            "/v1/batches",
            json={
                "input_file_id": up.json()["id"],
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
        ).json()
        first_done: float | None = None
        while batch["status"] not in ("completed", "failed", "expired", "cancelled"):
            time.sleep(0.25)
            batch = http.get(f"/v1/batches/{batch['id']}").json()
            if first_done is None and batch["request_counts"]["completed"]:
                first_done = time.perf_counter()
        wall = time.perf_counter() - started
        out = http.get(f"/v1/files/{batch['output_file_id']}/content").text.splitlines()
    return {"batch": batch, "wall": wall, "out": out, "ramp_s": (first_done or 0) - started}


def check(out: list[str], n: int) -> dict[str, int]:
    seen: Counter[str] = Counter()
    wrong = 0
    for raw in out:
        line = json.loads(raw)
        seen[line["custom_id"]] += 1
        content = line["response"]["body"]["choices"][0]["message"]["content"]
        if not content.endswith(f": bench {line['custom_id'][1:]}"):
            wrong += 1
    expected = {f"q{i}" for i in range(n)}
    return {
        "lost": len(expected - set(seen)),
        "duplicated": sum(c - 1 for c in seen.values() if c > 1),
        "wrong_answers": wrong,
    }


async def trickle(api: str, rps: float, stop: asyncio.Event) -> list[float]:
    """Interactive requests at ``rps`` until ``stop``; their latencies in seconds."""
    lat: list[float] = []
    async with httpx.AsyncClient(base_url=api, timeout=60) as client:

        async def one(i: int) -> None:
            t = time.perf_counter()
            r = await client.post(
                "/v1/chat/completions",
                json={"model": "chat", "messages": [{"role": "user", "content": f"hi {i}"}]},
            )
            if r.status_code == 200:
                lat.append(time.perf_counter() - t)

        tasks, i = [], 0
        while not stop.is_set():
            tasks.append(asyncio.create_task(one(i)))
            i += 1
            await asyncio.sleep(1 / rps)
        await asyncio.gather(*tasks)
    return lat


async def idle_trickle(api: str, rps: float, seconds: float) -> list[float]:
    """The trickle for ``seconds``, after a second of warm-up that is not counted (the first
    requests of a fresh farm open connections and fill caches)."""
    warm = asyncio.Event()
    asyncio.get_running_loop().call_later(1.0, warm.set)
    await trickle(api, rps, warm)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    return await trickle(api, rps, stop)


async def batch_with_trickle(api: str, n: int, rps: float) -> tuple[dict[str, Any], list[float]]:
    stop = asyncio.Event()
    lat_task = asyncio.create_task(trickle(api, rps, stop))
    result = await asyncio.to_thread(run_batch, api, n)
    stop.set()
    return result, await lat_task


def summary(f: Farm, n: int, result: dict[str, Any]) -> dict[str, Any]:
    ceiling = sum(rpm for _, rpm in RPMS.values()) / 60
    stats = f.sim_stats()["providers"]
    accepted = sum(stats[p]["accepted"] for p in RPMS)
    limited = sum(stats[p]["rate_limited"] for p in RPMS)
    batch = result["batch"]
    return {
        "lines": n,
        "status": batch["status"],
        "ceiling_rps": ceiling,
        "ideal_s": round(n / ceiling, 1),
        "wall_s": round(result["wall"], 1),
        "achieved_rps": round(n / result["wall"], 2),
        "share_of_ceiling": round(n / result["wall"] / ceiling, 4),
        "first_answer_after_s": round(result["ramp_s"], 2),
        "upstream_requests": accepted + limited,
        "upstream_429": limited,
        "upstream_429_share": round(limited / max(1, accepted + limited), 4),
        "per_provider": {p: stats[p]["succeeded"] for p in RPMS},
        "request_counts": batch["request_counts"],
        **check(result["out"], n),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interactive-rps", type=float, default=0.0)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated upstream")
    parser.add_argument("--pace", type=float, default=1.0, help="RELAY_BATCH_PACE")
    parser.add_argument(
        "--no-headers",
        action="store_true",
        help="the simulator sends no rate-limit headers (to measure what they cost)",
    )
    args = parser.parse_args()
    storage = Path(tempfile.mkdtemp(prefix="relay-batch-bench-"))
    env = {"RELAY_STORAGE_DIR": str(storage), "RELAY_BATCH_PACE": str(args.pace)}
    with farm(providers, workers=args.workers, window_s=1, extra_env=env) as f:
        for name in RPMS:
            f.sim(
                name, latency_ms=args.latency_ms, **({"headers": "none"} if args.no_headers else {})
            )
        report: dict[str, Any] = {
            "workers": args.workers,
            "pace": args.pace,
            "rate_limit_headers": not args.no_headers,
        }
        names = ["api", "sim", *(f"worker{i}" for i in range(args.workers))]
        cpu0 = {n: f.cpu(n) for n in names}
        if args.interactive_rps:
            idle = asyncio.run(idle_trickle(f.api_url, args.interactive_rps, 20))
            f.sim_reset()
            result, busy = asyncio.run(
                batch_with_trickle(f.api_url, args.lines, args.interactive_rps)
            )
            report["interactive"] = {
                "rps": args.interactive_rps,
                **{f"idle_p{q}_ms": round(percentile(idle, q) * 1000, 1) for q in (50, 90, 99)},
                **{f"busy_p{q}_ms": round(percentile(busy, q) * 1000, 1) for q in (50, 90, 99)},
                "busy_requests": len(busy),
            }
        else:
            result = run_batch(f.api_url, args.lines)
        report.update(summary(f, args.lines, result))
        wall = result["wall"]
        report["cpu_share_of_one_core"] = {n: round((f.cpu(n) - cpu0[n]) / wall, 2) for n in names}
        report["worker_cpu_ms_per_line"] = round(
            sum(f.cpu(n) - cpu0[n] for n in names if n.startswith("worker")) / args.lines * 1000, 2
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
