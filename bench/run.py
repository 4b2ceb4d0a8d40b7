"""``make bench``: run the benchmarks, keep their JSON, and refresh ``docs/benchmarks.md``.

    make bench                              # full size: ~30 min on 2 cores
    make bench BENCH_QUICK=1                # small runs (~5 min): the machinery, not the targets
    make bench BENCH_ONLY=ttft,load         # some of them (names below)
    .venv/bin/python -m bench.run [--quick] [--only ttft,load]
    .venv/bin/python -m bench.report        # re-render the doc from the JSON, running nothing

A full run writes ``bench/results/<name>.json`` and re-renders the generated part of
``docs/benchmarks.md`` (a table of targets and figures) and the plots under ``docs/img/``. A
quick run writes under ``bench/results/quick/`` and renders its own copy of the doc there
(``bench/results/quick/benchmarks.md``), so small-run figures never land in ``docs/``.

Each benchmark runs on a fresh farm (``bench/harness.py``); one that fails is reported and the
others still run, its previous JSON (if any) is kept, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench import (
    aimd,
    auto,
    batch_faults,
    batch_matrix,
    batch_realistic,
    batch_throughput,
    batch_upload,
    embeddings,
    farm_latency,
    farm_limits,
    hedging,
    learned,
    load,
    overhead,
    report,
    routing,
    scaling,
    ttft,
    worker_drain,
    workflows,
)


@dataclass(frozen=True)
class Bench:
    run: Callable[..., dict[str, Any]]
    full: dict[str, Any] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)


# Cheap ones first. Full sizes are the issues' (10k-line batch, 1k/10k/50k lines, 1,000
# concurrent); the one-down and flapping batches are 5,000 lines to keep the run near 30 min.
BENCHES: dict[str, Bench] = {
    "worker_drain": Bench(worker_drain.run, {"n": 500}, {"n": 100}),
    "routing": Bench(routing.run, {"n": 2000}, {"n": 300}),
    "overhead": Bench(overhead.run, {"n": 5000}, {"n": 500}),
    "batch_realistic": Bench(
        batch_realistic.run, {"lines": 600, "workers": 2}, {"lines": 150, "workers": 2}
    ),
    "farm_latency": Bench(
        farm_latency.run,
        {"n": 300, "width": 50, "workers": 2},
        {"n": 60, "width": 50, "workers": 2},
    ),
    "ttft": Bench(ttft.run, {"n": 300, "chunk_delay_ms": 20}, {"n": 40, "chunk_delay_ms": 20}),
    "hedging": Bench(
        hedging.run,
        {"n": 400, "clients": 8, "streams": 400},
        {"n": 100, "clients": 8, "streams": 100},
    ),
    "aimd": Bench(aimd.run, {"n": 300}, {"n": 100}),
    "learned": Bench(learned.run, {"n": 400, "clients": 4}, {"n": 150, "clients": 4}),
    "auto": Bench(auto.run, {"n": 500, "clients": 8}, {"n": 150, "clients": 8}),
    "farm_limits": Bench(
        farm_limits.run,
        {"n": 1200, "width": 64, "workers": 2},
        {"n": 150, "width": 32, "workers": 2},
    ),
    "load": Bench(
        load.run,
        {"n": 1000, "latency_ms": 1000, "rounds": 2},
        {"n": 200, "latency_ms": 500, "rounds": 2},
    ),
    "batch_throughput": Bench(
        batch_throughput.run, {"lines": 10_000, "workers": 2}, {"lines": 400, "workers": 2}
    ),
    "batch_one_down": Bench(
        batch_throughput.run,
        {"lines": 5000, "workers": 2, "fault": "down"},
        {"lines": 300, "workers": 2, "fault": "down"},
    ),
    "batch_flapping": Bench(
        batch_throughput.run,
        {"lines": 5000, "workers": 2, "fault": "flap", "flap_s": 10.0},
        {"lines": 300, "workers": 2, "fault": "flap", "flap_s": 2.0},
    ),
    "batch_faults": Bench(batch_faults.run, {"lines": 1200}, {"lines": 400}),
    "workflows": Bench(workflows.run, {"lines": 1000, "workers": 2}, {"lines": 100, "workers": 2}),
    "embeddings": Bench(
        embeddings.run, {"lines": 10_000, "workers": 2}, {"lines": 500, "workers": 2}
    ),
    # Issue 13's matrix: the full one (three sizes up to 100,000 lines) takes hours on this
    # box; the quick one is the 1,000-line row, lognormal answers.
    "batch_matrix": Bench(
        batch_matrix.run,
        {"sizes": batch_matrix.FULL_SIZES},
        {"sizes": (1000,), "answers": ("lognormal",)},
    ),
    "batch_upload": Bench(
        batch_upload.run, {"lines": 50_000, "busy_s": 30}, {"lines": 2000, "busy_s": 5}
    ),
    "scaling": Bench(
        scaling.run,
        {"workers": (1, 2, 4), "worker_lines": 3000, "lines": (1000, 10_000, 50_000)},
        {"workers": (1, 2, 4), "worker_lines": 300, "lines": (200, 500, 1000)},
    ),
}


def envelope(name: str, quick: bool, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "mode": "quick" if quick else "full",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "params": params,
        "cpus": os.cpu_count(),
        "loadavg_1m_before": round(os.getloadavg()[0], 2),
    }


def run_one(name: str, quick: bool) -> bool:
    bench = BENCHES[name]
    params = bench.quick if quick else bench.full
    record = envelope(name, quick, params)
    print(f"== {name} ({record['mode']}): {params}", flush=True)
    started = time.perf_counter()
    try:
        result = bench.run(**params)
    except Exception:
        traceback.print_exc()
        print(f"== {name} failed; its previous results, if any, are kept", flush=True)
        return False
    record["elapsed_s"] = round(time.perf_counter() - started, 1)
    record["result"] = result
    path = report.results_dir(quick) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"== {name}: {record['elapsed_s']} s -> {path}", flush=True)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    parser.add_argument("--quick", action="store_true", default=quick)
    parser.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""))
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHES)
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHES)}")
    started = time.perf_counter()
    failed = [n for n in names if not run_one(n, args.quick)]
    print(f"== all: {time.perf_counter() - started:.0f} s", flush=True)
    doc = report.refresh(args.quick)
    print(f"== rendered {doc}", flush=True)
    if failed:
        print(f"== failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
