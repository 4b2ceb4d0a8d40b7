"""A batch of embeddings lines against the simulator (issue 17, item 5): the share of the
binding ceiling the farm reaches.

    .venv/bin/python -m bench.embeddings [--lines 10000] [--workers 2] [--rpm 1200]

Three providers, one per family that serves embeddings (OpenAI-compatible, Gemini, Ollama),
each with an embeddings model of 32 dimensions under the alias ``vec`` and ``--rpm`` requests
a minute, counted per second by the simulator (window_s=1); answers take 200 ms. Each line
embeds one text.

The ceiling is the simulator's own report (``GET /_sim/stats``, ``relay_sim.pooled_ceiling``),
stated as :mod:`bench.batch_realistic` states it: lines completed / (pooled ceiling rate x the
batch's wall time from creation to the end). Also: upstream 429s, and lost, duplicated and
wrong lines (a vector that is not its own text's).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from typing import Any

import httpx

from bench.batch_throughput import TERMINAL
from bench.harness import Farm, farm, provider
from relay_sim import pooled_ceiling
from relay_sim.vectors import vector

DIMENSIONS = 32
FAMILIES = [("e-openai", "openai"), ("e-gemini", "gemini"), ("e-ollama", "ollama")]


def providers_for(rpm: int) -> Any:
    def providers(url: str) -> list[dict[str, Any]]:
        out = []
        for name, api in FAMILIES:
            p = provider(name, api, url, rpm=rpm)
            p["models"] = [
                {
                    "id": f"{name}-embed",
                    "aliases": ["vec"],
                    "type": ["embedding"],
                    "embeddings": True,
                    "dimensions": DIMENSIONS,
                }
            ]
            out.append(p)
        return out

    return providers


def lines_file(n: int) -> bytes:
    rows = (
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "vec", "input": f"embed line {i}"},
        }
        for i in range(n)
    )
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def check(out: list[str], n: int) -> dict[str, int]:
    """Every line once, each with its own text's vector."""
    seen: Counter[str] = Counter()
    wrong = 0
    for raw in out:
        line = json.loads(raw)
        cid = line["custom_id"]
        seen[cid] += 1
        got = line["response"]["body"]["data"][0]["embedding"]
        if got != vector(f"embed line {cid[1:]}", DIMENSIONS):
            wrong += 1
    expected = {f"e{i}" for i in range(n)}
    return {
        "lost": len(expected - set(seen)),
        "duplicated": sum(c - 1 for c in seen.values() if c > 1),
        "wrong_vectors": wrong,
    }


def run_one(f: Farm, n: int) -> dict[str, Any]:
    for p in f.sim_stats()["providers"]:
        f.sim(p, latency_ms=200.0)
    f.sim_reset()
    with httpx.Client(base_url=f.api_url, timeout=300) as http:
        up = http.post(
            "/v1/files", files={"file": ("e.jsonl", lines_file(n))}, data={"purpose": "batch"}
        )
        up.raise_for_status()
        started = time.perf_counter()
        body = {
            "input_file_id": up.json()["id"],
            "endpoint": "/v1/embeddings",
            "completion_window": "24h",
        }
        batch = http.post("/v1/batches", json=body).json()
        while batch["status"] not in TERMINAL:
            time.sleep(0.25)
            batch = http.get(f"/v1/batches/{batch['id']}").json()
        wall = time.perf_counter() - started
        out = http.get(f"/v1/files/{batch['output_file_id']}/content").text.splitlines()
    stats = f.sim_stats()
    pool = pooled_ceiling(stats)
    providers = stats["providers"]
    completed = batch["request_counts"]["completed"]
    return {
        "lines": n,
        "status": batch["status"],
        "wall_s": round(wall, 1),
        "achieved_rps": round(completed / wall, 2),
        "ceiling_rps": round(pool.requests_per_s, 2),
        "share_of_ceiling": round(completed / wall / pool.requests_per_s, 4)
        if pool.requests_per_s
        else None,
        "binding": {k: c.binding for k, c in pool.providers.items()},
        "upstream_429": sum(p["rate_limited"] for p in providers.values()),
        "upstream_accepted": sum(p["accepted"] for p in providers.values()),
        **check(out, n),
    }


def run(lines: int = 10_000, workers: int = 2, rpm: int = 1200) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="relay-embed-bench-") as storage:
        env = {"RELAY_STORAGE_DIR": storage}
        with farm(providers_for(rpm), workers=workers, window_s=1, extra_env=env) as f:
            result = run_one(f, lines)
    return {"workers": workers, "rpm_per_provider": rpm, **result}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rpm", type=int, default=1200)
    args = parser.parse_args()
    print(json.dumps(run(args.lines, args.workers, args.rpm), indent=2))


if __name__ == "__main__":
    main()
