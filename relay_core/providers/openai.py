"""The ``openai`` family: every provider that speaks OpenAI's ``/chat/completions`` (and
``/embeddings``, for the models the catalogue marks ``embeddings: true``).

Groq, Mistral, Cerebras, OpenRouter, Together, NVIDIA, DeepSeek, Cloudflare's OpenAI-compatible
endpoint, OpenAI itself and vLLM are all this one client, configured by their catalogue entry
(``base_url``, ``headers``). The request goes through as the client sent it: only ``model`` is
replaced by the provider's own id and Relay's routing fields are removed. A server that
implements less than OpenAI does is marked so in the catalogue (``max_tokens_only``,
``single_choice``): see :func:`request_body`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Any

import httpx
import orjson
from pydantic import ValidationError

from relay_core.catalogue.models import ProviderConfig
from relay_core.errors import (
    InvalidRequest,
    RateLimited,
    UpstreamAuthError,
    UpstreamContextTooLong,
    UpstreamError,
    UpstreamModelNotFound,
    UpstreamQuotaExhausted,
)
from relay_core.providers._embeddings import count_or_none, vector
from relay_core.providers._http import (
    CallContext,
    ErrorRules,
    UpstreamHTTP,
    error_from_body,
    response_lines,
)
from relay_core.providers._lines import decode_event, sse_events
from relay_core.providers._ratelimit import parse_feedback
from relay_core.providers._stream import OpenedStream, open_chunks
from relay_core.providers.base import Completion, Embedded
from relay_core.schemas.chat import (
    RELAY_FIELDS,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    new_completion_id,
)
from relay_core.schemas.embeddings import EmbeddingRequest

BY_ERROR_CODE: Mapping[str, type[UpstreamError]] = MappingProxyType(
    {
        "insufficient_quota": UpstreamQuotaExhausted,  # OpenAI: a 429 that waiting won't fix
        "context_length_exceeded": UpstreamContextTooLong,
        "invalid_api_key": UpstreamAuthError,
        "model_not_found": UpstreamModelNotFound,
    }
)
"""OpenAI ``error.code`` / ``error.type`` values that override the status code."""

BY_CLOUDFLARE_CODE: Mapping[int, type[UpstreamError]] = MappingProxyType(
    {
        3036: UpstreamQuotaExhausted,  # daily neuron allowance used up
        3040: RateLimited,  # out of capacity for now
    }
)
"""Cloudflare's internal ``errors[].code`` numbers."""

FINISH_REASON_ALIASES: Mapping[str, str] = MappingProxyType(
    {"model_length": "length", "eos": "stop", "end_turn": "stop", "max_tokens": "length"}
)
"""Non-standard ``finish_reason`` spellings some compatible servers use (Mistral, TGI)."""


def _classify(status: int, body: Any) -> type[UpstreamError] | None:
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        for key in ("code", "type"):
            value = error.get(key)
            if isinstance(value, str) and value in BY_ERROR_CODE:
                return BY_ERROR_CODE[value]
    for item in body.get("errors") or []:
        code = item.get("code") if isinstance(item, dict) else None
        if isinstance(code, int) and code in BY_CLOUDFLARE_CODE:
            return BY_CLOUDFLARE_CODE[code]
    return None


OPENAI_ERRORS = ErrorRules(classify=_classify)


def request_body(
    request: ChatCompletionRequest,
    model: str,
    *,
    stream: bool,
    config: ProviderConfig,
) -> dict[str, Any]:
    """The client's request for ``model``: parameters it did not set stay unset.

    Messages and tools are written out whole (so ``type: "function"`` is there even when the
    request was built in code) but without nulls, which some compatible servers refuse. A
    server that implements less than OpenAI does (``config.max_tokens_only``,
    ``config.single_choice``) gets ``max_completion_tokens`` as ``max_tokens``, and a request
    for several choices is refused (:class:`InvalidRequest`, ``param: n``) before it is sent.
    """
    if config.single_choice and (request.n or 1) > 1:
        raise InvalidRequest(
            f"{config.name} answers one choice per request: 'n' must be 1 (it was {request.n})",
            param="n",
        )
    body = request.model_dump(
        mode="json", exclude_unset=True, exclude={*RELAY_FIELDS, "messages", "tools"}
    )
    if config.max_tokens_only:
        cap = body.pop("max_completion_tokens", None)
        if cap is not None:
            body["max_tokens"] = cap
    body["model"] = model
    body["messages"] = [m.model_dump(mode="json", exclude_none=True) for m in request.messages]
    if request.tools is not None:
        body["tools"] = [t.model_dump(mode="json", exclude_none=True) for t in request.tools]
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
    return body


def embeddings_body(
    request: EmbeddingRequest, model: str, dimensions: int | None
) -> dict[str, Any]:
    """The embeddings request for ``model``: the client's fields as sent, floats asked for
    (Relay encodes base64 itself), ``dimensions`` only when the model is to shorten."""
    body = request.model_dump(
        mode="json", exclude_unset=True, exclude={"encoding_format", "dimensions"}
    )
    body["model"] = model
    body["encoding_format"] = "float"
    if dimensions is not None:
        body["dimensions"] = dimensions
    return body


def parse_embeddings(data: Any, ctx: CallContext, text: str) -> Embedded:
    """``{"data": [{"index", "embedding"}], "usage": {"prompt_tokens"}}``, in index order."""
    error = _embedded_error(data, ctx)
    if error is not None:
        raise error
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ctx.malformed("the answer is not an embeddings list", text)
    ordered = sorted(items, key=lambda i: i.get("index") if isinstance(i.get("index"), int) else 0)
    usage = data.get("usage")
    tokens = count_or_none(usage.get("prompt_tokens")) if isinstance(usage, dict) else None
    return Embedded([vector(i.get("embedding"), ctx, text) for i in ordered], tokens)


def _embedded_error(data: Any, ctx: CallContext) -> UpstreamError | None:
    """OpenRouter may answer 200 (or stream an event) whose body is only ``{"error": {...}}``."""
    if not isinstance(data, dict) or not data.get("error") or "choices" in data:
        return None
    error = data["error"]
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) and 400 <= code < 600 else 502
    return error_from_body(status, {}, orjson.dumps(data).decode(), ctx, OPENAI_ERRORS)


def _normalise(data: dict[str, Any], model: str) -> dict[str, Any]:
    data.setdefault("model", model)
    if not data.get("id"):
        data["id"] = new_completion_id()
    choices = data.get("choices")
    for choice in choices if isinstance(choices, list) else []:
        if isinstance(choice, dict):
            reason = choice.get("finish_reason")
            if reason == "":
                choice["finish_reason"] = None
            elif isinstance(reason, str):
                choice["finish_reason"] = FINISH_REASON_ALIASES.get(reason, reason)
    return data


def parse_completion(data: Any, ctx: CallContext, text: str) -> ChatCompletion:
    error = _embedded_error(data, ctx)
    if error is not None:
        raise error
    if not isinstance(data, dict):
        raise ctx.malformed("the answer is not a JSON object", text)
    try:
        return ChatCompletion.model_validate(_normalise(data, ctx.model))
    except ValidationError as exc:
        raise ctx.malformed(f"the answer is not a chat completion ({_first(exc)})", text) from None


def parse_chunk(data: Any, ctx: CallContext, text: str) -> ChatCompletionChunk:
    error = _embedded_error(data, ctx)
    if error is not None:
        raise error
    if not isinstance(data, dict):
        raise ctx.malformed("a stream event is not a JSON object", text)
    try:
        return ChatCompletionChunk.model_validate(_normalise(data, ctx.model))
    except ValidationError as exc:
        raise ctx.malformed(f"a stream event is not a chunk ({_first(exc)})", text) from None


def _first(exc: ValidationError) -> str:
    error = exc.errors(include_input=False)[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"


async def _chunks(
    response: httpx.Response, ctx: CallContext
) -> AsyncGenerator[ChatCompletionChunk, None]:
    async for event in sse_events(response_lines(response, ctx)):
        if event.data.strip() == "[DONE]":
            return
        yield parse_chunk(decode_event(event, ctx), ctx, event.data)


class OpenAIProvider:
    """A provider speaking OpenAI's chat-completions API (Bearer key, SSE streaming)."""

    def __init__(self, config: ProviderConfig, http: httpx.AsyncClient, api_key: str | None):
        self.config = config
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = UpstreamHTTP(config, http, auth, OPENAI_ERRORS, api_key)
        self._url = f"{config.base_url.rstrip('/')}/chat/completions"
        self._embeddings_url = f"{config.base_url.rstrip('/')}/embeddings"

    def __repr__(self) -> str:
        return f"OpenAIProvider({self.config.name!r})"

    async def complete(self, request: ChatCompletionRequest, model: str) -> Completion:
        ctx = self._http.context(model)
        body = request_body(request, model, stream=False, config=self.config)
        data, response = await self._http.post_json(self._url, body, ctx)
        completion = parse_completion(data, ctx, response.text)
        return Completion(completion, parse_feedback(response.headers))

    async def embed(
        self, request: EmbeddingRequest, model: str, dimensions: int | None
    ) -> Embedded:
        ctx = self._http.context(model)
        body = embeddings_body(request, model, dimensions)
        data, response = await self._http.post_json(self._embeddings_url, body, ctx)
        embedded = parse_embeddings(data, ctx, response.text)
        embedded.feedback = parse_feedback(response.headers)
        return embedded

    @asynccontextmanager
    async def stream(
        self, request: ChatCompletionRequest, model: str
    ) -> AsyncIterator[OpenedStream]:
        ctx = self._http.context(model)
        body = request_body(request, model, stream=True, config=self.config)
        async with (
            self._http.stream(self._url, body, ctx) as response,
            open_chunks(_chunks(response, ctx), parse_feedback(response.headers), ctx) as opened,
        ):
            yield opened
