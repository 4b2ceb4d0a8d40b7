"""Request body limits (relay_api/middleware.py): 413 with OpenAI's error JSON, nothing buffered.

The middleware is driven directly over ASGI, chunk by chunk, to see what it reads and what
it lets through; then the real API over HTTP, with ``Content-Length`` and chunked bodies, and
the larger limit of ``POST /v1/files``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from relay_api.app import create_app
from relay_api.errors import install_error_handlers
from relay_api.middleware import BodyLimitMiddleware, BodyLimits, install_body_limits
from relay_core.settings import Settings
from relay_core.storage.marker import MARKER
from tests.support.farm import REDIS_URL, require_redis
from tests.support.servers import serve

LIMITS = BodyLimits(default=100, upload=1000)


@dataclass
class EchoApp:
    """Reads the whole body, answers its length; notes whether it ran at all."""

    called: bool = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        body = await Request(scope, receive).body()
        await JSONResponse({"bytes": len(body)})(scope, receive, send)


@dataclass
class Exchange:
    """One request driven by hand: the body in chunks, what was read and what came back."""

    chunks: list[bytes]
    read: int = 0
    sent: list[Message] = field(default_factory=list)

    async def receive(self) -> Message:
        if self.read < len(self.chunks):
            self.read += 1
            more = self.read < len(self.chunks)
            return {"type": "http.request", "body": self.chunks[self.read - 1], "more_body": more}
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        status: int = self.sent[0]["status"]
        return status

    def json(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))


def scope(method: str = "POST", path: str = "/v1/chat/completions", length: int | None = None):
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "method": method, "path": path, "headers": headers, "query_string": b""}


async def run(
    chunks: list[bytes], app: EchoApp | None = None, **scope_kw: Any
) -> tuple[Exchange, EchoApp]:
    app = app or EchoApp()
    exchange = Exchange(chunks)
    await BodyLimitMiddleware(app, LIMITS)(scope(**scope_kw), exchange.receive, exchange.send)
    return exchange, app


def assert_413(exchange: Exchange) -> None:
    assert exchange.status == 413
    error = exchange.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "payload_too_large"


async def test_declared_length_over_the_limit_is_refused_unread() -> None:
    exchange, app = await run([b"x" * 101], length=101)
    assert_413(exchange)
    assert not app.called
    assert exchange.read == 0


async def test_chunked_body_stops_being_read_once_over_the_limit() -> None:
    exchange, app = await run([b"x" * 40] * 10)  # no Content-Length: chunked
    assert_413(exchange)
    assert app.called
    assert exchange.read == 3  # 120 bytes in: refused, the other 280 never read


async def test_a_lying_content_length_is_caught_by_counting() -> None:
    exchange, _ = await run([b"x" * 60, b"x" * 60], length=50)
    assert_413(exchange)


async def test_bodies_up_to_the_limit_pass_whole() -> None:
    exchange, _ = await run([b"x" * 50, b"x" * 50], length=100)
    assert exchange.status == 200
    assert exchange.json() == {"bytes": 100}


async def test_uploads_have_their_own_larger_limit() -> None:
    ok, _ = await run([b"x" * 500] * 2, path="/v1/files")
    too_big, _ = await run([b"x" * 500] * 3, path="/v1/files")
    declared, _ = await run([b""], path="/v1/files/", length=1001)
    not_an_upload, _ = await run([b"x" * 500], method="GET", path="/v1/files", length=500)
    assert ok.status == 200 and ok.json() == {"bytes": 1000}
    assert_413(too_big)
    assert_413(declared)
    assert_413(not_an_upload)


async def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def nothing() -> Message:
        return {"type": "lifespan.startup"}

    async def drop(_: Message) -> None:
        return None

    await BodyLimitMiddleware(app, LIMITS)({"type": "lifespan"}, nothing, drop)
    assert seen == ["lifespan"]


class Body(BaseModel):
    text: str


def fastapi_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_body_limits(app, Settings(max_request_bytes=100, max_upload_bytes=1000))

    @app.post("/echo")
    async def echo(body: Body) -> dict[str, int]:
        return {"chars": len(body.text)}

    return app


async def test_fastapi_body_parsing_gets_the_413_not_a_400() -> None:
    transport = httpx.ASGITransport(app=fastapi_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        small = await http.post("/echo", json={"text": "x" * 10})

        async def chunks() -> Any:
            for _ in range(5):
                yield b'{"text": "' + b"x" * 40 + b'"}'

        big = await http.post("/echo", content=chunks())
    assert small.status_code == 200
    assert big.status_code == 413
    assert big.json()["error"]["code"] == "payload_too_large"


def test_defaults() -> None:
    settings = Settings()
    assert settings.max_request_bytes == 10 * 1024 * 1024
    assert settings.max_upload_bytes == 200 * 1024 * 1024


# ---- the real API over HTTP ----------------------------------------------------------------

KIB = 1024


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    client = require_redis()
    prefix = f"rt{uuid.uuid4().hex[:10]}"
    settings = Settings(
        demo=True,
        redis_url=REDIS_URL,
        key_prefix=prefix,
        storage_dir=tmp_path / "files",
        max_request_bytes=64 * KIB,
        max_upload_bytes=512 * KIB,
        batch_max_file_bytes=1024 * KIB,
    )
    try:
        with serve(create_app(settings)) as url:
            yield url, tmp_path / "files"
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


def chat_body(size: int) -> bytes:
    """A chat request that gets past the limit to a quick 404 (no model of that name)."""
    return json.dumps(
        {"model": "no-such-model", "messages": [{"role": "user", "content": "x" * size}]}
    ).encode()


def in_chunks(data: bytes, size: int = 8 * KIB) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def multipart(file_bytes: int) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    line = b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'
    data = (line * (file_bytes // len(line) + 1))[:file_bytes]
    return head + data + f"\r\n--{boundary}--\r\n".encode(), boundary


@pytest.mark.integration
def test_api_refuses_large_chat_bodies_declared_or_chunked(api: tuple[str, Path]) -> None:
    url, _ = api
    body = chat_body(100 * KIB)
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=url, timeout=10) as http:
        declared = http.post("/v1/chat/completions", content=body, headers=headers)
        chunked = http.post("/v1/chat/completions", content=in_chunks(body), headers=headers)
        fine = http.post("/v1/chat/completions", content=chat_body(10), headers=headers)
    assert chunked.request.headers["transfer-encoding"] == "chunked"
    for r in (declared, chunked):
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "payload_too_large"
        assert "64 KiB" in r.json()["error"]["message"]
    assert fine.status_code == 404, fine.text


@pytest.mark.integration
def test_api_takes_uploads_up_to_their_own_limit(api: tuple[str, Path]) -> None:
    url, storage = api
    small, boundary = multipart(200 * KIB)  # over the 64 KiB body limit, under 512 KiB
    big, big_boundary = multipart(600 * KIB)
    with httpx.Client(base_url=url, timeout=10) as http:
        ok = http.post(
            "/v1/files",
            content=small,
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        refused = http.post(
            "/v1/files",
            content=in_chunks(big),
            headers={"content-type": f"multipart/form-data; boundary={big_boundary}"},
        )
    assert ok.status_code == 200, ok.text
    assert ok.json()["bytes"] == 200 * KIB
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"]["code"] == "payload_too_large"
    # The refused upload left nothing behind: only the accepted file is stored (beside the
    # token that tells workers they see the API's storage).
    stored = [p.stat().st_size for p in storage.rglob("*") if p.is_file() and p.name != MARKER]
    assert stored == [200 * KIB]
