"""The fault-injection suite's farm: every part a real process that a test may break mid-batch.

Worker processes and the API process run ``relay worker`` / ``relay api``; the simulator serves
from this process over real HTTP; Redis is the shared one, or a private ``redis-server`` (AOF,
fsync on every write) that a test may kill and start again. Timings are short so that each test
takes seconds: batch lines are re-sent after 2 s without news, breakers cool down in a fraction
of a second, workers shut down in one.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import DEVNULL, Popen
from typing import Any

import httpx
import pytest
import redis

from relay_cli.embedded_redis import reachable, server_argv, server_binary
from tests.integration.batch.conftest import chat_line, create, jsonl, read_lines, upload
from tests.integration.farm.conftest import four_providers
from tests.support.farm import (
    Farm,
    ProvidersFn,
    api_process,
    forget_prefix,
    make_settings,
    simulated,
    terminate,
    wait_api,
    worker_processes,
)
from tests.support.servers import free_port

CONCURRENCY = 16
FAULT_SETTINGS: dict[str, Any] = {
    "batch_min_window_s": 1.0,
    "batch_line_timeout_s": 2.0,  # a line lost with a worker (or with Redis) is re-sent soon
    "batch_tick_s": 0.05,
    "breaker_failures": 2,
    "breaker_cooldown_s": 0.3,
    "breaker_cooldown_max_s": 1.0,
    "shutdown_grace_s": 1.0,
}


def paced_providers(sim_url: str, rpm: int = 1200) -> list[dict[str, Any]]:
    """Four providers (one per API family) serving "chat" at ``rpm`` each: at 1,200 a batch of
    a few hundred lines takes a few seconds, time enough to break something while it runs."""
    return four_providers(sim_url, rpm=rpm)


class RedisServer:
    """A private ``redis-server`` with AOF on and fsync on every write, in ``folder`` on a free
    port: :meth:`kill` it (SIGKILL loses nothing it acknowledged) and :meth:`start` it again on
    the same port with the same data."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: Popen[bytes] | None = None

    def start(self) -> None:
        binary, _source = server_binary()
        argv = [*server_argv(binary, self.folder, self.port), "--appendfsync", "always"]
        self.proc = proc = Popen(argv, stdout=DEVNULL)
        deadline = time.monotonic() + 20
        while not reachable(self.url, timeout_s=0.5):
            assert proc.poll() is None, f"redis-server exited with {proc.returncode}"
            assert time.monotonic() < deadline, "redis-server did not answer in 20 s"
            time.sleep(0.02)  # polling a condition, bounded by the deadline above

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            terminate([self.proc], grace_s=10)


@contextmanager
def redis_server(folder: Path) -> Iterator[RedisServer]:
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class FaultFarm(Farm):
    """A farm of real processes, and the handles to break them."""

    stack: ExitStack = field(repr=False)
    api: Popen[bytes]
    workers: list[Popen[bytes]]
    redis_server: RedisServer | None = None

    def restart_api(self, after_kill: Callable[[], None] = lambda: None) -> None:
        """SIGKILL the API process, run ``after_kill`` while none runs, then start a new one
        on the same port (clients keep their URL)."""
        port = httpx.URL(self.url).port
        self.api.send_signal(signal.SIGKILL)
        self.api.wait(10)
        after_kill()
        self.api, self.url = self.stack.enter_context(api_process(self.settings, port))

    def sim_provider_stats(self, provider: str) -> dict[str, Any]:
        stats: dict[str, Any] = self.sim_stats()["providers"][provider]
        return stats

    def sim_totals(self) -> dict[str, Any]:
        totals: dict[str, Any] = self.sim_stats()["totals"]
        return totals


FaultFactory = Callable[..., FaultFarm]


@pytest.fixture
def fault_farm(tmp_path: Path) -> Iterator[FaultFactory]:
    """``fault_farm(providers_fn=paced_providers, sim_overrides=None, workers=1,
    private_redis=False, catalogue_extra=None, **settings)`` -> a running :class:`FaultFarm`:
    the simulator, Redis, ``workers`` worker processes and one API process (``catalogue_extra``
    adds top-level catalogue sections, e.g. workflows)."""
    with ExitStack() as stack:

        def make(
            providers_fn: ProvidersFn = paced_providers,
            sim_overrides: dict[str, Any] | None = None,
            workers: int = 1,
            private_redis: bool = False,
            catalogue_extra: dict[str, Any] | None = None,
            **overrides: Any,
        ) -> FaultFarm:
            options = {**FAULT_SETTINGS, "storage_dir": tmp_path / "files", **overrides}
            server = None
            if private_redis:
                server = stack.enter_context(redis_server(tmp_path / "redis"))
                options["redis_url"] = server.url
            sim = simulated(tmp_path, providers_fn, sim_overrides, catalogue_extra=catalogue_extra)
            sim_url, path = stack.enter_context(sim)
            settings = make_settings(path, **options)
            client = redis.Redis.from_url(settings.redis_url)
            client.ping()  # fails the test (not skips) when there is no Redis
            stack.callback(forget_prefix, client, settings.key_prefix)
            api, url = stack.enter_context(api_process(settings, wait=False))
            procs = stack.enter_context(worker_processes(settings, workers, CONCURRENCY))
            wait_api(api, url)  # it started while the workers did
            return FaultFarm(
                url=url,
                settings=settings,
                sim_url=sim_url,
                redis=client,
                stack=stack,
                api=api,
                workers=procs,
                redis_server=server,
            )

        yield make


# ---- batches --------------------------------------------------------------------------------


def questions(count: int, tag: str = "q") -> list[dict[str, Any]]:
    """``count`` batch lines, each asking a question of its own."""
    return [chat_line(f"{tag}{i}", f"question {tag}{i}") for i in range(count)]


def submit(http: httpx.Client, lines: list[dict[str, Any]]) -> str:
    batch_id: str = create(http, upload(http, jsonl(lines)))["id"]
    return batch_id


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Poll ``check`` until it holds (a bounded wait on a condition, not a sleep)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.05)


def answered_once(
    http: httpx.Client, final: dict[str, Any], lines: list[dict[str, Any]], not_by: str = ""
) -> list[dict[str, Any]]:
    """Check that the batch completed with every line in its output file exactly once, each
    carrying its own answer (none from model ``not_by``), and nothing in its error file.
    Returns the output lines."""
    out = read_lines(http, final["output_file_id"])
    err = read_lines(http, final["error_file_id"])
    asked = {line["custom_id"]: line["body"]["messages"][-1]["content"] for line in lines}
    seen = Counter(o["custom_id"] for o in out) + Counter(e["custom_id"] for e in err)
    assert seen == Counter(asked.keys()), "a line is missing or answered twice"
    assert err == [], f"{len(err)} line(s) failed, e.g. {err[0]}"
    assert final["status"] == "completed", final
    total = len(lines)
    assert final["request_counts"] == {"total": total, "completed": total, "failed": 0}
    for o in out:
        body = o["response"]["body"]
        answer = body["choices"][0]["message"]["content"]
        assert answer.endswith(": " + asked[o["custom_id"]]), (o["custom_id"], answer)
        assert body["model"] != not_by, o
    return out
