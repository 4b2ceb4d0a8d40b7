"""Fixtures for operations tests: a simulator, a catalogue, and real processes on demand."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen, TimeoutExpired
from typing import Any

import httpx
import pytest

from relay_core.catalogue.loader import load_catalogue
from relay_core.settings import Settings
from relay_sim.config import SimConfig
from relay_sim.server import SimServer
from tests.support.farm import (
    make_settings,
    model,
    require_redis,
    settings_env,
    sim_provider,
    write_catalogue,
)

pytestmark = pytest.mark.integration


def one_provider(sim_url: str) -> list[dict[str, Any]]:
    return [sim_provider("p-openai", "openai", sim_url, [model("p-openai-m", aliases=["chat"])])]


@dataclass
class Sim:
    url: str

    def set(self, provider: str, **behaviour: Any) -> None:
        httpx.post(f"{self.url}/_sim/providers/{provider}", json=behaviour).raise_for_status()

    def requests(self, provider: str) -> int:
        stats = httpx.get(f"{self.url}/_sim/stats").json()
        count: int = stats["providers"][provider]["requests"]
        return count

    def wait_requests(self, provider: str, at_least: int, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while self.requests(provider) < at_least:
            assert time.monotonic() < deadline, f"{provider} never saw {at_least} request(s)"
            time.sleep(0.02)  # polling the simulator, bounded by the deadline


@dataclass
class Setup:
    sim: Sim
    settings: Settings
    catalogue: Path


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    """A simulator serving one provider and settings (unique key prefix) pointing at it."""
    redis = require_redis()
    draft = write_catalogue(tmp_path / "draft.yaml", one_provider("http://sim.invalid"))
    with SimServer(SimConfig.from_catalogue(load_catalogue(draft))) as server:
        path = write_catalogue(tmp_path / "relay.yaml", one_provider(server.url))
        settings = make_settings(path)
        try:
            yield Setup(Sim(server.url), settings, path)
        finally:
            keys = list(redis.scan_iter(match=f"{settings.key_prefix}*", count=1000))
            if keys:
                redis.delete(*keys)


ProcessFactory = Callable[..., Popen[bytes]]


@pytest.fixture
def relay_process(setup: Setup) -> Iterator[ProcessFactory]:
    """``relay_process("worker", "--concurrency", "4", RELAY_SHUTDOWN_GRACE_S="1")``: a real
    ``relay`` process with the setup's settings (and extra environment); killed at the end."""
    with ExitStack() as stack:

        def start(*argv: str, **env: str) -> Popen[bytes]:
            environ = {**settings_env(setup.settings), **env}
            proc = Popen([sys.executable, "-m", "relay_cli.main", *argv], env=environ)
            stack.callback(_stop, proc)
            return proc

        yield start


def _stop(proc: Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    try:
        proc.wait(10)
    except TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
