"""A real farm for integration tests: simulator, Redis, Celery workers and the API over HTTP."""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from subprocess import Popen, TimeoutExpired
from typing import Any

import httpx
import redis
import yaml
from celery.contrib.testing.worker import start_worker
from opentelemetry.trace import Tracer
from pydantic import SecretStr

from relay_api.app import create_app
from relay_cli.up_wait import http_ok
from relay_core.catalogue.loader import load_catalogue
from relay_core.settings import Settings
from relay_sim.config import SimConfig
from relay_sim.server import SimServer
from relay_workers.main import build_worker_app
from tests.support.servers import free_port, serve

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


def write_catalogue(
    path: Path, providers: list[dict[str, Any]], extra: dict[str, Any] | None = None
) -> Path:
    """The catalogue of ``providers``, with ``extra`` top-level sections (``policies``)."""
    path.write_text(yaml.safe_dump({"providers": providers, **(extra or {})}))
    return path


ProvidersFn = Callable[[str], list[dict[str, Any]]]


@contextmanager
def simulated(
    folder: Path,
    providers_fn: ProvidersFn,
    sim_overrides: dict[str, Any] | None = None,
    seed: int | None = None,
    catalogue_extra: dict[str, Any] | None = None,
) -> Iterator[tuple[str, Path]]:
    """A simulator mirroring the catalogue entries ``providers_fn(sim_url)`` returns (same
    names, families, models and limits, then ``sim_overrides``; its random draws seeded by
    ``seed``), and that catalogue (plus ``catalogue_extra``'s top-level sections) written in
    ``folder`` pointing at it. Yields the simulator's URL and the catalogue's path."""
    draft = write_catalogue(
        folder / "draft.yaml", providers_fn("http://sim.invalid"), catalogue_extra
    )
    config = SimConfig.from_catalogue(load_catalogue(draft), **(sim_overrides or {}))
    config.seed = seed
    with SimServer(config) as sim:
        yield (
            sim.url,
            write_catalogue(folder / "relay.yaml", providers_fn(sim.url), catalogue_extra),
        )


def make_settings(config: Path, **overrides: Any) -> Settings:
    """Settings for a test farm: its own Redis prefix, and a data folder (where the owner
    secret is kept) next to its catalogue, not in the working directory."""
    defaults = {
        "key_prefix": f"rt{uuid.uuid4().hex[:10]}",
        "redis_url": REDIS_URL,
        "data_dir": config.parent / "data",
        # Rankings without exploration draws, so a test's routing is repeatable; the
        # exploring share is tested on the Ranker (tests/unit/routing/test_learned.py).
        "routing_explore": 0.0,
    }
    return Settings(config=config, **{**defaults, **overrides})


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process these settings: every one that is not the
    default (the parent's own ``RELAY_*`` variables are left out)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env["PYTHONUNBUFFERED"] = "1"
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is None or value == field.get_default(call_default_factory=True):
            continue
        env[f"RELAY_{name.upper()}"] = _env_value(value)
    return env


def _env_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list):
        return ",".join(_env_value(v) for v in value)
    if isinstance(value, StrEnum):
        return value.value
    return str(value)


@contextmanager
def worker_processes(
    settings: Settings, count: int, concurrency: int | None, providers: list[str] | None = None
) -> Iterator[list[Popen[bytes]]]:
    """``count`` real ``relay worker`` processes (serving ``providers``, default all; with
    ``concurrency`` None, as ``relay up`` starts them: no ``--concurrency``); returns once each
    sent its first heartbeat."""
    env = settings_env(settings)
    argv = [
        sys.executable,
        "-m",
        "relay_cli.main",
        "worker",
        *(["--concurrency", str(concurrency)] if concurrency is not None else []),
        "--loglevel",
        "WARNING",
        *(["--providers", ",".join(providers)] if providers else []),
    ]
    procs = [
        Popen([*argv, "--hostname", f"w{i}-{uuid.uuid4().hex[:6]}@%h"], env=env)
        for i in range(count)
    ]
    try:
        wait_for_workers(settings, count, procs)
        yield procs
    finally:
        terminate(procs)


def terminate(procs: list[Popen[bytes]], grace_s: float = 20) -> None:
    """SIGTERM every process still running, then wait for each (SIGKILL past the grace)."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(grace_s)
        except TimeoutExpired:
            p.kill()
            p.wait(5)


def wait_for_workers(settings: Settings, count: int, procs: list[Popen[bytes]]) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    deadline = time.monotonic() + 60
    pattern = f"{settings.key_prefix}:worker:*"
    while len(list(client.scan_iter(match=pattern))) < count:
        dead = [p.returncode for p in procs if p.poll() is not None]
        assert not dead, f"a worker exited with {dead}"
        assert time.monotonic() < deadline, "workers did not start in 60 s"
        time.sleep(0.05)  # polling a condition, bounded by the deadline above


@contextmanager
def api_process(
    settings: Settings, port: int | None = None, wait: bool = True
) -> Iterator[tuple[Popen[bytes], str]]:
    """A real ``relay api`` process (on ``port``, else a free one). Yields the process and its
    base URL once it answers ``/health`` (at once with ``wait=False``: then :func:`wait_api`
    before using it, e.g. after starting workers meanwhile)."""
    port = port or free_port()
    argv = [sys.executable, "-m", "relay_cli.main", "api", "--port", str(port)]
    proc = Popen([*argv, "--loglevel", "WARNING"], env=settings_env(settings))
    url = f"http://127.0.0.1:{port}"
    try:
        if wait:
            wait_api(proc, url)
        yield proc, url
    finally:
        terminate([proc])


def wait_api(proc: Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 60
    while not http_ok(f"{url}/health")():
        assert proc.poll() is None, f"the API exited with {proc.returncode}"
        assert time.monotonic() < deadline, "the API did not start in 60 s"
        time.sleep(0.05)  # polling a condition, bounded by the deadline above


@contextmanager
def running_farm(
    settings: Settings,
    sim_url: str,
    workers: int = 1,
    concurrency: int | None = 16,
    processes: int = 0,
    tracer: Tracer | None = None,
) -> Iterator[Farm]:
    """The API in-process, ``workers`` in-process Celery workers (threads pool) and
    ``processes`` real worker processes, all on the settings' Redis (``concurrency`` None:
    the processes start with the default, and the in-process workers with 16); ``tracer``:
    where the in-process API's and workers' spans go."""
    client = redis.Redis.from_url(settings.redis_url)
    client.ping()  # fails the test (not skips) when there is no Redis
    with ExitStack() as stack:
        for _ in range(workers):
            app, runtime = build_worker_app(settings, tracer=tracer)
            stack.callback(runtime.close)
            stack.enter_context(
                start_worker(
                    app,
                    pool="threads",
                    concurrency=concurrency or 16,
                    perform_ping_check=False,
                    loglevel="WARNING",
                    shutdown_timeout=10,
                )
            )
        if processes:
            stack.enter_context(worker_processes(settings, processes, concurrency))
        url = stack.enter_context(serve(create_app(settings, tracer)))
        try:
            yield Farm(url=url, settings=settings, sim_url=sim_url, redis=client)
        finally:
            forget_prefix(client, settings.key_prefix)


def forget_prefix(client: redis.Redis, prefix: str) -> None:
    """Delete every key a test farm left under ``prefix``."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


FarmFactory = Callable[..., Farm]


@contextmanager
def farm_factory(
    folder: Path, default_providers: ProvidersFn, **defaults: Any
) -> Iterator[FarmFactory]:
    """``make(providers_fn=default_providers, sim_overrides=None, workers=1, concurrency=16,
    processes=0, sim_seed=None, catalogue_extra=None, **settings)`` -> a running :class:`Farm`
    (settings over ``defaults``; ``catalogue_extra`` adds top-level catalogue sections, e.g.
    policies); every farm made stops when the block ends. The fixtures of the farm and batch
    tests use it."""
    with ExitStack() as stack:

        def make(
            providers_fn: ProvidersFn = default_providers,
            sim_overrides: dict[str, Any] | None = None,
            workers: int = 1,
            concurrency: int | None = 16,
            processes: int = 0,
            sim_seed: int | None = None,
            catalogue_extra: dict[str, Any] | None = None,
            **overrides: Any,
        ) -> Farm:
            sim = simulated(folder, providers_fn, sim_overrides, sim_seed, catalogue_extra)
            sim_url, path = stack.enter_context(sim)
            settings = make_settings(path, **{**defaults, **overrides})
            farm = running_farm(
                settings, sim_url, workers=workers, concurrency=concurrency, processes=processes
            )
            return stack.enter_context(farm)

        yield make
