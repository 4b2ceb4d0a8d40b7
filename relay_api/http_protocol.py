"""uvicorn's HTTP protocols, with bounded reading, refusing in OpenAI's error JSON.

uvicorn reads a request's line and headers before any ASGI app (and so before authentication)
sees it. Left alone it keeps every header byte a client sends (httptools has no limit: four
100 MB headers kept the API busy 47 s and took +479 MiB), waits for ever for headers or a body
that trickle in a byte at a time, and answers what it cannot parse with a ``text/plain`` 400.
Its protocol classes are uvicorn's extension point for that (``uvicorn.run(http=...)``); these
subclasses bound a connection's reading by :class:`HttpBounds`:

- the request line and headers: at most ``max_header_bytes`` (431), arriving within
  ``header_timeout_s`` of their first byte (408; a new connection's clock starts at once);
- the body: within ``body_timeout_s`` of the headers, plus one second per ``body_min_rate``
  bytes received, so a large upload at a fair rate is never cut (408; while the app is not
  reading, the client is not late);

and answer every refusal, malformed HTTP included (400), with ``{"error": {...}}``. A refused
connection is half-closed and drained for a moment (a lingering close), so that a client still
sending reads the answer instead of a reset.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Protocol, cast

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from relay_core.settings import Settings

# A refused connection is drained of at most this much, for at most this long, then closed.
LINGER_BYTES = 1024 * 1024
LINGER_S = 2.0
HEAD_END = re.compile(rb"\r?\n\r?\n")  # h11 takes a bare LF as a line's end too


@dataclass(frozen=True, slots=True)
class HttpBounds:
    max_header_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    body_min_rate: float = 64 * 1024  # bytes per second

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpBounds:
        return cls(
            max_header_bytes=settings.http_max_header_bytes,
            header_timeout_s=settings.http_header_timeout_s,
            body_timeout_s=settings.http_body_timeout_s,
            body_min_rate=settings.http_body_min_rate,
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer the protocol gives itself, before or instead of the app's."""

    status: int
    reason: str
    code: str
    message: str

    def response(self) -> bytes:
        error = {
            "message": self.message,
            "type": "invalid_request_error",
            "param": None,
            "code": self.code,
        }
        body = json.dumps({"error": error}).encode()
        head = (
            f"HTTP/1.1 {self.status} {self.reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        return head.encode() + body


def malformed(msg: str) -> Refusal:
    return Refusal(400, "Bad Request", "malformed_http", f"Malformed HTTP request: {msg}")


def header_too_large(bounds: HttpBounds) -> Refusal:
    return Refusal(
        431,
        "Request Header Fields Too Large",
        "header_too_large",
        f"The request line and headers exceed {bounds.max_header_bytes} bytes.",
    )


def too_slow(part: str, seconds: float) -> Refusal:
    return Refusal(
        408,
        "Request Timeout",
        "request_timeout",
        f"The request's {part} did not arrive in time ({seconds:g} s).",
    )


class Phase(Enum):
    head = "head"  # waiting for (the rest of) a request line and headers
    body = "body"
    done = "done"  # the request is in; its response is not finished


class HeadTooLarge(Exception):
    """Raised inside a parser callback, which makes the parser stop."""


class Reading:
    """One connection's reading: which part of a request is arriving, how much of it has,
    and the one deadline that part has. Deadlines are set after the parser took a read
    (:meth:`settle`), so a request that arrives whole in one read never sets one."""

    def __init__(
        self,
        bounds: HttpBounds,
        loop: asyncio.AbstractEventLoop,
        reading_paused: Callable[[], bool],
        late: Callable[[Refusal], None],
    ) -> None:
        self.bounds = bounds
        self.loop = loop
        self.reading_paused = reading_paused
        self.late = late
        self.phase = Phase.head
        self.head_bytes = 0  # bytes received while in the head
        self.field_bytes = 0  # the head's parsed line and headers (a parser's count)
        self.body_bytes = 0
        self.body_since = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self._arm(bounds.header_timeout_s, self._head_late)  # a silent connection too

    def data(self, n: int) -> None:
        """``n`` bytes arrived, before the parser sees them."""
        if self.phase is Phase.head:
            self.head_bytes += n
        elif self.phase is Phase.body:
            self.body_bytes += n

    def settle(self) -> None:
        """After the parser took a read: the deadline of the part still arriving."""
        if self.timer is not None:
            return
        if self.phase is Phase.head and self.head_bytes:
            self._arm(self.bounds.header_timeout_s, self._head_late)
        elif self.phase is Phase.body:
            self._arm(self.bounds.body_timeout_s, self._body_check)

    def field(self, n: int) -> None:
        """The parser read ``n`` bytes of request line or header."""
        self.field_bytes += n
        if self.field_bytes > self.bounds.max_header_bytes:
            raise HeadTooLarge

    def head_overflow(self) -> bool:
        limit = self.bounds.max_header_bytes
        return self.phase is Phase.head and max(self.head_bytes, self.field_bytes) > limit

    def head_done(self) -> None:
        if self.phase is Phase.head:
            self.phase = Phase.body
            self.body_bytes = 0
            self.body_since = self.loop.time()
            self.cancel()

    def body_done(self) -> None:
        if self.phase is Phase.body:
            self.phase = Phase.done
            self.cancel()

    def next_head(self) -> None:
        """The next bytes are a new request's (its clock starts at its first byte)."""
        if self.phase is not Phase.head:
            self.phase = Phase.head
            self.head_bytes = self.field_bytes = 0
            self.cancel()

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _arm(self, delay: float, then: Callable[[], None]) -> None:
        self.cancel()
        self.timer = self.loop.call_later(delay, then)

    def _head_late(self) -> None:
        self.timer = None
        self.late(too_slow("headers", self.bounds.header_timeout_s))

    def _body_check(self) -> None:
        self.timer = None
        now, b = self.loop.time(), self.bounds
        if self.reading_paused():  # the app has not taken what came: a fresh start
            self.body_since, self.body_bytes = now, 0
        left = b.body_timeout_s + self.body_bytes / b.body_min_rate - (now - self.body_since)
        if left > 0:
            self._arm(left, self._body_check)
        else:
            self.late(too_slow("body", b.body_timeout_s))


class Cycle(Protocol):
    """What both of uvicorn's request cycles have and a late request needs."""

    disconnected: bool
    response_started: bool
    response_complete: bool
    message_event: asyncio.Event


class Guard:
    """What both protocol classes share: one connection's :class:`Reading`, and refusing."""

    def __init__(
        self,
        bounds: HttpBounds,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        reading_paused: Callable[[], bool],
        cycle: Callable[[], Cycle | None],
    ) -> None:
        self.transport = transport
        self.loop = loop
        self.cycle = cycle
        self.reading = Reading(bounds, loop, reading_paused, self.late)
        self.refused = False
        self.linger_left = LINGER_BYTES
        self.linger: asyncio.TimerHandle | None = None

    def refuse(self, refusal: Refusal) -> None:
        """Answer ``refusal``, half-close, and drain what the client still sends for a moment."""
        self.reading.cancel()
        if self.refused or self.transport.is_closing():
            return
        self.refused = True
        self.transport.write(refusal.response())
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.linger = self.loop.call_later(LINGER_S, self.transport.close)

    def after_read(self, refusal: Refusal | None = None) -> None:
        """After the parser took a read: refuse a head grown too large (else ``refusal``, if
        any), or set the deadline of what is still arriving."""
        if self.refused:
            return
        if self.reading.head_overflow():
            refusal = header_too_large(self.reading.bounds)
        if refusal is not None:
            self.refuse(refusal)
        else:
            self.reading.settle()

    def drained(self, data: bytes) -> bool:
        """Whether ``data`` came after a refusal (and is dropped)."""
        if not self.refused:
            return False
        self.linger_left -= len(data)
        if self.linger_left < 0:
            self.transport.close()
        return True

    def late(self, refusal: Refusal) -> None:
        """A deadline passed: the app, if it runs, sees a disconnect, and the client gets
        ``refusal`` unless the app already started its answer."""
        cycle = self.cycle()
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() says so; its sends are dropped
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        self.refuse(refusal)

    def close(self) -> None:
        self.reading.cancel()
        if self.linger is not None:
            self.linger.cancel()


class JsonH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, bounded. h11 keeps a head unparsed until its end arrives (and
    bounds that, but only while the end is missing): the end is looked for here before h11
    parses. The phases are read from h11's state after each event."""

    bounds: ClassVar[HttpBounds] = HttpBounds()
    guard: Guard
    _followed: object = None  # the request cycle the reading follows

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.conn = h11.Connection(h11.SERVER, self.bounds.max_header_bytes)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.guard = Guard(
            self.bounds, transport, self.loop, lambda: self.flow.read_paused, lambda: self.cycle
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.close()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.guard.drained(data):
            return
        self.guard.reading.data(len(data))
        if self.conn.their_state is h11.IDLE and self._head_too_large(data):
            self.guard.refuse(header_too_large(self.bounds))
            return
        super().data_received(data)
        self._follow()

    def _head_too_large(self, data: bytes) -> bool:
        limit = self.bounds.max_header_bytes
        buffered = self.conn.trailing_data[0]
        if len(buffered) + len(data) <= limit:
            return False
        return HEAD_END.search(buffered + data, 0, limit + 4) is None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()  # a pipelined request may have been parsed

    def _follow(self) -> None:
        """Move the reading to h11's state, then set the deadline it needs."""
        if self.guard.refused:
            return
        state, reading = self.conn.their_state, self.guard.reading
        if self.cycle is not self._followed:  # h11 parsed a new request's head
            self._followed = self.cycle
            reading.next_head()
        if state is h11.IDLE:
            reading.next_head()
        elif state is h11.SEND_BODY:
            reading.head_done()
        else:  # DONE, MUST_CLOSE, CLOSED, ERROR: nothing more to read for this request
            reading.head_done()
            reading.body_done()
        reading.settle()

    def send_400_response(self, msg: str) -> None:
        self.guard.refuse(malformed(msg))


def _httptools_protocol() -> type[asyncio.Protocol] | None:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is optional: uvicorn then parses with h11
        return None

    class JsonHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, bounded. httptools keeps a header however long it
        gets, so the head is counted here: bytes as they arrive, fields as they are parsed."""

        bounds: ClassVar[HttpBounds] = HttpBounds()
        guard: Guard

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.guard = Guard(
                self.bounds, transport, self.loop, lambda: self.flow.read_paused, lambda: self.cycle
            )

        def connection_lost(self, exc: Exception | None) -> None:
            self.guard.close()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.guard.drained(data):
                return
            self.guard.reading.data(len(data))
            super().data_received(data)
            self.guard.after_read()

        def on_url(self, url: bytes) -> None:
            self.guard.reading.field(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self.guard.reading.field(len(name) + len(value))
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self.guard.reading.head_done()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self.guard.reading.body_done()
            self.guard.reading.next_head()

        def send_400_response(self, msg: str) -> None:
            # A HeadTooLarge raised in a callback reaches uvicorn as a parser error.
            self.guard.after_read(malformed(msg))

    return JsonHttpToolsProtocol


def protocol(bounds: HttpBounds | None = None) -> type[asyncio.Protocol]:
    """The protocol uvicorn's ``http="auto"`` would pick (httptools when installed, else h11),
    reading within ``bounds`` and refusing as OpenAI's error JSON."""
    base = _httptools_protocol() or JsonH11Protocol
    bound = type(base.__name__, (base,), {"bounds": bounds or HttpBounds()})
    return cast(type[asyncio.Protocol], bound)
