"""The ``anthropic`` family: Anthropic's Messages API (``POST /v1/messages``).

Request mapping lives in :mod:`._anthropic_request`, answer mapping in
:mod:`._anthropic_response`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Any

import httpx

from relay_core.catalogue.models import ProviderConfig
from relay_core.errors import (
    RateLimited,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamModelNotFound,
    UpstreamQuotaExhausted,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from relay_core.providers._anthropic_request import DEFAULT_MAX_TOKENS, anthropic_request
from relay_core.providers._anthropic_response import (
    StreamMapper,
    parse_event,
    parse_message,
    to_completion,
)
from relay_core.providers._http import (
    CallContext,
    ErrorRules,
    UpstreamHTTP,
    error_from_body,
    response_lines,
)
from relay_core.providers._lines import decode_event, sse_events
from relay_core.providers._ratelimit import parse_feedback
from relay_core.providers._stream import OpenedStream, open_chunks, usage_chunk
from relay_core.providers.base import Completion
from relay_core.schemas.chat import ChatCompletionChunk, ChatCompletionRequest

ANTHROPIC_VERSION = "2023-06-01"

BY_ERROR_TYPE: Mapping[str, type[UpstreamError]] = MappingProxyType(
    {
        "invalid_request_error": UpstreamBadRequest,
        "request_too_large": UpstreamBadRequest,
        "authentication_error": UpstreamAuthError,
        "permission_error": UpstreamAuthError,
        "not_found_error": UpstreamModelNotFound,
        "billing_error": UpstreamQuotaExhausted,
        "rate_limit_error": RateLimited,
        "timeout_error": UpstreamTimeout,
        "api_error": UpstreamUnavailable,
        "overloaded_error": UpstreamUnavailable,  # HTTP 529, or an ``error`` event mid-stream
    }
)
"""Anthropic ``error.type`` → error."""


def _classify(status: int, body: Any) -> type[UpstreamError] | None:
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return BY_ERROR_TYPE.get(kind) if isinstance(kind, str) else None


ANTHROPIC_ERRORS = ErrorRules(classify=_classify)


async def _chunks(
    response: httpx.Response, ctx: CallContext
) -> AsyncGenerator[ChatCompletionChunk, None]:
    mapper = StreamMapper(model=ctx.model)
    async for event in sse_events(response_lines(response, ctx)):
        data = decode_event(event, ctx)
        if isinstance(data, dict) and data.get("type") == "error":
            # An error after the 200: the HTTP status says nothing, the error type says all.
            raise error_from_body(response.status_code, {}, event.data, ctx, ANTHROPIC_ERRORS)
        chunk = mapper.chunk(parse_event(data, ctx, event.data))
        if chunk is not None:
            yield chunk
    usage = mapper.usage()
    if usage is not None:
        yield usage_chunk(mapper.chunk_id, mapper.model, mapper.created, usage)


def messages_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"


class AnthropicProvider:
    """A provider speaking Anthropic's Messages API."""

    def __init__(self, config: ProviderConfig, http: httpx.AsyncClient, api_key: str | None):
        self.config = config
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        self._http = UpstreamHTTP(config, http, headers, ANTHROPIC_ERRORS, api_key)
        self._url = messages_url(config.base_url)

    def __repr__(self) -> str:
        return f"AnthropicProvider({self.config.name!r})"

    def _body(self, request: ChatCompletionRequest, model: str) -> dict[str, Any]:
        entry = self.config.model(model)
        default = entry.max_output_tokens if entry and entry.max_output_tokens else None
        return anthropic_request(request, model, default or DEFAULT_MAX_TOKENS)

    async def complete(self, request: ChatCompletionRequest, model: str) -> Completion:
        ctx = self._http.context(model)
        data, response = await self._http.post_json(self._url, self._body(request, model), ctx)
        message = parse_message(data, ctx, response.text)
        return Completion(to_completion(message, model), parse_feedback(response.headers))

    @asynccontextmanager
    async def stream(
        self, request: ChatCompletionRequest, model: str
    ) -> AsyncIterator[OpenedStream]:
        ctx = self._http.context(model)
        body = {**self._body(request, model), "stream": True}
        async with (
            self._http.stream(self._url, body, ctx) as response,
            open_chunks(_chunks(response, ctx), parse_feedback(response.headers), ctx) as opened,
        ):
            yield opened
