"""Graceful shutdown: a worker finishes calls in flight (bounded) and hands the rest back to the
queue; the API drains open requests. Real processes, real Redis, the simulator."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.integration.ops.conftest import ProcessFactory, Setup
from tests.support.farm import Farm, require_redis, running_farm, wait_for_workers
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

WORKER = ("worker", "--concurrency", "4", "--loglevel", "WARNING")


def ask(url: str, text: str = "still there?") -> httpx.Response:
    body = {"model": "chat", "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)


def test_sigterm_lets_a_call_in_flight_finish(setup: Setup, relay_process: ProcessFactory) -> None:
    setup.sim.set("p-openai", latency_ms=1500)
    worker = relay_process(*WORKER, RELAY_SHUTDOWN_GRACE_S="15")
    wait_for_workers(setup.settings, 1, [worker])
    farm: Farm
    with (
        running_farm(setup.settings, setup.sim.url, workers=0) as farm,
        ThreadPoolExecutor(1) as pool,
    ):
        pending = pool.submit(ask, farm.url)
        setup.sim.wait_requests("p-openai", 1)
        worker.send_signal(signal.SIGTERM)
        reply = pending.result(30)
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"].endswith("still there?")
        assert worker.wait(15) == 0
    assert setup.sim.requests("p-openai") == 1


def test_sigterm_hands_a_call_past_the_grace_back_to_its_queue(
    setup: Setup, relay_process: ProcessFactory
) -> None:
    redis = require_redis()
    queue = f"{setup.settings.key_prefix}.p-openai"
    setup.sim.set("p-openai", latency_ms=8000)
    first = relay_process(*WORKER, RELAY_SHUTDOWN_GRACE_S="0.5")
    wait_for_workers(setup.settings, 1, [first])
    with (
        running_farm(setup.settings, setup.sim.url, workers=0) as farm,
        ThreadPoolExecutor(1) as pool,
    ):
        pending = pool.submit(ask, farm.url, "hand me back")
        setup.sim.wait_requests("p-openai", 1)
        started = time.monotonic()
        first.send_signal(signal.SIGTERM)
        assert first.wait(15) == 0
        assert time.monotonic() - started < 6  # it did not sit out the 8 s call
        assert redis.llen(queue) == 1  # the envelope is back on its queue, nobody lost it
        assert not pending.done()
        # Another worker picks it up and the waiting client gets its answer.
        setup.sim.set("p-openai", latency_ms=0)
        second = relay_process(*WORKER)
        reply = pending.result(30)
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"].endswith("hand me back")
        second.send_signal(signal.SIGTERM)
        assert second.wait(15) == 0
    assert setup.sim.requests("p-openai") == 2


def test_sigterm_to_the_api_lets_open_requests_finish(
    setup: Setup, relay_process: ProcessFactory
) -> None:
    setup.sim.set("p-openai", latency_ms=1500)
    port = free_port()
    api = relay_process(
        "api", "--port", str(port), "--loglevel", "WARNING", RELAY_SHUTDOWN_GRACE_S="15"
    )
    url = f"http://127.0.0.1:{port}"
    with running_farm(setup.settings, setup.sim.url, workers=1), ThreadPoolExecutor(1) as pool:
        deadline = time.monotonic() + 30
        while not _up(url):
            assert api.poll() is None and time.monotonic() < deadline, "the API did not start"
            time.sleep(0.05)  # polling for the port, bounded by the deadline
        pending = pool.submit(ask, url, "drain me")
        setup.sim.wait_requests("p-openai", 1)
        api.send_signal(signal.SIGTERM)
        reply = pending.result(30)
        assert reply.status_code == 200, reply.text
        # uvicorn re-raises the signal once it has shut down cleanly.
        assert api.wait(15) in (0, -signal.SIGTERM)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health")


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
