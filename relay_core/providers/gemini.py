"""The ``gemini`` family: Google's Generative Language API (``generateContent``, and
``embedContent`` / ``batchEmbedContents`` for embeddings).

The key goes in the ``x-goog-api-key`` header (never in the URL, where it would end up in
logs and exception messages). Request mapping lives in :mod:`._gemini_request`, answer
mapping in :mod:`._gemini_response`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Any

import httpx
import orjson

from relay_core.catalogue.models import ProviderConfig
from relay_core.errors import (
    InvalidRequest,
    RateLimited,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamModelNotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from relay_core.providers._embeddings import text_inputs, vector
from relay_core.providers._gemini_request import gemini_request
from relay_core.providers._gemini_response import StreamMapper, parse_response, to_completion
from relay_core.providers._http import (
    CallContext,
    ErrorRules,
    UpstreamHTTP,
    error_from_body,
    response_lines,
)
from relay_core.providers._lines import decode_event, sse_events
from relay_core.providers._ratelimit import parse_duration, parse_feedback
from relay_core.providers._stream import OpenedStream, open_chunks, usage_chunk
from relay_core.providers.base import Completion, Embedded
from relay_core.schemas.chat import ChatCompletionChunk, ChatCompletionRequest
from relay_core.schemas.embeddings import EmbeddingRequest

BY_STATUS_NAME: Mapping[str, type[UpstreamError]] = MappingProxyType(
    {
        "INVALID_ARGUMENT": UpstreamBadRequest,
        "OUT_OF_RANGE": UpstreamBadRequest,
        # e.g. "free tier not available in your country": this key cannot serve; try others
        "FAILED_PRECONDITION": UpstreamAuthError,
        "UNAUTHENTICATED": UpstreamAuthError,
        "PERMISSION_DENIED": UpstreamAuthError,
        "NOT_FOUND": UpstreamModelNotFound,
        "RESOURCE_EXHAUSTED": RateLimited,
        "DEADLINE_EXCEEDED": UpstreamTimeout,
        "INTERNAL": UpstreamUnavailable,
        "UNAVAILABLE": UpstreamUnavailable,
    }
)
"""Gemini ``error.status`` (google.rpc.Code names) → error."""

BY_REASON: Mapping[str, type[UpstreamError]] = MappingProxyType(
    {"API_KEY_INVALID": UpstreamAuthError}  # arrives as 400 INVALID_ARGUMENT
)
"""``google.rpc.ErrorInfo.reason`` values that override the status name."""

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def _error(body: Any) -> dict[str, Any]:
    if isinstance(body, list) and len(body) == 1:  # the streaming endpoint wraps it in a list
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _details(body: Any, type_url: str) -> list[dict[str, Any]]:
    details = _error(body).get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, dict) and d.get("@type") == type_url]


def _classify(status: int, body: Any) -> type[UpstreamError] | None:
    for info in _details(body, ERROR_INFO):
        reason = info.get("reason")
        if isinstance(reason, str) and reason in BY_REASON:
            return BY_REASON[reason]
    name = _error(body).get("status")
    return BY_STATUS_NAME.get(name) if isinstance(name, str) else None


def _retry_delay(body: Any) -> float | None:
    """``RetryInfo.retryDelay`` ("36s"), which Gemini sends instead of ``Retry-After``."""
    for info in _details(body, RETRY_INFO):
        delay = info.get("retryDelay")
        if isinstance(delay, str):
            return parse_duration(delay)
    return None


GEMINI_ERRORS = ErrorRules(classify=_classify, retry_after=_retry_delay)

# ``batchEmbedContents`` takes at most this many requests.
MAX_BATCH_EMBED = 100


def embed_content(text: str, dimensions: int | None) -> dict[str, Any]:
    """One ``EmbedContentRequest`` (``outputDimensionality`` only when shortening)."""
    body: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
    if dimensions is not None:
        body["outputDimensionality"] = dimensions
    return body


def embeddings_call(
    request: EmbeddingRequest, model: str, dimensions: int | None
) -> tuple[str, dict[str, Any]]:
    """The method and body: ``embedContent`` for one input, ``batchEmbedContents`` for more."""
    texts = text_inputs(request, "Gemini")
    if len(texts) == 1:
        return "embedContent", embed_content(texts[0], dimensions)
    if len(texts) > MAX_BATCH_EMBED:
        raise InvalidRequest(
            f"Gemini's batchEmbedContents takes at most {MAX_BATCH_EMBED} inputs; this "
            f"request has {len(texts)}.",
            param="input",
        )
    path = model if model.startswith("models/") else f"models/{model}"
    requests = [{"model": path, **embed_content(t, dimensions)} for t in texts]
    return "batchEmbedContents", {"requests": requests}


def parse_embeddings(data: Any, ctx: CallContext, text: str) -> Embedded:
    """``{"embedding": {"values"}}`` or ``{"embeddings": [{"values"}]}``; Gemini counts no
    tokens for embeddings."""
    if not isinstance(data, dict):
        raise ctx.malformed("the answer is not a JSON object", text)
    items = data.get("embeddings")
    if items is None and isinstance(data.get("embedding"), dict):
        items = [data["embedding"]]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ctx.malformed("the answer holds no embeddings", text)
    return Embedded([vector(i.get("values"), ctx, text) for i in items])


def _stream_error(data: Any, ctx: CallContext) -> UpstreamError | None:
    error = _error(data)
    if not error:
        return None
    code = error.get("code")
    status = code if isinstance(code, int) and 400 <= code < 600 else 500
    return error_from_body(status, {}, orjson.dumps(data).decode(), ctx, GEMINI_ERRORS)


async def _chunks(
    response: httpx.Response, ctx: CallContext
) -> AsyncGenerator[ChatCompletionChunk, None]:
    mapper = StreamMapper(model=ctx.model)
    async for event in sse_events(response_lines(response, ctx)):
        data = decode_event(event, ctx)
        error = _stream_error(data, ctx)
        if error is not None:
            raise error
        chunk = mapper.chunk(parse_response(data, ctx, event.data, partial=True))
        if chunk is not None:
            yield chunk
    if mapper.usage is not None:
        yield usage_chunk(mapper.chunk_id, mapper.model, mapper.created, mapper.usage)


class GeminiProvider:
    """A provider speaking Gemini's ``generateContent`` API."""

    def __init__(self, config: ProviderConfig, http: httpx.AsyncClient, api_key: str | None):
        self.config = config
        auth = {"x-goog-api-key": api_key} if api_key else {}
        self._http = UpstreamHTTP(config, http, auth, GEMINI_ERRORS, api_key)
        self._base = config.base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"GeminiProvider({self.config.name!r})"

    def _url(self, model: str, method: str) -> str:
        path = model if model.startswith("models/") else f"models/{model}"
        return f"{self._base}/{path}:{method}"

    async def complete(self, request: ChatCompletionRequest, model: str) -> Completion:
        ctx = self._http.context(model)
        body = gemini_request(request)
        data, response = await self._http.post_json(self._url(model, "generateContent"), body, ctx)
        answer = parse_response(data, ctx, response.text)
        return Completion(to_completion(answer, model), parse_feedback(response.headers))

    async def embed(
        self, request: EmbeddingRequest, model: str, dimensions: int | None
    ) -> Embedded:
        ctx = self._http.context(model)
        method, body = embeddings_call(request, model, dimensions)
        data, response = await self._http.post_json(self._url(model, method), body, ctx)
        embedded = parse_embeddings(data, ctx, response.text)
        embedded.feedback = parse_feedback(response.headers)
        return embedded

    @asynccontextmanager
    async def stream(
        self, request: ChatCompletionRequest, model: str
    ) -> AsyncIterator[OpenedStream]:
        ctx = self._http.context(model)
        body = gemini_request(request)
        url = self._url(model, "streamGenerateContent")
        async with (
            self._http.stream(url, body, ctx, params={"alt": "sse"}) as response,
            open_chunks(_chunks(response, ctx), parse_feedback(response.headers), ctx) as opened,
        ):
            yield opened
