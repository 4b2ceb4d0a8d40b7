"""What a feeder tick waits on storage for its lines: read by range each tick, or read ahead a
block at a time (``relay_core/batch/run/readahead.py``), from a folder and from S3 (moto's
server, bench/s3.py).

    .venv/bin/python -m bench.line_reads [--lines 2000] [--per-tick 10]

A batch file of ``--lines`` lines (the chat lines of bench/batch_throughput.py) is stored, then
read as the feeder reads it at 40 lines/s: ``--per-tick`` lines per tick, in file order (50 s
per storage and way at the defaults). Reported per
storage and way: the tick's wait (mean, p99, total) and the store requests made.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.batch_throughput import batch_file
from bench.harness import percentile
from bench.s3 import s3_storage_env
from relay_core.batch.run.readahead import ReadAhead
from relay_core.storage.base import ObjectStorage
from relay_core.storage.local import LocalStorage
from relay_core.storage.s3 import S3Storage


class Counting:
    """Counts the store requests of the storage it wraps (only what the readers call)."""

    def __init__(self, inner: ObjectStorage) -> None:
        self.inner, self.requests = inner, 0

    async def read_ranges(self, name: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        self.requests += 1
        return await self.inner.read_ranges(name, ranges)

    async def size(self, name: str) -> int | None:
        self.requests += 1
        return await self.inner.size(name)


def line_ranges(data: bytes) -> list[tuple[int, int]]:
    out, at = [], 0
    for line in data.split(b"\n")[:-1]:
        out.append((at, len(line)))
        at += len(line) + 1
    return out


async def ticks(storage: ObjectStorage, ranges: list[tuple[int, int]], per: int, ahead: bool):
    counted = Counting(storage)
    reader = ReadAhead(counted)  # type: ignore[arg-type]  # reads only what Counting has
    waits = []
    for start in range(0, len(ranges), per):
        batch = ranges[start : start + per]
        t0 = time.perf_counter()
        if ahead:
            await reader.read("file-bench", batch)
        else:
            await counted.read_ranges("file-bench", batch)
        waits.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(per / 40)  # the feeder's pace: 40 lines/s, between ticks
    return {
        "tick_wait_ms_mean": round(sum(waits) / len(waits), 2),
        "tick_wait_ms_p99": round(percentile(waits, 99), 2),
        "waited_s_total": round(sum(waits) / 1000, 2),
        "store_requests": counted.requests,
    }


async def measure(storage: ObjectStorage, data: bytes, per: int) -> dict[str, Any]:
    async with storage.open_write("file-bench") as out:
        await out.write(data)
    ranges = line_ranges(data)
    return {
        "by_range_each_tick": await ticks(storage, ranges, per, ahead=False),
        "read_ahead": await ticks(storage, ranges, per, ahead=True),
    }


def run(lines: int = 2000, per_tick: int = 10) -> dict[str, Any]:
    data = batch_file(lines)
    report: dict[str, Any] = {"lines": lines, "lines_per_tick": per_tick, "bytes": len(data)}
    with tempfile.TemporaryDirectory(prefix="relay-line-reads-") as tmp:
        report["local"] = asyncio.run(measure(LocalStorage(Path(tmp)), data, per_tick))
    with s3_storage_env() as env:
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})  # the client's
        s3 = S3Storage.from_url(env["RELAY_STORAGE_URL"], env["RELAY_S3_ENDPOINT_URL"])
        report["s3"] = asyncio.run(measure(s3, data, per_tick))
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--per-tick", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(run(args.lines, args.per_tick), indent=2))


if __name__ == "__main__":
    main()
