"""Batch throughput against a known ceiling: are the pooled free tiers used to their limit?

    .venv/bin/python -m bench.batch_throughput [--lines 10000] [--workers 2] [--rpm 600]
        [--fault down|flap] [--flap-s 10] [--interactive-rps 0] [--storage local|s3]

Four simulated providers, one per API family, each allowed ``--rpm`` requests per minute in the
catalogue and in the simulator, which enforces them per second (window_s=1); their sum is the
ceiling. One API process and ``--workers`` worker processes. The batch is uploaded, created and
polled over HTTP; every second the batch's completed count and the simulator's counters are
sampled into a time series. The output file is then checked: every ``custom_id`` exactly once,
each with its own answer.

``--fault down`` takes one provider down for the whole run (the ceiling is then what the other
three allow); ``--fault flap`` makes it flap (up ``--flap-s`` seconds, down as long, and so on;
the ceiling follows it). With ``--interactive-rps`` a steady trickle of interactive chat requests
runs beside the batch, and their latency is compared with the same trickle on the idle farm.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from bench.harness import Farm, create_batch, farm, percentile, provider
from bench.s3 import s3_storage_env

NAMES = {
    "bt-openai": "openai",
    "bt-gemini": "gemini",
    "bt-claude": "anthropic",
    "bt-ollama": "ollama",
}
FAULTY = "bt-claude"  # the provider --fault takes down or makes flap
TERMINAL = ("completed", "failed", "expired", "cancelled")

# ceiling(t): lines per second the providers allow at time.perf_counter() t
Ceiling = Callable[[float], float]


def providers_at(rpm: int) -> Callable[[str], list[dict[str, Any]]]:
    def providers(url: str) -> list[dict[str, Any]]:
        return [provider(name, api, url, rpm=rpm) for name, api in NAMES.items()]

    return providers


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


def sim_counts(sim: httpx.Client) -> dict[str, int]:
    totals = sim.get("/_sim/stats").json()["totals"]
    return {k: int(totals[k]) for k in ("accepted", "rate_limited", "errors")}


def run_batch(
    api: str, sim_url: str, n: int, ceiling: Ceiling, sample_s: float = 1.0
) -> dict[str, Any]:
    """Run one batch to its end; ``series`` holds a sample every ``sample_s`` seconds of the
    lines completed so far, the simulator's cumulative counters and the ceiling at that time
    (``t`` in seconds since the batch was created)."""
    series: dict[str, list[float]] = {
        k: [] for k in ("t", "completed", "accepted", "rate_limited", "errors", "ceiling_rps")
    }

    def sample(at: float, completed: int, sim: httpx.Client) -> None:
        for k, v in {
            "t": round(at - started, 3),
            "completed": completed,
            **sim_counts(sim),
        }.items():
            series[k].append(v)
        series["ceiling_rps"].append(round(ceiling(at), 3))

    with httpx.Client(base_url=api, timeout=300) as http, httpx.Client(base_url=sim_url) as sim:
        up = http.post(
            "/v1/files", files={"file": ("b.jsonl", batch_file(n))}, data={"purpose": "batch"}
        )
        up.raise_for_status()
        started = time.perf_counter()
        batch = create_batch(http, up.json()["id"])
        sample(started, 0, sim)
        first_done: float | None = None
        while batch["status"] not in TERMINAL:
            time.sleep(0.25)
            batch = http.get(f"/v1/batches/{batch['id']}").json()
            now = time.perf_counter()
            if first_done is None and batch["request_counts"]["completed"]:
                first_done = now - started
            if now - started - series["t"][-1] >= sample_s or batch["status"] in TERMINAL:
                sample(now, batch["request_counts"]["completed"], sim)
        wall = time.perf_counter() - started
        out = http.get(f"/v1/files/{batch['output_file_id']}/content").text.splitlines()
    return {
        "batch": batch,
        "started": started,
        "wall": wall,
        "out": out,
        "ramp_s": first_done or 0,
        "series": series,
    }


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


async def batch_with_trickle(
    f: Farm, n: int, rps: float, ceiling: Ceiling
) -> tuple[dict[str, Any], list[float]]:
    stop = asyncio.Event()
    lat_task = asyncio.create_task(trickle(f.api_url, rps, stop))
    result = await asyncio.to_thread(run_batch, f.api_url, f.sim_url, n, ceiling)
    stop.set()
    return result, await lat_task


@dataclass(frozen=True)
class Plan:
    lines: int = 10_000
    workers: int = 2
    rpm: int = 600  # per provider
    fault: str | None = None  # "down" or "flap"
    flap_s: float = 10.0
    interactive_rps: float = 0.0
    latency_ms: float = 0.0
    pace: float = 1.0
    headers: bool = True
    storage: str = "local"  # or "s3": the files in a bucket on moto's server (bench/s3.py)

    def ceiling(self, flap_at: float) -> Ceiling:
        """Lines per second the providers allow at ``time.perf_counter()`` t: the faulty one's
        share drops out while it is down (for good with ``down``; with ``flap``, every other
        ``flap_s`` seconds after ``flap_at``, when the simulator took the patch)."""
        full, faulty = len(NAMES) * self.rpm / 60, self.rpm / 60

        def ceiling(t: float) -> float:
            if self.fault == "down":
                return full - faulty
            if self.fault == "flap" and int((t - flap_at) // self.flap_s) % 2 == 1:
                return full - faulty
            return full

        return ceiling


def allowed(ceiling: Ceiling, start: float, wall: float, step: float = 0.05) -> float:
    """Lines the providers allowed in ``[start, start + wall]``: the ceiling integrated."""
    steps = max(1, round(wall / step))
    width = wall / steps
    return sum(ceiling(start + (i + 0.5) * width) for i in range(steps)) * width


def summary(f: Farm, n: int, result: dict[str, Any], ceiling: Ceiling) -> dict[str, Any]:
    stats = f.sim_stats()["providers"]
    accepted = sum(stats[p]["accepted"] for p in NAMES)
    limited = sum(stats[p]["rate_limited"] for p in NAMES)
    batch, wall = result["batch"], result["wall"]
    mean_ceiling = allowed(ceiling, result["started"], wall) / wall
    return {
        "lines": n,
        "status": batch["status"],
        "ceiling_rps": round(mean_ceiling, 2),
        "ideal_s": round(n / mean_ceiling, 1),
        "wall_s": round(wall, 1),
        "achieved_rps": round(n / wall, 2),
        "share_of_ceiling": round(n / wall / mean_ceiling, 4),
        "first_answer_after_s": round(result["ramp_s"], 2),
        "upstream_requests": accepted + limited,
        "upstream_429": limited,
        "upstream_429_share": round(limited / max(1, accepted + limited), 4),
        "upstream_5xx": sum(stats[p]["errors"] for p in NAMES),
        "per_provider": {p: stats[p]["succeeded"] for p in NAMES},
        "request_counts": batch["request_counts"],
        **check(result["out"], n),
    }


def cpu_report(
    f: Farm, names: list[str], cpu0: dict[str, float], wall: float, n: int
) -> dict[str, Any]:
    used = {name: f.cpu(name) - cpu0[name] for name in names}
    workers = sum(v for name, v in used.items() if name.startswith("worker"))
    return {
        "cpu_share_of_one_core": {name: round(v / wall, 2) for name, v in used.items()},
        "worker_cpu_ms_per_line": round(workers / n * 1000, 2),
        "api_cpu_ms_per_line": round(used["api"] / n * 1000, 2),
    }


def interactive(rps: float, idle: list[float], busy: list[float]) -> dict[str, Any]:
    return {
        "rps": rps,
        **{f"idle_p{q}_ms": round(percentile(idle, q) * 1000, 1) for q in (50, 90, 99)},
        **{f"busy_p{q}_ms": round(percentile(busy, q) * 1000, 1) for q in (50, 90, 99)},
        "busy_requests": len(busy),
    }


def measure(f: Farm, plan: Plan) -> dict[str, Any]:
    for name in NAMES:
        f.sim(name, latency_ms=plan.latency_ms, **({} if plan.headers else {"headers": "none"}))
    report: dict[str, Any] = {
        **{k: v for k, v in asdict(plan).items() if k != "lines"},
        "faulty_provider": FAULTY if plan.fault else None,
    }
    names = ["api", "sim", *(f"worker{i}" for i in range(plan.workers))]
    idle: list[float] = []
    if plan.interactive_rps:
        idle = asyncio.run(idle_trickle(f.api_url, plan.interactive_rps, 20))
    if plan.fault == "down":
        f.sim(FAULTY, outage=True)
    f.sim_reset()
    cpu0 = {n: f.cpu(n) for n in names}
    if plan.fault == "flap":
        f.sim(FAULTY, flap_s=plan.flap_s)
    ceiling = plan.ceiling(flap_at=time.perf_counter())
    if plan.interactive_rps:
        result, busy = asyncio.run(batch_with_trickle(f, plan.lines, plan.interactive_rps, ceiling))
        report["interactive"] = interactive(plan.interactive_rps, idle, busy)
    else:
        result = run_batch(f.api_url, f.sim_url, plan.lines, ceiling)
    report.update(summary(f, plan.lines, result, ceiling))
    report.update(cpu_report(f, names, cpu0, result["wall"], plan.lines))
    report["series"] = result["series"]
    return report


def run(lines: int = 10_000, workers: int = 2, **options: Any) -> dict[str, Any]:
    """One batch of ``lines`` lines on a fresh farm; ``options`` are :class:`Plan`'s fields.
    A JSON-able report (see the module's docstring)."""
    plan = Plan(lines=lines, workers=workers, **options)
    with tempfile.TemporaryDirectory(prefix="relay-batch-bench-") as storage, ExitStack() as stack:
        env = {"RELAY_STORAGE_DIR": storage, "RELAY_BATCH_PACE": str(plan.pace)}
        if plan.storage == "s3":
            env.update(stack.enter_context(s3_storage_env()))
        with farm(providers_at(plan.rpm), workers=workers, window_s=1, extra_env=env) as f:
            return measure(f, plan)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rpm", type=int, default=600, help="per provider")
    parser.add_argument("--fault", choices=["down", "flap"], default=None)
    parser.add_argument("--flap-s", type=float, default=10.0)
    parser.add_argument("--interactive-rps", type=float, default=0.0)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated upstream")
    parser.add_argument("--pace", type=float, default=1.0, help="RELAY_BATCH_PACE")
    parser.add_argument(
        "--no-headers",
        action="store_true",
        help="the simulator sends no rate-limit headers (to measure what they cost)",
    )
    parser.add_argument("--storage", choices=["local", "s3"], default="local")
    parser.add_argument("--series", action="store_true", help="print the time series too")
    args = parser.parse_args()
    report = run(
        args.lines,
        args.workers,
        rpm=args.rpm,
        fault=args.fault,
        flap_s=args.flap_s,
        interactive_rps=args.interactive_rps,
        latency_ms=args.latency_ms,
        pace=args.pace,
        headers=not args.no_headers,
        storage=args.storage,
    )
    if not args.series:
        report.pop("series")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
