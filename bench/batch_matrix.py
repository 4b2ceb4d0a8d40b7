"""The batch bench matrix of issue 13 (item 8): answer times x binding limits x batch sizes.

    .venv/bin/python -m bench.batch_matrix [--quick] [--sizes 1000,10000] [--answers ...]
        [--limits rpm,tpm,daily,hidden] [--ten] [--workers 1]

{instant, lognormal median 1.5 s, 20 s answers} x {RPM-bound, TPM-bound, a daily cap running
out mid-batch, a limit hidden at 60 % of the published one} x {1,000, 10,000, 100,000
lines}, plus a pool of ten providers of 10-60 RPM. Each cell is one batch on a fresh farm
with the default ``relay up`` worker (one process, no tuning flags), against four simulated
providers enforcing their limits per second (the ten per minute). Reported per cell: share
of the simulator's binding ceiling, upstream 429s, the time from 99 % to 100 % of lines, the
estimate's error, worker CPU per line (from ``bench.batch_realistic``), and Redis memory per
line (the batch's keys at their largest) and the API's and worker's peak RSS (sampled here).

The pool is sized per batch so each run takes minutes: ``POOL_RPS`` lines/s for a size. A
100,000-line batch raises ``RELAY_BATCH_MAX_LINES``; at 30 ms of worker CPU per line its
200 lines/s would need six cores, so on this 2-core box it is CPU-bound, not limit-bound (the
quick variant leaves it out).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import redis

from bench.batch_realistic import FAMILIES, LOGNORMAL, run_one
from bench.harness import REDIS_URL, Farm, farm, provider, rss_mb

ANSWERS: dict[str, dict[str, float]] = {
    "instant": {"latency_ms": 5.0},
    "lognormal": LOGNORMAL,
    "long": {"latency_median_ms": 20_000.0, "latency_sigma": 0.15},
}
LIMITS = ("rpm", "tpm", "daily", "hidden")
# The pooled rate (lines/s) a batch of each size is given: runs of minutes.
POOL_RPS = {1000: 8.0, 10_000: 40.0, 100_000: 200.0}
QUICK_SIZES = (1000, 10_000)
FULL_SIZES = (1000, 10_000, 100_000)


def _four(rpm: int, **limits: int) -> Callable[[str], list[dict[str, Any]]]:
    def providers(url: str) -> list[dict[str, Any]]:
        out = []
        for name, api in FAMILIES:
            p = provider(f"r-{name}", api, url, rpm=rpm, timeout_s=60)
            p["limits"].update(limits)
            out.append(p)
        return out

    return providers


def spec(answers: str, limit: str, lines: int) -> dict[str, Any]:
    """One cell: four providers sharing ``POOL_RPS[lines]``, ``limit`` binding first."""
    rpm = round(POOL_RPS[lines] / 4 * 60)
    sim: dict[str, Any] = dict(ANSWERS[answers])
    body: dict[str, Any] = {}
    if limit == "rpm":
        providers = _four(rpm)
    elif limit == "tpm":  # ~300 tokens reserved a line (prompt + max_tokens) against the TPM
        providers = _four(rpm * 4, tpm=rpm * 300)
        body = {"max_tokens": 100, "pad": True}
    elif limit == "daily":  # two of the four have a day's cap of 10 % of the batch each

        def providers(url: str) -> list[dict[str, Any]]:
            out = _four(rpm)(url)
            for p in out[:2]:
                p["limits"]["rpd"] = lines // 10
            return out
    else:  # published 1/0.6 of what is enforced
        providers = _four(round(rpm / 0.6))
        sim["hidden_factor"] = 0.6
    return {"providers": providers, "sim": sim, "body": body}


def ten() -> dict[str, Any]:
    def providers(url: str) -> list[dict[str, Any]]:
        rpms = [10, 15, 20, 25, 30, 30, 40, 45, 50, 60]
        return [
            provider(f"r-{i}", FAMILIES[i % 4][1], url, rpm=rpm, timeout_s=60)
            for i, rpm in enumerate(rpms)
        ]

    return {"providers": providers, "sim": LOGNORMAL, "body": {}, "window_s": 60}


class Resources:
    """Peak RSS of the API and workers, and the batch's Redis keys at their largest."""

    def __init__(self, f: Farm, every_s: float = 2.0) -> None:
        self.farm, self.every_s = f, every_s
        self.peak_rss: dict[str, float] = {}
        self.peak_redis_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Resources:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        r = redis.Redis.from_url(REDIS_URL)
        pattern = f"{self.farm.prefix}:batch:*"
        while not self._stop.wait(self.every_s):
            for name in self.farm.procs:
                if name == "api" or name.startswith("worker"):
                    rss = rss_mb(self.farm.pid(name))
                    self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), rss)
            total = 0
            for key in r.scan_iter(match=pattern, count=1000):
                total += int(r.memory_usage(key) or 0)
            self.peak_redis_bytes = max(self.peak_redis_bytes, total)


def cell(name: str, s: dict[str, Any], lines: int, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="relay-matrix-") as storage:
        env = {"RELAY_STORAGE_DIR": storage, "RELAY_BATCH_MAX_LINES": str(max(50_000, lines))}
        window_s = s.get("window_s", 1)
        with (
            farm(s["providers"], workers=workers, window_s=window_s, extra_env=env) as f,
            Resources(f) as res,
        ):
            out = run_one(f, name, lines, workers, spec=s)
    out.pop("series", None) if lines > 10_000 else None
    out["api_peak_rss_mb"] = round(res.peak_rss.get("api", 0.0), 1)
    out["worker_peak_rss_mb"] = round(
        max((v for k, v in res.peak_rss.items() if k.startswith("worker")), default=0.0), 1
    )
    out["redis_bytes_per_line"] = round(res.peak_redis_bytes / lines, 1)
    return out


def run(
    sizes: tuple[int, ...] = QUICK_SIZES,
    answers: tuple[str, ...] = tuple(ANSWERS),
    limits: tuple[str, ...] = LIMITS,
    with_ten: bool = True,
    workers: int = 1,
) -> dict[str, Any]:
    cells = []
    for lines in sizes:
        for a in answers:
            for limit in limits:
                name = f"{a}/{limit}"
                print(f"-- {name} x {lines:,}", flush=True)
                cells.append(cell(name, spec(a, limit, lines), lines, workers))
        if with_ten:
            print(f"-- ten x {lines:,}", flush=True)
            cells.append(cell("ten", ten(), lines, workers))
    return {"workers": workers, "pool_rps": POOL_RPS, "cells": cells}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 lines only")
    parser.add_argument("--sizes", default="")
    parser.add_argument("--answers", default=",".join(ANSWERS))
    parser.add_argument("--limits", default=",".join(LIMITS))
    parser.add_argument("--no-ten", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    sizes = tuple(int(x) for x in args.sizes.split(",") if x) or (
        QUICK_SIZES if args.quick else FULL_SIZES
    )
    result = run(
        sizes,
        tuple(a for a in args.answers.split(",") if a),
        tuple(x for x in args.limits.split(",") if x),
        not args.no_ten,
        args.workers,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
