"""The HTTP boundary every provider client shares: send, and translate failures by table.

Three tables decide which :mod:`relay_core.errors` class a failure becomes, in this order:

1. the API family's own error field (``ErrorRules.classify``: OpenAI ``error.code``, Gemini
   ``error.status``, Anthropic ``error.type``), where the status code alone is ambiguous;
2. :data:`BY_STATUS`, the HTTP status code (anything not listed, including every 5xx, is
   :class:`UpstreamUnavailable`);
3. :data:`BY_EXCEPTION`, for httpx exceptions (looked up along the exception's MRO).

The API key is passed in as ``secret`` only so that it can be scrubbed from what the upstream
says (:mod:`relay_core.providers._scrub`): error messages and bodies before they are put on an
error (scrubbed first, cut after), answers and stream events as they are decoded; it never
appears in a repr. Error messages and bodies are scrubbed of the upstream's file paths too
(a traceback's ``/usr/lib/python3/...py`` becomes ``[path]``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import httpx
import orjson

from relay_core.catalogue.models import ProviderConfig
from relay_core.errors import (
    RateLimited,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamMalformed,
    UpstreamModelNotFound,
    UpstreamQuotaExhausted,
    UpstreamRequestFailed,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from relay_core.providers._ratelimit import parse_feedback, reset_hint
from relay_core.providers._scrub import answer_secret, scrub_body, scrub_error_text, scrub_value

UPSTREAM_BODY_LIMIT = 2048
"""Characters of an upstream error body kept on the error."""
MESSAGE_DETAIL_LIMIT = 300
CONNECT_TIMEOUT_S = 5.0

BY_STATUS: Mapping[int, type[UpstreamError]] = MappingProxyType(
    {
        400: UpstreamBadRequest,
        401: UpstreamAuthError,
        402: UpstreamQuotaExhausted,
        403: UpstreamAuthError,
        404: UpstreamModelNotFound,
        408: UpstreamTimeout,
        413: UpstreamBadRequest,
        422: UpstreamBadRequest,
        429: RateLimited,
    }
)

BY_EXCEPTION: Mapping[type, type[UpstreamError]] = MappingProxyType(
    {
        httpx.TimeoutException: UpstreamTimeout,
        httpx.TransportError: UpstreamUnavailable,
        httpx.DecodingError: UpstreamMalformed,
        httpx.HTTPError: UpstreamUnavailable,
    }
)


def error_class_for_status(status: int) -> type[UpstreamError]:
    """The status-code row; every status not listed (5xx, 3xx, odd 4xx) means unavailable."""
    return BY_STATUS.get(status, UpstreamUnavailable)


def _nothing(*_: Any) -> None:
    return None


def error_message(body: Any) -> str | None:
    """``error.message`` (OpenAI, Gemini, Anthropic) or a bare ``error`` string (Ollama)."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return None


@dataclass(frozen=True)
class ErrorRules:
    """How one API family's JSON error bodies refine the status table."""

    classify: Callable[[int, Any], type[UpstreamError] | None] = _nothing
    retry_after: Callable[[Any], float | None] = _nothing
    message: Callable[[Any], str | None] = error_message


@dataclass(frozen=True)
class CallContext:
    """Who is being called: every error names the provider and model."""

    provider: str
    model: str
    secret: str | None = field(default=None, repr=False)

    def redact(self, text: str) -> str:
        """An error message as Relay passes it on: no key, no upstream file path."""
        return scrub_error_text(text, self.secret)

    @property
    def answer_secret(self) -> str | None:
        return answer_secret(self.secret)

    def scrub_body(self, body: str) -> str:
        """An error body as kept on the error: scrubbed first (decoded), cut after."""
        return scrub_body(body, self.secret)[:UPSTREAM_BODY_LIMIT]

    def scrub(self, value: Any) -> Any:
        """A decoded answer or stream event, scrubbed of the key."""
        return scrub_value(value, self.answer_secret)

    def error(
        self,
        cls: type[UpstreamError],
        message: str,
        *,
        status: int | None = None,
        body: str | None = None,
        retry_after: float | None = None,
        param: str | None = None,
    ) -> UpstreamError:
        return cls(
            self.redact(message),
            param=param,
            provider=self.provider,
            model=self.model,
            upstream_status=status,
            upstream_body=None if body is None else self.scrub_body(body),
            retry_after=retry_after,
        )

    def malformed(self, what: str, body: str | None = None) -> UpstreamError:
        return self.error(UpstreamMalformed, f"{self.provider}: {what}", body=body)


def loads_or_none(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def error_from_body(
    status: int,
    headers: Mapping[str, str],
    text: str,
    ctx: CallContext,
    rules: ErrorRules,
) -> UpstreamError:
    """Translate an error answer (status, headers, body) into one upstream error."""
    body = loads_or_none(text)
    cls = rules.classify(status, body) or error_class_for_status(status)
    detail = rules.message(body)
    if status >= 500 and issubclass(cls, UpstreamUnavailable) and _blames_the_request(body, detail):
        cls = UpstreamRequestFailed
    feedback = parse_feedback(headers)
    retry_after = feedback.retry_after_s
    if retry_after is None:
        retry_after = rules.retry_after(body)
    if retry_after is None and issubclass(cls, RateLimited):
        retry_after = reset_hint(feedback)
    message = f"{ctx.provider} answered HTTP {status} for {ctx.model}"
    if detail:
        message = f"{message}: {ctx.redact(detail)[:MESSAGE_DETAIL_LIMIT]}"  # redact, then cut
    param = _error_param(body) if issubclass(cls, UpstreamBadRequest) else None
    return ctx.error(cls, message, status=status, body=text, retry_after=retry_after, param=param)


# A 5xx whose body says the request is at fault (servers that wrap their validation errors
# in a 500: pydantic's and FastAPI's words, OpenAI's error type).
_REQUEST_ERROR_TYPES = frozenset({"invalid_request_error", "BadRequestError", "validation_error"})
_VALIDATION_WORDS = re.compile(
    r"validation error|input should be|field required|extra inputs are not permitted"
    r"|is not supported|unsupported (?:value|parameter|field)",
    re.IGNORECASE,
)


def _blames_the_request(body: Any, detail: str | None) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    if isinstance(kind, str) and kind in _REQUEST_ERROR_TYPES:
        return True
    return detail is not None and _VALIDATION_WORDS.search(detail) is not None


def _error_param(body: Any) -> str | None:
    """OpenAI's ``error.param`` (the field the provider refused), kept for the client."""
    error = body.get("error") if isinstance(body, dict) else None
    param = error.get("param") if isinstance(error, dict) else None
    return param if isinstance(param, str) and len(param) <= 64 else None


def translate_exception(exc: httpx.HTTPError, ctx: CallContext) -> UpstreamError:
    """An httpx exception as the first matching row of :data:`BY_EXCEPTION`."""
    cls = next(
        (BY_EXCEPTION[k] for k in type(exc).__mro__ if k in BY_EXCEPTION), UpstreamUnavailable
    )
    return ctx.error(cls, f"{ctx.provider}: {type(exc).__name__} calling {ctx.model}: {exc}")


async def response_lines(response: httpx.Response, ctx: CallContext) -> AsyncIterator[str]:
    """The response's lines, with transport failures mid-stream translated."""
    try:
        async for line in response.aiter_lines():
            yield line
    except httpx.HTTPError as exc:
        raise translate_exception(exc, ctx) from exc


class UpstreamHTTP:
    """One provider's HTTP plumbing: fixed headers, per-request timeout, error translation."""

    def __init__(
        self,
        config: ProviderConfig,
        http: httpx.AsyncClient,
        auth_headers: Mapping[str, str],
        rules: ErrorRules,
        secret: str | None,
    ) -> None:
        self._name = config.name
        self._http = http
        self._rules = rules
        self._secret = secret
        self._headers = {**config.headers, **auth_headers, "content-type": "application/json"}
        self._timeout = httpx.Timeout(
            config.timeout_s, connect=min(CONNECT_TIMEOUT_S, config.timeout_s)
        )

    def __repr__(self) -> str:
        return f"UpstreamHTTP({self._name!r})"

    def context(self, model: str) -> CallContext:
        return CallContext(self._name, model, self._secret)

    async def post_json(
        self, url: str, body: Mapping[str, Any], ctx: CallContext
    ) -> tuple[Any, httpx.Response]:
        """POST ``body``; the decoded JSON answer of a 2xx, else the translated error."""
        try:
            response = await self._http.post(
                url, content=orjson.dumps(body), headers=self._headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise translate_exception(exc, ctx) from exc
        if not response.is_success:
            raise error_from_body(
                response.status_code, response.headers, response.text, ctx, self._rules
            )
        try:
            return ctx.scrub(orjson.loads(response.content)), response
        except orjson.JSONDecodeError:
            raise ctx.malformed("the answer is not JSON", response.text) from None

    @asynccontextmanager
    async def stream(
        self,
        url: str,
        body: Mapping[str, Any],
        ctx: CallContext,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """Open a streaming POST; an error status is read and raised before anything is yielded."""
        try:
            async with self._http.stream(
                "POST",
                url,
                content=orjson.dumps(body),
                headers=self._headers,
                params=params,
                timeout=self._timeout,
            ) as response:
                if not response.is_success:
                    await response.aread()
                    raise error_from_body(
                        response.status_code, response.headers, response.text, ctx, self._rules
                    )
                yield response
        except httpx.HTTPError as exc:
            raise translate_exception(exc, ctx) from exc
