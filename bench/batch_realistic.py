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
wrong lines, the time from 99 % to 100 % of lines, worker CPU per line, the estimate's error
(``POST /v1/batches/estimate`` for the file just before it runs, against the wall time) and
the lines hedged / answers discarded.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.batch_throughput import TERMINAL, batch_file
from bench.harness import Farm, create_batch, farm, provider
from bench.probe import Probe, summary
from relay_core.batch.client.demand import route_demand
from relay_sim import PooledCeiling, pooled_ceiling

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


def estimate_s(http: httpx.Client, data: bytes) -> float:
    """What ``relay batch estimate`` would say for this file, seconds."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as f:
        f.write(data)
        f.flush()
        requests = [c.model_dump(exclude_none=True) for c in route_demand(Path(f.name), None)]
    r = http.post("/v1/batches/estimate", json={"requests": requests})
    r.raise_for_status()
    return float(r.json()["estimated_seconds"])


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


def phases(series: list[tuple[float, int]], n: int, ceiling: float) -> dict[str, float | None]:
    """Where the wall time went against the ceiling: the seconds to the first 1 % / 10 % of
    lines (ramp), the rate between 10 % and 90 % (steady state, as a share of the ceiling), and
    the seconds from 90 % to the end beyond what the ceiling needs for those lines (tail)."""

    def at(share: float) -> float | None:
        return next((t for t, done in series if done >= share * n), None)

    t1, t10, t90, t100 = at(0.01), at(0.1), at(0.9), at(1.0)
    steady = 0.8 * n / (t90 - t10) if t10 is not None and t90 is not None and t90 > t10 else None
    ideal_part = 0.1 * n / ceiling if ceiling else None
    return {
        "t_1pct_s": t1,
        "t_10pct_s": t10,
        "ramp_lost_s": round(t10 - ideal_part, 1) if t10 is not None and ideal_part else None,
        "steady_rps": round(steady, 2) if steady else None,
        "steady_share": round(steady / ceiling, 3) if steady and ceiling else None,
        "tail_lost_s": round(t100 - t90 - ideal_part, 1)
        if t100 is not None and t90 is not None and ideal_part
        else None,
    }


def _limits(pool: PooledCeiling) -> dict[str, float]:
    return {name: c.requests_per_s or 0.0 for name, c in pool.providers.items()}


def run_one(
    f: Farm,
    name: str,
    n: int,
    workers: int,
    probe: bool = False,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One batch of ``n`` lines of scenario ``name`` (``spec``: its definition, by default
    ``SCENARIOS[name]``) on the farm ``f``."""
    spec = spec or SCENARIOS[name]
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
        predicted = estimate_s(http, lines_file(n, spec["body"]))
        started = time.perf_counter()
        batch = create_batch(http, up.json()["id"])
        probing = Probe(f) if probe else None
        if probing is not None:
            probing.start(batch["id"])
        at_99: float | None = None
        series: list[tuple[float, int]] = []
        while batch["status"] not in TERMINAL:
            time.sleep(0.25)
            batch = http.get(f"/v1/batches/{batch['id']}").json()
            done = batch["request_counts"]["completed"] + batch["request_counts"]["failed"]
            series.append((round(time.perf_counter() - started, 2), done))
            if at_99 is None and done >= 0.99 * n:
                at_99 = time.perf_counter()
        wall = time.perf_counter() - started
        samples = probing.stop() if probing is not None else []
        progress = http.get(f"/v1/batches/{batch['id']}/progress").json()
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
        "estimated_s": predicted,
        "estimate_error": round(predicted / wall - 1, 4) if wall else None,
        "hedged": progress.get("hedged", 0),
        "discarded": progress.get("discarded", 0),
        "worker_cpu_ms_per_line": round(workers_cpu / n * 1000, 2),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "phases": phases(series, n, pool.requests_per_s),
        "series": series,
        **check(out, n),
        **({"probe": summary(samples, _limits(pool))} if probe else {}),
    }


def run(
    lines: int = 1000,
    workers: int = 2,
    scenarios: tuple[str, ...] = tuple(SCENARIOS),
    probe: bool = False,
) -> dict[str, Any]:
    results = []
    for name in scenarios:
        with tempfile.TemporaryDirectory(prefix="relay-real-bench-") as storage:
            env = {"RELAY_STORAGE_DIR": storage}
            spec = SCENARIOS[name]
            window_s = spec.get("window_s", 1)
            with farm(spec["providers"], workers=workers, window_s=window_s, extra_env=env) as f:
                results.append(run_one(f, name, lines, workers, probe))
    return {"workers": workers, "scenarios": results}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scenario", default="all", choices=[*SCENARIOS, "all"])
    parser.add_argument("--probe", action="store_true", help="sample where lines wait")
    args = parser.parse_args()
    chosen = tuple(SCENARIOS) if args.scenario == "all" else (args.scenario,)
    print(json.dumps(run(args.lines, args.workers, chosen, args.probe), indent=2))


if __name__ == "__main__":
    main()
