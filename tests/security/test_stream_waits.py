"""Streams that wait for a first token cannot freeze the farm (issue 15, item 5).

Each stream waiting for its first token held a pooled Redis connection (one ``XREAD BLOCK``
each): past the pool's size every tenant got 500s (``No connection available``), and a client
that disconnected was noticed only once that token came, so its stream key stayed 10 minutes.

Real processes: a ``relay api`` per test, one ``relay worker`` serving ``p-hang`` and ``p-ok``,
the simulator, real Redis. ``p-idle`` is served by no worker: its streams wait in the queue.
Streams are opened on raw sockets, so that "the client disconnects" is a ``close()``.
"""

from __future__ import annotations

import json
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay_core.dispatch.envelope import queue_name
from relay_core.settings import Settings
from tests.security.support import error_shape_problem
from tests.support.farm import (
    REDIS_URL,
    api_process,
    forget_prefix,
    make_settings,
    model,
    require_redis,
    sim_provider,
    simulated,
    worker_processes,
)

pytestmark = pytest.mark.integration

KEY_A = secrets.token_hex(16)
KEY_B = secrets.token_hex(16)
CHAT = "/v1/chat/completions"
CANCEL_WITHIN_S = 30  # well under p-hang's 120 s timeout: only a cancelled call ends sooner


def providers(sim_url: str) -> list[dict[str, Any]]:
    hang = sim_provider("p-hang", "openai", sim_url, [model("m")])
    hang["timeout_s"] = 120  # a hang ends by the provider's timeout only after the test
    return [
        hang,
        sim_provider("p-ok", "openai", sim_url, [model("m")]),
        sim_provider("p-idle", "openai", sim_url, [model("m")]),
    ]


@dataclass
class StreamFarm:
    settings: Settings
    sim_url: str

    @contextmanager
    def api(self, **overrides: Any) -> Iterator[str]:
        with api_process(self.settings.model_copy(update=overrides)) as (_, url):
            yield url

    def sim(self, provider: str, **behaviour: Any) -> None:
        url = f"{self.sim_url}/_sim/providers/{provider}"
        httpx.post(url, json=behaviour).raise_for_status()

    def in_flight(self, provider: str) -> int:
        stats = httpx.get(f"{self.sim_url}/_sim/stats").json()
        return int(stats["providers"][provider]["in_flight"])

    def stream_keys(self) -> list[bytes]:
        return list(require_redis().scan_iter(match=f"{self.settings.key_prefix}:stream:*"))


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamFarm]:
    redis = require_redis()
    folder: Path = tmp_path_factory.mktemp("stream-waits")
    with simulated(folder, providers) as (sim_url, catalogue):
        settings = make_settings(catalogue, api_keys=[KEY_A, KEY_B], request_timeout_s=120)
        try:
            with worker_processes(settings, 1, 32, ["p-hang", "p-ok"]):
                yield StreamFarm(settings, sim_url)
        finally:
            forget_prefix(redis, settings.key_prefix)


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f} s"
        time.sleep(0.05)  # polling a condition, bounded by the deadline above


def ask(target: str, stream: bool = False, text: str = "hello") -> dict[str, Any]:
    return {"model": target, "stream": stream, "messages": [{"role": "user", "content": text}]}


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def open_stream(url: str, key: str, target: str, text: str = "hello") -> socket.socket:
    """A streamed chat request sent on a raw socket, its answer left unread."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps(ask(target, stream=True, text=text)).encode()
    head = (
        f"POST {CHAT} HTTP/1.1\r\nhost: {host}:{port}\r\nauthorization: Bearer {key}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(head.encode() + body)
    return sock


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        with suppress(OSError):
            sock.close()


def streamed(url: str, key: str, target: str) -> tuple[int, bytes]:
    with (
        httpx.Client(base_url=url, timeout=60, headers=auth(key)) as http,
        http.stream("POST", CHAT, json=ask(target, stream=True)) as r,
    ):
        return r.status_code, r.read()


def usage_requests(url: str, key: str, provider: str) -> int:
    r = httpx.get(f"{url}/v1/usage", params={"provider": provider}, headers=auth(key))
    r.raise_for_status()
    return int(r.json()["totals"].get("requests", 0))


def test_streams_waiting_past_the_pool_leave_every_tenant_served(farm: StreamFarm) -> None:
    # 300 streams waiting for their first token, on an API whose Redis pool holds 8: each
    # used to hold a connection, and every other request then waited for one, then got a 500.
    with farm.api(redis_max_connections=8, max_streams_per_key=1000) as url:
        queue = queue_name(farm.settings.key_prefix, "p-idle")
        redis = require_redis()
        socks = [open_stream(url, KEY_A, "p-idle/m", f"wait {i}") for i in range(300)]
        try:
            wait_until(lambda: redis.llen(queue) >= 300, "all 300 streams queued")
            with httpx.Client(base_url=url, timeout=60, headers=auth(KEY_B)) as http:
                r = http.post(CHAT, json=ask("p-ok/m"))
            assert r.status_code == 200, r.text
            status, body = streamed(url, KEY_B, "p-ok/m")  # a stream is served meanwhile too
            assert status == 200, body
            assert body.endswith(b"data: [DONE]\n\n")
            answered, _, _ = select.select(socks, [], [], 0)
            assert not answered, f"{len(answered)} waiting streams got an answer (an error)"
        finally:
            close_all(socks)


@pytest.mark.parametrize("behaviour", [{"hang": True}, {"latency_ms": 8000}], ids=str)
def test_clients_leaving_while_waiting_cancel_the_call_and_leave_no_stream_key(
    farm: StreamFarm, behaviour: dict[str, Any]
) -> None:
    farm.sim("p-hang", **behaviour)
    try:
        with farm.api() as url:
            before = usage_requests(url, KEY_A, "p-hang")
            socks = [open_stream(url, KEY_A, "p-hang/m", f"leave {i}") for i in range(20)]
            try:
                wait_until(lambda: farm.in_flight("p-hang") == 20, "20 calls at the provider")
            finally:
                close_all(socks)
            # The API noticed (no first token came), the worker cancelled the upstream call.
            wait_until(
                lambda: farm.in_flight("p-hang") == 0, "upstream calls cancelled", CANCEL_WITHIN_S
            )
            wait_until(lambda: usage_requests(url, KEY_A, "p-hang") >= before + 20, "calls settled")
            assert farm.stream_keys() == []
    finally:
        farm.sim("p-hang", hang=False, latency_ms=0)


def test_a_key_over_its_stream_cap_gets_429_while_another_is_served(farm: StreamFarm) -> None:
    farm.sim("p-hang", hang=True)
    try:
        with farm.api(max_streams_per_key=3) as url:
            socks = [open_stream(url, KEY_A, "p-hang/m", f"cap {i}") for i in range(3)]
            try:
                wait_until(lambda: farm.in_flight("p-hang") == 3, "3 calls at the provider")
                with httpx.Client(base_url=url, timeout=60, headers=auth(KEY_A)) as http:
                    over = http.post(CHAT, json=ask("p-ok/m", stream=True))
                    plain = http.post(CHAT, json=ask("p-ok/m"))  # the cap is on streams
                assert over.status_code == 429, over.text
                assert over.headers["retry-after"] == "1"
                assert over.json()["error"]["code"] == "rate_limit_exceeded"
                assert over.json()["error"]["type"] == "rate_limit_error"
                assert plain.status_code == 200, plain.text
                status, body = streamed(url, KEY_B, "p-ok/m")
                assert status == 200, body
                assert body.endswith(b"data: [DONE]\n\n")
            finally:
                close_all(socks)
            # Their slots come back as the streams end (before their calls are cancelled).
            wait_until(lambda: farm.in_flight("p-hang") == 0, "calls cancelled", CANCEL_WITHIN_S)
            status, body = streamed(url, KEY_A, "p-ok/m")
            assert status == 200, body
    finally:
        farm.sim("p-hang", hang=False)


class RedisGate:
    """A TCP proxy to Redis that can hold every byte in both directions: a stalled Redis."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        self.socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        host, port = REDIS_URL.removeprefix("redis://").split("/")[0].split(":")
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((host, int(port)))
            self.socks += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                self.open.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.open.set()
        self.listener.close()
        close_all(self.socks)


def test_a_full_redis_pool_is_a_503_with_retry_after_never_a_500(farm: StreamFarm) -> None:
    gate = RedisGate()
    try:
        # A pool of 4: the reply subscription holds one, three requests stall on the others,
        # the rest find no connection ("No connection available" after the pool's timeout).
        with farm.api(redis_url=gate.url, redis_max_connections=4) as url:
            answers: list[httpx.Response] = []

            def chat() -> None:
                answers.append(
                    httpx.post(f"{url}{CHAT}", json=ask("p-ok/m"), headers=auth(KEY_B), timeout=90)
                )

            gate.open.clear()
            threads = [threading.Thread(target=chat, daemon=True) for _ in range(6)]
            for thread in threads:
                thread.start()
            wait_until(lambda: len(answers) >= 3, "requests without a connection answered")
            gate.open.set()
            for thread in threads:
                thread.join(60)
        assert len(answers) == 6
        refused = answers[:3]
        for r in refused:
            assert r.status_code == 503, r.text
            assert int(r.headers["retry-after"]) >= 1
            assert r.json()["error"]["code"] == "redis_unavailable"
            assert error_shape_problem(503, r.headers["content-type"], r.content) is None
        assert all(r.status_code == 200 for r in answers[3:]), [r.text for r in answers[3:]]
    finally:
        gate.close()
