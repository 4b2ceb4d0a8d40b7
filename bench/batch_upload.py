"""A 50,000-line, ~100 MB batch: upload and validation time, API memory, and the latency of
interactive requests while the batch runs.

    .venv/bin/python -m bench.batch_upload [--lines 50000] [--line-bytes 2000]
        [--interactive-rps 5] [--busy-s 30] [--latency-ms 50] [--storage local|s3]

One API process and two worker processes; four simulated providers (600 RPM each, enforced per
second) answering after ``--latency-ms``. The file is streamed from disk by the client. The
API's resident memory is sampled every 20 ms from before the upload until the batch is
``in_progress`` (validated), and while it runs. Interactive latency: a steady trickle of
chat requests on the idle farm, then the same trickle while the batch runs (``--busy-s``
seconds), after which the batch is cancelled. ``--storage s3`` puts the files in a bucket on
an S3-protocol server (moto's, in this process) instead of a folder: the upload is then an S3
multipart upload and the validator streams the object back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from bench.batch_throughput import idle_trickle
from bench.harness import Farm, create_batch, farm, percentile, provider, rss_mb
from bench.s3 import s3_storage_env

RPM = 600
NAMES = {
    "bu-openai": "openai",
    "bu-gemini": "gemini",
    "bu-claude": "anthropic",
    "bu-ollama": "ollama",
}


def providers(url: str) -> list[dict[str, Any]]:
    return [provider(name, api, url, rpm=RPM) for name, api in NAMES.items()]


def write_file(path: Path, n: int, line_bytes: int) -> int:
    filler = "x" * max(0, line_bytes - 150)
    with path.open("w") as f:
        for i in range(n):
            line = {
                "custom_id": f"u{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "chat",
                    "max_tokens": 16,
                    "messages": [{"role": "user", "content": f"q{i} {filler}"}],
                },
            }
            f.write(json.dumps(line) + "\n")
    return path.stat().st_size


class Sampler(threading.Thread):
    """The API's resident memory every 20 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.02)


def upload_and_validate(api: str, path: Path) -> dict[str, Any]:
    with httpx.Client(base_url=api, timeout=600) as http:
        t0 = time.perf_counter()
        with path.open("rb") as f:
            up = http.post("/v1/files", files={"file": (path.name, f)}, data={"purpose": "batch"})
        up.raise_for_status()
        t_up = time.perf_counter()
        batch = create_batch(http, up.json()["id"])
        while batch["status"] == "validating":
            time.sleep(0.05)
            batch = http.get(f"/v1/batches/{batch['id']}").json()
        t_valid = time.perf_counter()
    return {
        "batch": batch,
        "upload_s": round(t_up - t0, 2),
        "validate_s": round(t_valid - t_up, 2),
        "upload_and_validate_s": round(t_valid - t0, 2),
    }


def latencies(name: str, values: list[float]) -> dict[str, float]:
    return {f"{name}_p{q}_ms": round(percentile(values, q) * 1000, 1) for q in (50, 90, 99)}


def measure(f: Farm, source: Path, interactive_rps: float, busy_s: float) -> dict[str, Any]:
    sampler = Sampler(f.pid("api"))
    base_rss = rss_mb(f.pid("api"))
    idle = asyncio.run(idle_trickle(f.api_url, interactive_rps, busy_s))
    sampler.start()
    timing = upload_and_validate(f.api_url, source)
    validated_peak = sampler.peak
    busy = asyncio.run(idle_trickle(f.api_url, interactive_rps, busy_s))
    with httpx.Client(base_url=f.api_url, timeout=60) as http:
        progress = http.get(f"/v1/batches/{timing['batch']['id']}").json()["request_counts"]
        http.post(f"/v1/batches/{timing['batch']['id']}/cancel")
    sampler.stop.set()
    return {
        "status_after_validation": timing["batch"]["status"],
        **{k: v for k, v in timing.items() if k != "batch"},
        "api_rss_mb_before": round(base_rss, 1),
        "api_rss_mb_peak_upload_validate": round(validated_peak, 1),
        "api_rss_mb_peak_overall": round(sampler.peak, 1),
        "lines_done_while_measuring": progress,
        "interactive": {
            "rps": interactive_rps,
            "seconds": busy_s,
            **latencies("idle", idle),
            **latencies("busy", busy),
            "idle_n": len(idle),
            "busy_n": len(busy),
        },
    }


def run(
    lines: int = 50_000,
    line_bytes: int = 2000,
    interactive_rps: float = 5.0,
    busy_s: float = 30.0,
    latency_ms: float = 50.0,
    workers: int = 2,
    storage: str = "local",
) -> dict[str, Any]:
    """Upload, validate and start a batch of ``lines`` lines; a JSON-able report."""
    with tempfile.TemporaryDirectory(prefix="relay-upload-bench-") as tmp, ExitStack() as stack:
        source = Path(tmp) / "big.jsonl"
        size = write_file(source, lines, line_bytes)
        env = {"RELAY_STORAGE_DIR": str(Path(tmp) / "storage")}
        if storage == "s3":
            env.update(stack.enter_context(s3_storage_env()))
        with farm(providers, workers=workers, window_s=1, extra_env=env) as f:
            for name in NAMES:
                f.sim(name, latency_ms=latency_ms)
            report = measure(f, source, interactive_rps, busy_s)
    return {
        "lines": lines,
        "file_mb": round(size / 1e6, 1),
        "workers": workers,
        "storage": storage,
        "upstream_latency_ms": latency_ms,
        **report,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--line-bytes", type=int, default=2000)
    parser.add_argument("--interactive-rps", type=float, default=5.0)
    parser.add_argument("--busy-s", type=float, default=30.0)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--storage", choices=["local", "s3"], default="local")
    args = parser.parse_args()
    report = run(
        args.lines,
        args.line_bytes,
        args.interactive_rps,
        args.busy_s,
        args.latency_ms,
        args.workers,
        args.storage,
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
