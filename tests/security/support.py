"""Tools for the security suite: a recording upstream, a Redis MONITOR tap, leak searches."""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.farm import REDIS_URL
from tests.support.servers import serve

Responder = Callable[[Request, bytes], Response]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """An HTTP server that records every request it gets and answers with ``respond``."""

    respond: Responder
    seen: list[Seen] = field(default_factory=list)

    def app(self) -> Starlette:
        async def any_path(request: Request) -> Response:
            body = await request.body()
            headers = dict(request.headers)
            self.seen.append(Seen(request.method, request.url.path, headers, body))
            return self.respond(request, body)

        methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
        return Starlette(routes=[Route("/{path:path}", any_path, methods=methods)])

    @contextmanager
    def serving(self) -> Iterator[str]:
        with serve(self.app()) as url:
            yield url


def never_called(_: Request, __: bytes) -> Response:
    return JSONResponse({"error": {"message": "this server must never be called"}}, 418)


def error_shape_problem(status: int, content_type: str, body: bytes) -> str | None:
    """Why an error answer is not OpenAI's error object, or None when it is."""
    if not content_type.startswith("application/json"):
        return f"{status} with content-type {content_type!r}"
    try:
        data: Any = json.loads(body)
    except ValueError:
        return f"{status} whose body is not JSON"
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or set(error) != {"message", "type", "param", "code"}:
        return f"{status} not OpenAI-shaped: {data!r:.200}"
    if not isinstance(error["message"], str) or not isinstance(error["type"], str):
        return f"{status} with a non-string message or type: {error!r:.200}"
    return None


_BASE64 = re.compile(rb"[A-Za-z0-9+/]{16,}={0,2}")


def decoded_views(raw: bytes) -> list[bytes]:
    """``raw`` and every base64 run inside it, decoded (task bodies are base64 in kombu)."""
    views = [raw]
    for match in _BASE64.finditer(raw):
        chunk = match.group(0)
        try:
            views.append(base64.b64decode(chunk + b"=" * (-len(chunk) % 4), validate=True))
        except (binascii.Error, ValueError):
            continue
    return views


def leaks(secrets: Iterable[str], texts: Iterable[bytes | str]) -> list[str]:
    """The secrets that appear in any of ``texts`` (or base64 runs inside them)."""
    found: set[str] = set()
    wanted = [s.encode() for s in secrets]
    for text in texts:
        raw = text.encode() if isinstance(text, str) else text
        for view in decoded_views(raw):
            found.update(s.decode() for s in wanted if s in view)
    return sorted(found)


class RedisTap:
    """Every command any client sends to Redis while it runs (``MONITOR``), as raw lines."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pool = redis.ConnectionPool.from_url(REDIS_URL)
        conn = pool.get_connection()
        try:
            conn.send_command("MONITOR")
            conn.read_response()
            self._ready.set()
            while not self._stop.is_set():
                line = conn.read_response()
                if isinstance(line, bytes):
                    self.lines.append(line)
        finally:
            conn.disconnect()
            pool.disconnect()

    def __enter__(self) -> RedisTap:
        self._thread.start()
        assert self._ready.wait(10), "MONITOR did not start"
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        redis.Redis.from_url(REDIS_URL).ping()  # one more line: the reader sees the flag
        self._thread.join(10)

    def commands(self, verb: bytes) -> list[bytes]:
        return [line for line in self.lines if f'"{verb.decode()}"'.encode() in line.upper()]


def dump_prefix(client: redis.Redis, prefix: str) -> list[bytes]:
    """Every key under ``prefix`` and its value, whatever its type (for leak searches)."""
    out: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        kind = client.type(key)
        value: Any
        if kind == b"string":
            value = client.get(key)
        elif kind == b"hash":
            value = client.hgetall(key)
        elif kind == b"list":
            value = client.lrange(key, 0, -1)
        elif kind == b"set":
            value = client.smembers(key)
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"stream":
            value = client.xrange(key)
        else:
            value = b""
        out.append(key + b" " + repr(value).encode())
    return out
