"""Faults cost seconds, not minutes (issue 13 item 7): a batch's rate after a worker SIGKILL,
and while one provider hangs. Default line timeout (180 s) and settings: no tuning flags.

    .venv/bin/python -m bench.batch_faults [--lines 1200] [--scenario kill|hang|all]

``kill``  two workers, four providers of 600 RPM, 200 ms answers; once 30 % of the lines are
          done one worker is SIGKILLed. Measured: the rate before, how long until its lines
          were sent again (``resent.worker_died`` in the batch's progress), how long until the
          rate over 2 s is back to 90 % of the rate before, and the batch intact.
``hang``  the same farm; one provider accepts every call and never answers (its call timeout
          the catalogue's default 60 s). Measured: the rate until 75 % of the lines are done,
          as a share of the three other providers' capacity.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
from typing import Any

import httpx

from bench.batch_realistic import check
from bench.batch_throughput import TERMINAL, batch_file
from bench.harness import Farm, create_batch, farm, provider
from relay_core.limits.plan import PACING_MARGIN

RPM = 600
FAMILIES = [
    ("openai", "openai"),
    ("gemini", "gemini"),
    ("claude", "anthropic"),
    ("ollama", "ollama"),
]
HUNG = "f-openai"
KILL_AT = 0.3  # share of the lines done when the worker is killed
RATE_S = 2.0  # the rolling rate's span
RECOVERED = 0.9  # "back" means this share of the rate before the kill


def providers(url: str) -> list[dict[str, Any]]:
    out = [provider(f"f-{name}", api, url, rpm=RPM) for name, api in FAMILIES]
    for p in out:
        del p["timeout_s"]  # the catalogue's default (60 s): a hung call holds that long
    return out


def rate(samples: list[tuple[float, int]], start: float, span: float) -> float:
    """Lines/s over [start, start + span] from (time, lines done) samples."""
    before = max((s for s in samples if s[0] <= start), default=samples[0])
    after = max((s for s in samples if s[0] <= start + span), default=samples[-1])
    return (after[1] - before[1]) / max(1e-9, after[0] - before[0])


def follow(http: httpx.Client, batch_id: str, until: Any) -> list[tuple[float, int]]:
    """(time, lines done) every 0.1 s until ``until(batch)``."""
    samples: list[tuple[float, int]] = []
    while True:
        batch = http.get(f"/v1/batches/{batch_id}").json()
        counts = batch["request_counts"]
        samples.append((time.perf_counter(), counts["completed"] + counts["failed"]))
        if until(batch):
            return samples
        time.sleep(0.1)


def kill(f: Farm, http: httpx.Client, n: int) -> dict[str, Any]:
    batch = create_batch(http, upload(http, n))
    batch_id = batch["id"]
    samples = follow(http, batch_id, lambda b: b["request_counts"]["completed"] >= KILL_AT * n)
    os.killpg(f.pid("worker1"), signal.SIGKILL)
    killed = time.perf_counter()
    resent_at = None
    while resent_at is None:
        progress = http.get(f"/v1/batches/{batch_id}/progress").json()
        if progress["resent"].get("worker_died"):
            resent_at = time.perf_counter()
        else:
            time.sleep(0.1)
    samples += follow(http, batch_id, lambda b: b["status"] in TERMINAL)
    final = http.get(f"/v1/batches/{batch_id}").json()
    progress = http.get(f"/v1/batches/{batch_id}/progress").json()
    out = http.get(f"/v1/files/{final['output_file_id']}/content").text.splitlines()
    before = rate(samples, killed - 3.0, 3.0)
    back = next(
        (
            t - killed
            for t, _ in samples
            if t >= killed and rate(samples, t, RATE_S) >= RECOVERED * before
        ),
        None,
    )
    return {
        "scenario": "kill",
        "lines": n,
        "status": final["status"],
        "rate_before_rps": round(before, 1),
        "resent_after_s": round(resent_at - killed, 1),
        "back_to_90pct_after_s": None if back is None else round(back, 1),
        "resent": progress["resent"],
        **check(out, n),
    }


def hang(f: Farm, http: httpx.Client, n: int) -> dict[str, Any]:
    f.sim(HUNG, hang=True)
    batch = create_batch(http, upload(http, n))
    started = time.perf_counter()
    samples = follow(http, batch["id"], lambda b: b["request_counts"]["completed"] >= 0.75 * n)
    wall = time.perf_counter() - started
    others = 3 * RPM / 60 * (1 - PACING_MARGIN)
    hung = f.sim_stats()["providers"][HUNG]
    return {
        "scenario": "hang",
        "lines": n,
        "lines_done": samples[-1][1],
        "wall_s": round(wall, 1),
        "achieved_rps": round(samples[-1][1] / wall, 1),
        "others_capacity_rps": round(others, 1),
        "share_of_others": round(samples[-1][1] / wall / others, 3),
        "hung_in_flight": hung["in_flight"],
        "hung_max_in_flight": hung["max_in_flight"],
        "upstream_429": sum(p["rate_limited"] for p in f.sim_stats()["providers"].values()),
    }


def upload(http: httpx.Client, n: int) -> str:
    up = http.post(
        "/v1/files", files={"file": ("b.jsonl", batch_file(n))}, data={"purpose": "batch"}
    )
    up.raise_for_status()
    file_id: str = up.json()["id"]
    return file_id


SCENARIOS = {"kill": kill, "hang": hang}


def run(lines: int = 1200, scenarios: tuple[str, ...] = tuple(SCENARIOS)) -> dict[str, Any]:
    results = []
    for name in scenarios:
        with tempfile.TemporaryDirectory(prefix="relay-fault-bench-") as storage:
            env = {"RELAY_STORAGE_DIR": storage}
            with farm(providers, workers=2, window_s=1, extra_env=env) as f:
                for p in f.sim_stats()["providers"]:
                    f.sim(p, latency_ms=200.0)
                with httpx.Client(base_url=f.api_url, timeout=60) as http:
                    results.append(SCENARIOS[name](f, http, lines))
    return {"scenarios": results}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1200)
    parser.add_argument("--scenario", default="all", choices=[*SCENARIOS, "all"])
    args = parser.parse_args()
    chosen = tuple(SCENARIOS) if args.scenario == "all" else (args.scenario,)
    print(json.dumps(run(args.lines, chosen), indent=2))


if __name__ == "__main__":
    main()
