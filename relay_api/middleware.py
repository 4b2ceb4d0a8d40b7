"""Request body limits, as a pure ASGI middleware (nothing is buffered).

Every request body is capped at ``RELAY_MAX_REQUEST_BYTES`` (10 MiB), except ``POST /v1/files``
whose cap is ``RELAY_MAX_UPLOAD_BYTES`` (200 MiB; the whole multipart body). A body is refused
with a 413 and OpenAI's error JSON:

* at once, without calling the app, when its ``Content-Length`` is over the limit;
* as soon as the bytes received so far go over it, for a chunked body (or one whose
  ``Content-Length`` lies). The app's ``receive`` then raises; whatever the app makes of that
  (FastAPI turns it into a 400, a streaming upload lets it propagate) is replaced by the 413,
  provided the app had not started its answer yet.

The middleware only counts the ``http.request`` messages going by: memory stays flat whatever
the size, and the app reads the body exactly as it would without it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay_api.errors import error_response
from relay_core.errors import PayloadTooLarge
from relay_core.settings import Settings

UPLOAD_PATHS = frozenset({"/v1/files"})
"""Paths whose ``POST`` body is an upload (the larger limit applies)."""

KIB = 1024
MIB = 1024 * KIB


class _BodyTooLarge(Exception):
    """Raised from ``receive`` once the body went over the limit (never leaves the middleware)."""


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """The caps: ``default`` bytes for every body, ``upload`` for uploads (``UPLOAD_PATHS``)."""

    default: int
    upload: int

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyLimits:
        return cls(default=settings.max_request_bytes, upload=settings.max_upload_bytes)

    def for_request(self, method: str, path: str) -> int:
        if method == "POST" and path.rstrip("/") in UPLOAD_PATHS:
            return self.upload
        return self.default


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``, or None when absent or not a number."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def readable(size: int) -> str:
    for unit, name in ((MIB, "MiB"), (KIB, "KiB")):
        if size >= unit:
            return f"{size / unit:.4g} {name}"
    return f"{size} bytes"


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than the {readable(limit)} this endpoint accepts."
    )


async def refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer 413 with OpenAI's error JSON. The server discards the rest of the body (nothing
    is kept), so a client that sends it all before reading still gets to read the 413."""
    await error_response(too_large(limit))(scope, receive, send)


class _Guard:
    """One request: counts what ``receive`` hands the app, and owns ``send`` once tripped."""

    def __init__(self, limit: int, receive: Receive, send: Send) -> None:
        self.limit = limit
        self._receive = receive
        self._send = send
        self.received = 0
        self.tripped = False
        self.started = False  # the app began its answer before the limit tripped

    async def receive(self) -> Message:
        if self.tripped:
            raise _BodyTooLarge
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.tripped = True
                raise _BodyTooLarge
        return message

    async def send(self, message: Message) -> None:
        if self.tripped and not self.started:
            return  # the app's answer to a body it never got whole; the 413 replaces it
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class BodyLimitMiddleware:
    """Refuse request bodies over their limit with a 413 (see the module docstring)."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_request(scope["method"], scope["path"])
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            await refuse(limit, scope, receive, send)
            return
        guard = _Guard(limit, receive, send)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            if not guard.tripped or guard.started:
                raise
        if guard.tripped and not guard.started:
            await refuse(limit, scope, receive, send)


def install_body_limits(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(BodyLimitMiddleware, limits=BodyLimits.from_settings(settings))
