"""The ``ollama`` family: Ollama's native ``/api/chat`` (NDJSON streaming) and ``/api/embed``.

No key is needed for a local Ollama; if the catalogue names one (a hosted Ollama behind
auth), it is sent as a Bearer token. Mapping lives in :mod:`._ollama_mapping`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson

from relay_core.catalogue.models import ProviderConfig
from relay_core.providers._embeddings import count_or_none, text_inputs, vector
from relay_core.providers._http import (
    CallContext,
    ErrorRules,
    UpstreamHTTP,
    error_from_body,
    response_lines,
)
from relay_core.providers._lines import ndjson_objects
from relay_core.providers._ollama_mapping import (
    StreamMapper,
    ollama_request,
    parse_chat,
    to_completion,
)
from relay_core.providers._ratelimit import parse_feedback
from relay_core.providers._stream import OpenedStream, open_chunks, usage_chunk
from relay_core.providers.base import Completion, Embedded
from relay_core.schemas.chat import ChatCompletionChunk, ChatCompletionRequest
from relay_core.schemas.embeddings import EmbeddingRequest

OLLAMA_ERRORS = ErrorRules()
"""Ollama's errors are ``{"error": "text"}``: only the status code classifies them."""


async def _chunks(
    response: httpx.Response, ctx: CallContext
) -> AsyncGenerator[ChatCompletionChunk, None]:
    mapper = StreamMapper(model=ctx.model)
    async for data in ndjson_objects(response_lines(response, ctx), ctx):
        text = orjson.dumps(data).decode()
        if isinstance(data, dict) and "error" in data:  # a failure after the 200
            raise error_from_body(response.status_code, {}, text, ctx, OLLAMA_ERRORS)
        chunk = mapper.chunk(parse_chat(data, ctx, text))
        if chunk is not None:
            yield chunk
    if mapper.usage is not None:
        yield usage_chunk(mapper.chunk_id, mapper.model, mapper.created, mapper.usage)


def chat_url(base_url: str, method: str = "chat") -> str:
    base = base_url.rstrip("/")
    return f"{base}/{method}" if base.endswith("/api") else f"{base}/api/{method}"


def embeddings_body(
    request: EmbeddingRequest, model: str, dimensions: int | None
) -> dict[str, Any]:
    """``/api/embed``'s request: the texts as a list (``dimensions`` only when shortening)."""
    body: dict[str, Any] = {"model": model, "input": text_inputs(request, "Ollama")}
    if dimensions is not None:
        body["dimensions"] = dimensions
    return body


def parse_embeddings(data: Any, ctx: CallContext, text: str) -> Embedded:
    """``{"embeddings": [[...]], "prompt_eval_count": n}``."""
    items = data.get("embeddings") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ctx.malformed("the answer holds no embeddings", text)
    tokens = count_or_none(data.get("prompt_eval_count"))
    return Embedded([vector(v, ctx, text) for v in items], tokens)


class OllamaProvider:
    """A provider speaking Ollama's native chat API."""

    def __init__(self, config: ProviderConfig, http: httpx.AsyncClient, api_key: str | None):
        self.config = config
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = UpstreamHTTP(config, http, auth, OLLAMA_ERRORS, api_key)
        self._url = chat_url(config.base_url)
        self._embed_url = chat_url(config.base_url, "embed")

    def __repr__(self) -> str:
        return f"OllamaProvider({self.config.name!r})"

    async def complete(self, request: ChatCompletionRequest, model: str) -> Completion:
        ctx = self._http.context(model)
        body = ollama_request(request, model, stream=False)
        data, response = await self._http.post_json(self._url, body, ctx)
        chat = parse_chat(data, ctx, response.text)
        return Completion(to_completion(chat, model), parse_feedback(response.headers))

    async def embed(
        self, request: EmbeddingRequest, model: str, dimensions: int | None
    ) -> Embedded:
        ctx = self._http.context(model)
        body = embeddings_body(request, model, dimensions)
        data, response = await self._http.post_json(self._embed_url, body, ctx)
        embedded = parse_embeddings(data, ctx, response.text)
        embedded.feedback = parse_feedback(response.headers)
        return embedded

    @asynccontextmanager
    async def stream(
        self, request: ChatCompletionRequest, model: str
    ) -> AsyncIterator[OpenedStream]:
        ctx = self._http.context(model)
        body = ollama_request(request, model, stream=True)
        async with (
            self._http.stream(self._url, body, ctx) as response,
            open_chunks(_chunks(response, ctx), parse_feedback(response.headers), ctx) as opened,
        ):
            yield opened
