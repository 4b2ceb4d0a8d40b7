"""Batches against providers that behave like real free tiers (issue 13): the share of the
binding ceiling the farm reaches.

    .venv/bin/python -m bench.batch_realistic [--lines 1000] [--workers 2]
        [--scenario lognormal|tpm|ten|hidden|all]

Scenarios (each on a fresh farm; the simulator enforces every limit per second, window_s=1):

``lognormal``  four providers of 120 RPM, answers lognormal (median 1.5 s, p99 ~8 s);
``tpm``        four providers whose TPM binds first (a 300-token reservation per line against
               36,000 TPM: 120 lines/min each, under their 600 RPM), answers 200 ms;
``tpm_usage``  four providers whose TPM (6,000) binds and that count usage
               (``tpm_counting: usage``), lines allowing 300 output tokens whose answers use
               about 8: filled by what the lines really cost (learned), not by max_tokens;
``ten``        ten providers of 10-60 RPM (the pool a free-tier user has), lognormal answers,
               limits counted per minute;
``hidden``     four providers of 240 published RPM that enforce 60 % of it.

The ceiling is the simulator's own report (``GET /_sim/stats``, ``relay_sim.pooled_ceiling``):
per provider, what its tightest limit allowed over the run given the requests it saw. The
share is lines completed / (pooled ceiling rate x the batch's wall time from creation to the
end), so the ramp and the tail count against it. Also: upstream 429s, lost / duplicated /
wrong lines, the time from 99 % to 100 % of lines, worker CPU per line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from bench.batch_throughput import TERMINAL, batch_file
from bench.harness import Farm, create_batch, farm, provider
from relay_sim import pooled_ceiling

FAMILIES = [
    ("openai", "openai"),
    ("gemini", "gemini"),
    ("claude", "anthropic"),
    ("ollama", "ollama"),
]
LOGNORMAL = {"latency_median_ms": 1500.0, "latency_sigma": 0.72}  # p99 ~ 8 s
PROMPT_PAD = "word " * 190  # ~200 prompt tokens


def _four(
    rpm: int, counting: str = "reserve", **limits: int
) -> Callable[[str], list[dict[str, Any]]]:
    def providers(url: str) -> list[dict[str, Any]]:
        out = []
        for name, api in FAMILIES:
            p = provider(f"r-{name}", api, url, rpm=rpm)
            p["limits"].update(limits)
            out.append({**p, "tpm_counting": counting})
        return out

    return providers


def _ten(url: str) -> list[dict[str, Any]]:
    rpms = [10, 15, 20, 25, 30, 30, 40, 45, 50, 60]
    return [provider(f"r-{i}", FAMILIES[i % 4][1], url, rpm=rpm) for i, rpm in enumerate(rpms)]


SCENARIOS: dict[str, dict[str, Any]] = {
    "lognormal": {"providers": _four(120), "sim": LOGNORMAL, "body": {}},
    "tpm": {
        "providers": _four(600, tpm=36_000),
        "sim": {"latency_ms": 200.0},
        "body": {"max_tokens": 100, "pad": True},
    },
    "tpm_usage": {
        "providers": _four(600, "usage", tpm=6000),
        "sim": {"latency_ms": 200.0},
        "body": {"max_tokens": 300},
    },
    # Limits this small are counted per minute (per second, 10 RPM would round up to 60).
    "ten": {"providers": _ten, "sim": LOGNORMAL, "body": {}, "window_s": 60},
    "hidden": {
        "providers": _four(240),
        "sim": {"latency_ms": 200.0, "hidden_factor": 0.6},
        "body": {},
    },
}


def lines_file(n: int, body: dict[str, Any]) -> bytes:
    if not body:
        return batch_file(n)
    rows = []
    for i in range(n):
        text = f"bench {i} {PROMPT_PAD}" if body.get("pad") else f"bench {i}"
        rows.append(
            {
                "custom_id": f"q{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "chat",
                    "messages": [{"role": "user", "content": text}],
                    "max_tokens": body["max_tokens"],
                },
            }
        )
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def check(out: list[str], n: int) -> dict[str, int]:
    """Every line once, each with its own answer (an answer cut at max_tokens still starts
    with its line's text)."""
    seen: Counter[str] = Counter()
    wrong = 0
    for raw in out:
        line = json.loads(raw)
        seen[line["custom_id"]] += 1
        content = line["response"]["body"]["choices"][0]["message"]["content"]
        asked = content.split(": ", 1)[-1]
        number = line["custom_id"][1:]
        if asked != f"bench {number}" and not asked.startswith(f"bench {number} "):
            wrong += 1
    expected = {f"q{i}" for i in range(n)}
    return {
        "lost": len(expected - set(seen)),
        "duplicated": sum(c - 1 for c in seen.values() if c > 1),
        "wrong_answers": wrong,
    }


def run_one(f: Farm, name: str, n: int, workers: int) -> dict[str, Any]:
    spec = SCENARIOS[name]
    sim_names = list(f.sim_stats()["providers"])
    for p in sim_names:
        f.sim(p, **spec["sim"])
    f.sim_reset()
    procs = ["api", *(f"worker{i}" for i in range(workers))]
    cpu0 = {p: f.cpu(p) for p in procs}
    with httpx.Client(base_url=f.api_url, timeout=300) as http:
        up = http.post(
            "/v1/files",
            files={"file": ("b.jsonl", lines_file(n, spec["body"]))},
            data={"purpose": "batch"},
        )
        up.raise_for_status()
        started = time.perf_counter()
        batch = create_batch(http, up.json()["id"])
        at_99: float | None = None
        while batch["status"] not in TERMINAL:
            time.sleep(0.25)
            batch = http.get(f"/v1/batches/{batch['id']}").json()
            done = batch["request_counts"]["completed"] + batch["request_counts"]["failed"]
            if at_99 is None and done >= 0.99 * n:
                at_99 = time.perf_counter()
        wall = time.perf_counter() - started
        out = http.get(f"/v1/files/{batch['output_file_id']}/content").text.splitlines()
    stats = f.sim_stats()
    pool = pooled_ceiling(stats)
    providers = stats["providers"]
    limited = sum(p["rate_limited"] for p in providers.values())
    accepted = sum(p["accepted"] for p in providers.values())
    workers_cpu = sum(f.cpu(p) - cpu0[p] for p in procs if p.startswith("worker"))
    completed = batch["request_counts"]["completed"]
    return {
        "scenario": name,
        "lines": n,
        "status": batch["status"],
        "wall_s": round(wall, 1),
        "achieved_rps": round(completed / wall, 2),
        "ceiling_rps": round(pool.requests_per_s, 2),
        "share_of_ceiling": round(completed / wall / pool.requests_per_s, 4)
        if pool.requests_per_s
        else None,
        "binding": {k: c.binding for k, c in pool.providers.items()},
        "unbounded": pool.unbounded,
        "upstream_429": limited,
        "upstream_429_share_of_lines": round(limited / n, 4),
        "upstream_accepted": accepted,
        "tail_99_to_100_s": round(time.perf_counter() - at_99, 1) if at_99 else None,
        "worker_cpu_ms_per_line": round(workers_cpu / n * 1000, 2),
        **check(out, n),
    }


def run(
    lines: int = 1000, workers: int = 2, scenarios: tuple[str, ...] = tuple(SCENARIOS)
) -> dict[str, Any]:
    results = []
    for name in scenarios:
        with tempfile.TemporaryDirectory(prefix="relay-real-bench-") as storage:
            env = {"RELAY_STORAGE_DIR": storage}
            with farm(
                SCENARIOS[name]["providers"], workers=workers, window_s=1, extra_env=env
            ) as f:
                results.append(run_one(f, name, lines, workers))
    return {"workers": workers, "scenarios": results}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scenario", default="all", choices=[*SCENARIOS, "all"])
    args = parser.parse_args()
    chosen = tuple(SCENARIOS) if args.scenario == "all" else (args.scenario,)
    print(json.dumps(run(args.lines, args.workers, chosen), indent=2))


if __name__ == "__main__":
    main()
