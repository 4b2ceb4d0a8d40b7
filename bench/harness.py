"""Start a real farm for benchmarks: simulator, API and workers as separate processes.

Everything runs on this machine against the Redis at ``RELAY_REDIS_URL`` (default
127.0.0.1:6379) under a fresh key prefix, and is stopped and cleaned up afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

REDIS_URL = os.environ.get("RELAY_REDIS_URL", "redis://127.0.0.1:6379/0")
PATHS = {"openai": "/v1", "gemini": "/v1beta", "anthropic": "", "ollama": ""}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def provider(
    name: str, api: str, sim_url: str, rpm: int | None = None, **extra: Any
) -> dict[str, Any]:
    limits = {"rpm": rpm} if rpm else {}
    return {
        "name": name,
        "api": api,
        "base_url": f"{sim_url}/{name}{PATHS[api]}",
        "timeout_s": 10,
        "limits": limits,
        "models": [{"id": f"{name}-m", "aliases": ["chat"]}],
        **extra,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Farm:
    api_url: str
    sim_url: str
    prefix: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def cpu(self, *names: str) -> float:
        return sum(cpu_seconds(self.pid(n)) for n in names if n in self.procs)

    def sim(self, name: str, **behaviour: Any) -> None:
        httpx.post(f"{self.sim_url}/_sim/providers/{name}", json=behaviour).raise_for_status()

    def sim_stats(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.sim_url}/_sim/stats").json()
        return data

    def sim_reset(self) -> None:
        httpx.post(f"{self.sim_url}/_sim/reset").raise_for_status()


def _relay(*args: str) -> list[str]:
    return [sys.executable, "-m", "relay_cli.main", *args]


def _wait(url: str, proc: subprocess.Popen[bytes], limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready in {limit_s} s")


@contextlib.contextmanager
def farm(
    providers_fn: Any,
    *,
    workers: int = 1,
    concurrency: int = 64,
    window_s: float = 60,
    with_api: bool = True,
    extra_env: dict[str, str] | None = None,
    catalogue_extra: dict[str, Any] | None = None,
) -> Iterator[Farm]:
    """``providers_fn(sim_url) -> list of catalogue provider entries``; ``catalogue_extra``:
    more top-level catalogue sections (``workflows``)."""
    tmp = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    sim_port, api_port = free_port(), free_port()
    sim_url, api_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{api_port}"
    config = tmp / "relay.yaml"
    config.write_text(
        yaml.safe_dump({"providers": providers_fn(sim_url), **(catalogue_extra or {})})
    )
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env.update(
        RELAY_CONFIG=str(config),
        RELAY_REDIS_URL=REDIS_URL,
        RELAY_KEY_PREFIX=prefix,
        RELAY_SIM_URL=sim_url,
        PYTHONUNBUFFERED="1",
        **(extra_env or {}),
    )
    out = open(tmp / "farm.log", "wb")  # noqa: SIM115 - closed below
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        procs[name] = subprocess.Popen(
            argv, env=env, stdout=out, stderr=out, start_new_session=True
        )
        return procs[name]

    try:
        sim = start(
            "sim",
            _relay(
                "sim", "--port", str(sim_port), "--config", str(config), "--window-s", str(window_s)
            ),
        )
        _wait(f"{sim_url}/_sim/health", sim)
        for i in range(workers):
            start(
                f"worker{i}",
                _relay(
                    "worker",
                    "--concurrency",
                    str(concurrency),
                    "--loglevel",
                    "WARNING",
                    "--hostname",
                    f"b{i}@%h",
                ),
            )
        if with_api:
            api = start("api", _relay("api", "--port", str(api_port), "--loglevel", "WARNING"))
            _wait(f"{api_url}/ready", api)
        yield Farm(api_url=api_url, sim_url=sim_url, prefix=prefix, procs=procs)
    finally:
        for p in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        out.close()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


def create_batch(http: httpx.Client, file_id: str) -> dict[str, Any]:
    """``POST /v1/batches`` for an uploaded file of chat lines, 24 h window: the batch object."""
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    batch: dict[str, Any] = http.post("/v1/batches", json=body).json()
    return batch


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]
