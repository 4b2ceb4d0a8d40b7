"""Headers and bodies are read within bounds, before authentication (issue 15, item 3).

An attack with no key: four 100 MB headers kept the API busy 47 s and took +479 MiB (httptools
keeps a header however long it gets), and a client sending its headers or body a byte at a
time held a connection for ever. Now the head is bounded (431), and the head and the body
have read deadlines (408), every refusal in OpenAI's error JSON.

The real ``relay api`` process (its protocol, its settings) is attacked first; then each of the
project's two protocol classes (httptools, and the h11 fallback) is served by uvicorn in-process
with a small app that reads its body, for what both must do alike.
"""

from __future__ import annotations

import asyncio
import json
import re
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from relay_api.http_protocol import HttpBounds, JsonH11Protocol, protocol
from relay_core.settings import Settings
from tests.security.support import error_shape_problem
from tests.support.farm import api_process, make_settings, model, sim_provider, write_catalogue

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
TRICKLE_EVERY_S = 0.1  # a slowloris byte this often (the server's deadlines are 1 s)


def nowhere_settings(folder: Path, **overrides: Any) -> Settings:
    nowhere = sim_provider("p-none", "openai", "http://127.0.0.1:9", [model("m")])
    return make_settings(write_catalogue(folder / "relay.yaml", [nowhere]), **overrides)


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def peak_rss(pid: int) -> int:
    """The process's peak resident memory so far, bytes (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def read_to_end(sock: socket.socket) -> bytes:
    raw = b""
    try:
        while chunk := sock.recv(65536):
            raw += chunk
    except ConnectionResetError:
        pass
    return raw


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines)}
    return int(status_line.split()[1]), headers, body


def refusal(raw: bytes, status: int, code: str) -> None:
    """``raw`` is the answer ``status`` in OpenAI's error shape, with ``code``."""
    assert raw, "the server closed without an answer"
    got, headers, body = parse(raw)
    assert got == status, raw[:300]
    problem = error_shape_problem(got, headers.get("content-type", ""), body)
    assert problem is None, problem
    assert json.loads(body)["error"]["code"] == code
    assert headers.get("connection") == "close"


def trickle(sock: socket.socket, data: bytes) -> bytes:
    """Send ``data`` one byte every :data:`TRICKLE_EVERY_S` until the server answers; the
    answer, read to its end (empty when all was sent and nothing came back)."""
    for i in range(len(data)):
        readable, _, _ = select.select([sock], [], [], TRICKLE_EVERY_S)
        if readable:
            return read_to_end(sock)
        sock.sendall(data[i : i + 1])
    readable, _, _ = select.select([sock], [], [], 5)
    return read_to_end(sock) if readable else b""


SLOW_HEADERS = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 300 + b"\r\n\r\n"
BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 300}]}).encode()
BODY_HEAD = (
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
    b"content-length: " + str(len(BODY)).encode() + b"\r\n\r\n"
)


# --- the real API process ---------------------------------------------------------------


def test_a_100_mb_header_is_cut_early_and_costs_no_memory(tmp_path: Path) -> None:
    with api_process(nowhere_settings(tmp_path)) as (proc, url):
        for _ in range(20):  # warm: the first requests build what every request uses
            assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        before = peak_rss(proc.pid)
        sent: list[int] = []

        def attack() -> None:
            total = 0
            with socket.create_connection(address(url), timeout=30) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
                chunk = b"a" * MiB
                try:
                    while total < 100 * MiB:
                        sock.sendall(chunk)
                        total += len(chunk)
                except OSError:  # the server cut the connection: what is wanted
                    pass
            sent.append(total)

        attacker = threading.Thread(target=attack)
        attacker.start()
        assert httpx.get(f"{url}/health", timeout=30).status_code == 200
        attacker.join(120)
        assert not attacker.is_alive()
        assert httpx.get(f"{url}/health", timeout=30).status_code == 200
        grown = peak_rss(proc.pid) - before
    assert sent[0] < 16 * MiB, f"the server read {sent[0] // MiB} MiB of one header"
    assert grown < 8 * MiB, f"a 100 MB header raised the API's peak memory by {grown / MiB:.0f} MiB"


def test_an_oversized_header_gets_an_openai_shaped_431(tmp_path: Path) -> None:
    settings = nowhere_settings(tmp_path, http_max_header_bytes=16 * 1024)
    with api_process(settings) as (_, url):
        with socket.create_connection(address(url), timeout=30) as sock:
            sock.sendall(
                b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n"
            )
            raw = read_to_end(sock)
        fits = httpx.get(f"{url}/health", headers={"x-fits": "a" * 12_000}, timeout=10)
    refusal(raw, 431, "header_too_large")
    assert fits.status_code == 200


def test_headers_sent_a_byte_at_a_time_get_a_408(tmp_path: Path) -> None:
    with api_process(nowhere_settings(tmp_path, http_header_timeout_s=1)) as (_, url):
        with socket.create_connection(address(url), timeout=30) as sock:
            raw = trickle(sock, SLOW_HEADERS)
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    refusal(raw, 408, "request_timeout")


def test_a_silent_connection_is_closed_after_the_header_timeout(tmp_path: Path) -> None:
    settings = nowhere_settings(tmp_path, http_header_timeout_s=1)
    with api_process(settings) as (_, url), socket.create_connection(address(url), 30) as sock:
        readable, _, _ = select.select([sock], [], [], 20)
        raw = read_to_end(sock) if readable else b""
    refusal(raw, 408, "request_timeout")


def test_a_body_sent_a_byte_at_a_time_gets_a_408(tmp_path: Path) -> None:
    with api_process(nowhere_settings(tmp_path, http_body_timeout_s=1)) as (_, url):
        with socket.create_connection(address(url), timeout=30) as sock:
            sock.sendall(BODY_HEAD)
            raw = trickle(sock, BODY)
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    refusal(raw, 408, "request_timeout")


def test_the_compose_api_reads_within_the_same_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((Path(__file__).parents[2] / "docker-compose.yml").read_text())
    env = compose["services"]["api"]["environment"]
    for name in [k for k in env if k.startswith("RELAY_")]:
        default = re.fullmatch(r"\$\{\w+:-([^}]*)\}", str(env[name]))
        if default is not None:  # what compose passes with nothing set in .env
            monkeypatch.setenv(name, default.group(1))
    for name in ("HTTP_MAX_HEADER_BYTES", "HTTP_HEADER_TIMEOUT_S", "HTTP_BODY_TIMEOUT_S"):
        assert f"RELAY_{name}" in env, name
    compose_bounds = HttpBounds.from_settings(Settings())
    assert compose_bounds == HttpBounds() == HttpBounds.from_settings(Settings.model_construct())
    assert Settings().metrics_token is None  # an empty RELAY_METRICS_TOKEN is no token


# --- both protocol classes ----------------------------------------------------------------

BOUNDS = HttpBounds(
    max_header_bytes=8 * 1024, header_timeout_s=1, body_timeout_s=1, body_min_rate=1024
)
PROTOCOLS = {
    "httptools": protocol(BOUNDS),
    "h11": type("BoundedH11", (JsonH11Protocol,), {"bounds": BOUNDS}),
}


async def count_body(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body, answers how long it was."""
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        total += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = json.dumps({"bytes": total}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def served(http: type[asyncio.Protocol]) -> Iterator[tuple[str, int]]:
    config = uvicorn.Config(
        count_body, host="127.0.0.1", port=0, http=http, lifespan="off", log_config=None
    )
    server = uvicorn.Server(config)
    started = threading.Event()
    original = server.startup

    async def startup(sockets: Any = None) -> None:
        await original(sockets)
        started.set()

    server.startup = startup  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert started.wait(20) and server.servers, "the test server did not start"
    port: int = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(params=sorted(PROTOCOLS))
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    with served(PROTOCOLS[request.param]) as addr:
        yield addr


def post(body: bytes, **headers: str) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
    head = b"POST / HTTP/1.1\r\nHost: x\r\ncontent-length: %d\r\n" % len(body)
    return head + extra + b"\r\n" + body


def test_requests_within_bounds_are_served_on_one_connection(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=10) as sock:
        for size in (0, 3000, 200_000):  # the last one far beyond the header limit
            sock.sendall(post(b"b" * size, x_fits="a" * 6000))
            raw = b""
            while not raw.endswith(b"}"):
                raw += sock.recv(65536)
            status, _, body = parse(raw)
            assert (status, json.loads(body)) == (200, {"bytes": size})
        sock.sendall(post(b"one") + post(b"two!"))  # pipelined
        raw = b""
        while raw.count(b"}") < 2:
            raw += sock.recv(65536)
    assert raw.count(b"HTTP/1.1 200") == 2


@pytest.mark.parametrize("at_once", [True, False])
def test_a_head_over_the_limit_gets_a_431(server: tuple[str, int], at_once: bool) -> None:
    request = post(b"", x_big="a" * 20_000)
    with socket.create_connection(server, timeout=10) as sock:
        if at_once:
            sock.sendall(request)
        else:
            for i in range(0, len(request), 1000):  # many reads, the head never complete
                sock.sendall(request[i : i + 1000])
        raw = read_to_end(sock)
    refusal(raw, 431, "header_too_large")


def test_a_slow_head_gets_a_408(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=10) as sock:
        raw = trickle(sock, post(b"", x_slow="a" * 300))
    refusal(raw, 408, "request_timeout")


def test_a_slow_body_gets_a_408(server: tuple[str, int]) -> None:
    request = post(b"b" * 300)
    head = request[: request.index(b"\r\n\r\n") + 4]
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(head)
        raw = trickle(sock, b"b" * 300)
    refusal(raw, 408, "request_timeout")


def test_a_slow_head_on_a_kept_alive_connection_gets_a_408(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(post(b"first"))
        raw = b""
        while not raw.endswith(b"}"):
            raw += sock.recv(65536)
        raw = trickle(sock, post(b"", x_slow="a" * 300))
    refusal(raw, 408, "request_timeout")


def test_malformed_http_is_still_an_openai_shaped_400(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n")
        raw = read_to_end(sock)
    refusal(raw, 400, "malformed_http")
