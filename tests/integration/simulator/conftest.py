"""One simulator server per test module, on a fake clock (sliding windows, flapping)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from relay_sim import SimServer
from tests.integration.simulator.support import CONFIG, FakeClock


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def sim(clock: FakeClock) -> Iterator[SimServer]:
    with SimServer(CONFIG, clock=clock) as server:
        yield server


@pytest.fixture(scope="module")
def http(sim: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=5) as client:
        yield client
