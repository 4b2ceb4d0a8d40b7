"""Batch scaling: 1, 2 and 4 worker processes; 1k, 10k and 50k lines. Cost per line must stay flat.

    .venv/bin/python -m bench.scaling [--workers 1,2,4] [--worker-lines 3000]
        [--lines 1000,10000,50000] [--lines-workers 2] [--rpm 3000]

Each point is one batch on a fresh farm (``bench.batch_throughput``), with four simulated
providers allowing ``--rpm`` each (enforced per second). The ceiling is set high on purpose
(4 x 3,000 RPM = 200 lines/s, above what two cores can feed), so a 50,000-line batch ends in
minutes and what is measured is the farm's own cost: worker CPU per line, which must not grow
with the batch's size, and lines per second as worker processes are added.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bench import batch_throughput

KEPT = (
    "lines",
    "workers",
    "status",
    "wall_s",
    "achieved_rps",
    "ceiling_rps",
    "share_of_ceiling",
    "worker_cpu_ms_per_line",
    "api_cpu_ms_per_line",
    "cpu_share_of_one_core",
    "upstream_429_share",
    "lost",
    "duplicated",
    "wrong_answers",
)


def point(lines: int, workers: int, rpm: int) -> dict[str, Any]:
    report = batch_throughput.run(lines, workers, rpm=rpm)
    print(f"scaling: {lines} lines, {workers} workers: {report['achieved_rps']} lines/s")
    return {k: report[k] for k in KEPT}


def spread(points: list[dict[str, Any]], key: str) -> float:
    """Largest over smallest: 1.0 is perfectly flat."""
    values = [p[key] for p in points]
    return round(max(values) / min(values), 3) if values and min(values) > 0 else float("nan")


def run(
    workers: tuple[int, ...] = (1, 2, 4),
    worker_lines: int = 3000,
    lines: tuple[int, ...] = (1000, 10_000, 50_000),
    lines_workers: int = 2,
    rpm: int = 3000,
) -> dict[str, Any]:
    by_workers = [point(worker_lines, w, rpm) for w in workers]
    by_lines = [point(n, lines_workers, rpm) for n in lines]
    return {
        "rpm_per_provider": rpm,
        "ceiling_rps": len(batch_throughput.NAMES) * rpm / 60,
        "by_workers": by_workers,
        "by_lines": by_lines,
        "cpu_per_line_spread": spread(by_lines, "worker_cpu_ms_per_line"),
    }


def ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=ints, default=(1, 2, 4))
    parser.add_argument("--worker-lines", type=int, default=3000)
    parser.add_argument("--lines", type=ints, default=(1000, 10_000, 50_000))
    parser.add_argument("--lines-workers", type=int, default=2)
    parser.add_argument("--rpm", type=int, default=3000, help="per provider")
    args = parser.parse_args()
    report = run(args.workers, args.worker_lines, args.lines, args.lines_workers, args.rpm)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
