"""Every error the API answers, rendered in one place as OpenAI's error JSON.

``{"error": {"message", "type", "param", "code"}}``; 429s and 503s carry ``Retry-After``, a 416
``Content-Range: bytes */{size}``.
Validation errors name the offending field as ``param`` (dotted path, e.g. ``messages.0.role``).

Foreign errors are translated here, by class, through :data:`FOREIGN`: Redis's connection and
timeout errors (Redis down, restarting, still loading its data, or the pool exhausted) become
:class:`RedisUnavailable`, a 503 with ``Retry-After`` that OpenAI's SDKs retry, not a 500.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException

from relay_core.errors import (
    INTERNAL_MESSAGE,
    InternalError,
    InvalidRequest,
    RangeNotSatisfiable,
    RedisUnavailable,
    RelayError,
)

log = logging.getLogger("relay.api")

_HTTP_TYPES = {
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "payload_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}

# A Redis restart (AOF replay included) usually takes a few seconds.
REDIS_RETRY_AFTER_S = 5.0
REDIS_MESSAGE = (
    "Relay's Redis is unreachable (down, restarting or loading its data); "
    "the request was not served. Retry shortly."
)


def redis_unavailable(exc: Exception) -> RelayError:
    # BusyLoadingError (Redis replaying its AOF) is a ConnectionError; so is "no connection
    # available" from a full pool.
    log.warning("Redis unavailable: %s: %s", type(exc).__name__, exc)
    return RedisUnavailable(REDIS_MESSAGE, retry_after=REDIS_RETRY_AFTER_S)


FOREIGN: dict[type[Exception], Callable[[Exception], RelayError]] = {
    RedisConnectionError: redis_unavailable,
    RedisTimeoutError: redis_unavailable,
}
"""Errors raised by libraries, and the :class:`RelayError` each becomes (looked up along the
exception's class hierarchy, so subclasses are covered)."""


def error_response(exc: RelayError) -> JSONResponse:
    headers: dict[str, str] = {}
    if exc.retry_after is not None and exc.status_code in (429, 503):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size}"
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)


def _param(loc: tuple[int | str, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


async def _relay_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RelayError)
    return error_response(exc)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "Invalid request."}
    param = _param(tuple(first.get("loc", ())))
    msg = str(first.get("msg", "Invalid request."))
    if first.get("type") == "json_invalid":
        msg, param = "The request body is not valid JSON.", None
    elif param:
        msg = f"Invalid value for '{param}': {msg}"
    return error_response(InvalidRequest(msg, param=param))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    etype, code = _HTTP_TYPES.get(exc.status_code, ("invalid_request_error", "invalid_request"))
    body = {"error": {"message": str(exc.detail), "type": etype, "param": None, "code": code}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _foreign(_: Request, exc: Exception) -> JSONResponse:
    for cls in type(exc).__mro__:
        translate = FOREIGN.get(cls)
        if translate is not None:
            return error_response(translate(exc))
    return await _unexpected(_, exc)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return await _relay_error(_, InternalError(INTERNAL_MESSAGE))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RelayError, _relay_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    for cls in FOREIGN:
        app.add_exception_handler(cls, _foreign)
    app.add_exception_handler(Exception, _unexpected)
