"""The streaming half of every client: one :class:`ChunkStream` shape for all families.

A family turns its wire events into :class:`ChatCompletionChunk` objects; :func:`open_chunks`
then makes every stream behave the same way:

* the first chunk is read inside ``__aenter__``, so an error before the first chunk (an HTTP
  error status, an ``error`` event, a stream that ends at once) raises there, while failing
  over to another provider is still possible;
* every chunk carries the first chunk's ``id``;
* the first delta of each choice carries ``role="assistant"``;
* each choice's text fields are scrubbed of the provider's key even when the key is split
  across chunks (:mod:`relay_core.providers._held`: the end of a text is held while it could
  be the key's start, and sent with the next chunk, the choice's last or an extra one);
* leaving the ``async with`` closes the family's generator and the HTTP response.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager

from relay_core.errors import UpstreamEmptyStream
from relay_core.providers._held import StreamScrubber
from relay_core.providers._http import CallContext
from relay_core.providers.base import RateLimitFeedback
from relay_core.schemas.chat import ChatCompletionChunk, ChunkChoice, Delta, Usage


class OpenedStream:
    """An open streaming answer (implements :class:`relay_core.providers.base.ChunkStream`)."""

    def __init__(
        self,
        feedback: RateLimitFeedback,
        first: ChatCompletionChunk,
        rest: AsyncIterator[ChatCompletionChunk],
        secret: str | None = None,
    ) -> None:
        self.feedback = feedback
        self._first = first
        self._rest = rest
        self._secret = secret

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self._normalised()

    async def _normalised(self) -> AsyncIterator[ChatCompletionChunk]:
        stream_id = self._first.id
        started: set[int] = set()
        if self._secret is None:
            yield _normalise(self._first, stream_id, started)
            async for chunk in self._rest:
                yield _normalise(chunk, stream_id, started)
            return
        held = StreamScrubber(self._secret)
        last = held.chunk(_normalise(self._first, stream_id, started))
        yield last
        async for chunk in self._rest:
            last = held.chunk(_normalise(chunk, stream_id, started))
            yield last
        for index, delta in held.rest():
            yield text_chunk(stream_id, last.model, last.created, delta, index)


def _normalise(
    chunk: ChatCompletionChunk, stream_id: str, started: set[int]
) -> ChatCompletionChunk:
    chunk.id = stream_id
    for choice in chunk.choices:
        if choice.index not in started:
            started.add(choice.index)
            choice.delta.role = "assistant"
    return chunk


@asynccontextmanager
async def open_chunks(
    chunks: AsyncGenerator[ChatCompletionChunk, None],
    feedback: RateLimitFeedback,
    ctx: CallContext,
) -> AsyncIterator[OpenedStream]:
    """Read the first chunk now, then hand out the stream (see the module docstring)."""
    try:
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            raise ctx.error(
                UpstreamEmptyStream, f"{ctx.provider}: the stream ended before its first chunk"
            ) from None
        yield OpenedStream(feedback, first, chunks, ctx.answer_secret)
    finally:
        await chunks.aclose()


def text_chunk(
    chunk_id: str, model: str, created: int, delta: Delta, index: int = 0
) -> ChatCompletionChunk:
    return ChatCompletionChunk(
        id=chunk_id,
        model=model,
        created=created,
        choices=[ChunkChoice(index=index, delta=delta)],
    )


def usage_chunk(chunk_id: str, model: str, created: int, usage: Usage) -> ChatCompletionChunk:
    """The last chunk when the upstream reported usage (OpenAI's ``include_usage`` shape)."""
    return ChatCompletionChunk(id=chunk_id, model=model, created=created, choices=[], usage=usage)
