"""A real farm for integration tests: simulator, Redis, Celery workers and the API over HTTP."""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen, TimeoutExpired
from typing import Any

import httpx
import redis
import yaml
from celery.contrib.testing.worker import start_worker

from relay_api.app import create_app
from relay_core.settings import Settings
from relay_workers.main import build_worker_app
from tests.support.servers import serve

REDIS_URL = "redis://127.0.0.1:6379/0"


def require_redis() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # fails the test (not skips) when CI has no Redis
    return client


def sim_provider(
    name: str, api: str, sim_url: str, models: list[dict[str, Any]], **limits: Any
) -> dict[str, Any]:
    paths = {"openai": "/v1", "gemini": "/v1beta", "anthropic": "", "ollama": ""}
    return {
        "name": name,
        "api": api,
        "base_url": f"{sim_url}/{name}{paths[api]}",
        "timeout_s": 5,
        "limits": limits,
        "models": models,
    }


def model(mid: str, **extra: Any) -> dict[str, Any]:
    return {"id": mid, **extra}


@dataclass
class Farm:
    url: str
    settings: Settings
    sim_url: str
    redis: redis.Redis

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)

    def sim(self, provider: str, **behaviour: Any) -> None:
        httpx.post(f"{self.sim_url}/_sim/providers/{provider}", json=behaviour).raise_for_status()

    def sim_stats(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.sim_url}/_sim/stats").json()
        return data


def write_catalogue(path: Path, providers: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"providers": providers}))
    return path


def make_settings(config: Path, **overrides: Any) -> Settings:
    prefix = f"rt{uuid.uuid4().hex[:10]}"
    return Settings(config=config, redis_url=REDIS_URL, key_prefix=prefix, **overrides)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env.update(
        RELAY_CONFIG=str(settings.config),
        RELAY_REDIS_URL=settings.redis_url,
        RELAY_KEY_PREFIX=settings.key_prefix,
        PYTHONUNBUFFERED="1",
    )
    for name in Settings.model_fields:
        if name.startswith("breaker_") or name in ("token_wait_max_s", "max_queue_wait_s"):
            env[f"RELAY_{name.upper()}"] = str(getattr(settings, name))
    return env


@contextmanager
def worker_processes(
    settings: Settings, count: int, concurrency: int
) -> Iterator[list[Popen[bytes]]]:
    """``count`` real ``relay worker`` processes; returns once each sent its first heartbeat."""
    env = settings_env(settings)
    argv = [
        sys.executable,
        "-m",
        "relay_cli.main",
        "worker",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "WARNING",
    ]
    procs = [
        Popen([*argv, "--hostname", f"w{i}-{uuid.uuid4().hex[:6]}@%h"], env=env)
        for i in range(count)
    ]
    try:
        wait_for_workers(settings, count, procs)
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except TimeoutExpired:
                p.kill()
                p.wait(5)


def wait_for_workers(settings: Settings, count: int, procs: list[Popen[bytes]]) -> None:
    client = require_redis()
    deadline = time.monotonic() + 60
    pattern = f"{settings.key_prefix}:worker:*"
    while len(list(client.scan_iter(match=pattern))) < count:
        dead = [p.returncode for p in procs if p.poll() is not None]
        assert not dead, f"a worker exited with {dead}"
        assert time.monotonic() < deadline, "workers did not start in 60 s"
        time.sleep(0.05)  # polling a condition, bounded by the deadline above


@contextmanager
def running_farm(
    settings: Settings,
    sim_url: str,
    workers: int = 1,
    concurrency: int = 16,
    processes: int = 0,
) -> Iterator[Farm]:
    """The API in-process, ``workers`` in-process Celery workers (threads pool) and
    ``processes`` real worker processes, all on the real Redis."""
    client = require_redis()
    with ExitStack() as stack:
        for _ in range(workers):
            app, runtime = build_worker_app(settings)
            stack.callback(runtime.close)
            stack.enter_context(
                start_worker(
                    app,
                    pool="threads",
                    concurrency=concurrency,
                    perform_ping_check=False,
                    loglevel="WARNING",
                    shutdown_timeout=10,
                )
            )
        if processes:
            stack.enter_context(worker_processes(settings, processes, concurrency))
        url = stack.enter_context(serve(create_app(settings)))
        try:
            yield Farm(url=url, settings=settings, sim_url=sim_url, redis=client)
        finally:
            keys = list(client.scan_iter(match=f"{settings.key_prefix}*", count=1000))
            if keys:
                client.delete(*keys)
