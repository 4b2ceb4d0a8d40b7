"""One simulator for the dispatch tests, and a pooled client per test.

Simulated providers (all serving model ``m1``): ``a`` and ``c`` (OpenAI format), ``b``
(Anthropic format), ``down`` (every call a 503) and ``locked`` (expects :data:`KEY`; the
tests call it with another key).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from relay_core.providers.registry import make_http_client
from relay_sim import SimConfig, SimServer
from tests.unit.dispatch.support import KEY, MODEL

SIM = SimConfig.model_validate(
    {
        "providers": [
            {"name": "a", "api": "openai", "models": [{"id": MODEL}]},
            {"name": "b", "api": "anthropic", "models": [{"id": MODEL}]},
            {"name": "c", "api": "openai", "models": [{"id": MODEL}]},
            {"name": "down", "api": "openai", "outage": True, "models": [{"id": MODEL}]},
            {"name": "locked", "api": "openai", "api_key": KEY, "models": [{"id": MODEL}]},
        ]
    }
)


@pytest.fixture(scope="package")
def sim() -> Iterator[SimServer]:
    with SimServer(SIM) as server:
        yield server


@pytest.fixture(scope="package")
def ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


@pytest.fixture
async def http(ssl_context: ssl.SSLContext) -> AsyncIterator[httpx.AsyncClient]:
    client = make_http_client(ssl_context=ssl_context)
    try:
        yield client
    finally:
        await client.aclose()
