"""What every provider client is: one small Protocol, and the types it returns.

A client speaks one API family's wire format (``openai``, ``gemini``, ``anthropic``,
``ollama``). It is built once per process for each catalogue provider with the process's pooled
``httpx.AsyncClient`` injected, and it maps OpenAI's chat request to the provider and back.
Failures are raised as :mod:`relay_core.errors` upstream errors, translated by table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import httpx

from relay_core.catalogue.models import ProviderConfig
from relay_core.schemas.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from relay_core.schemas.embeddings import EmbeddingRequest


@dataclass
class RateLimitFeedback:
    """What the provider said about its own limits on this call (all optional).

    ``reset_*`` are seconds from now until that budget refills.
    """

    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    limit_requests: int | None = None
    limit_tokens: int | None = None
    reset_requests_s: float | None = None
    reset_tokens_s: float | None = None
    retry_after_s: float | None = None

    def is_empty(self) -> bool:
        return all(v is None for v in vars(self).values())


@dataclass
class Completion:
    """A whole (non-streaming) answer, already in OpenAI's shape."""

    body: ChatCompletion
    feedback: RateLimitFeedback = field(default_factory=RateLimitFeedback)


class ChunkStream(Protocol):
    """An open streaming answer: iterate it for OpenAI-shaped chunks.

    ``feedback`` is filled from the response headers as soon as they arrive.
    """

    feedback: RateLimitFeedback

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]: ...


class Provider(Protocol):
    """One configured provider, speaking its API family's wire format."""

    config: ProviderConfig

    async def complete(self, request: ChatCompletionRequest, model: str) -> Completion:
        """Send ``request`` to ``model`` (the provider's own model id) and return the answer."""
        ...

    def stream(
        self, request: ChatCompletionRequest, model: str
    ) -> AbstractAsyncContextManager[ChunkStream]:
        """Open a streaming answer. Errors before the first chunk raise on ``__aenter__``."""
        ...


@dataclass
class Embedded:
    """An embeddings answer: one vector per input, in input order, and the prompt tokens the
    upstream counted (None: it counted none)."""

    vectors: list[list[float]]
    prompt_tokens: int | None = None
    feedback: RateLimitFeedback = field(default_factory=RateLimitFeedback)


@runtime_checkable
class EmbeddingProvider(Protocol):
    """A provider whose family serves embeddings (``openai``, ``gemini``, ``ollama``)."""

    config: ProviderConfig

    async def embed(
        self, request: EmbeddingRequest, model: str, dimensions: int | None
    ) -> Embedded:
        """Embed ``request``'s inputs with ``model``; ``dimensions``: ask for vectors of this
        length (only for a model that shortens its own; None: its own length). A request
        this family cannot send (token ids where it takes text) raises ``InvalidRequest``."""
        ...


class ProviderFactory(Protocol):
    def __call__(
        self, config: ProviderConfig, http: httpx.AsyncClient, api_key: str | None
    ) -> Provider: ...
