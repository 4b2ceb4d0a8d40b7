"""The streaming half of every client: one :class:`ChunkStream` shape for all families.

A family turns its wire events into :class:`ChatCompletionChunk` objects; :func:`open_chunks`
then makes every stream behave the same way:

* the first chunk is read inside ``__aenter__``, so an error before the first chunk (an HTTP
  error status, an ``error`` event, a stream that ends at once) raises there, while failing
  over to another provider is still possible;
* every chunk carries the first chunk's ``id``;
* the first delta of each choice carries ``role="assistant"``;
* each tool call's ``id``, ``type`` and ``name`` come once, in its first delta (of its
  ``index``); later deltas carry the ``index`` and ``arguments`` fragments only. Some servers
  repeat them on every delta, and clients that concatenate what each delta says (LangChain)
  would build ``get_weatherget_weather``. A name that differs from what was sent is a fragment
  of it (sent on); a repeat of the whole name is dropped;
* each choice's text fields are scrubbed of the provider's key even when the key is split
  across chunks (:mod:`relay_core.providers._held`: the end of a text is held while it could
  be the key's start, and sent with the next chunk, the choice's last or an extra one);
* leaving the ``async with`` closes the family's generator and the HTTP response.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from relay_core.errors import UpstreamEmptyStream
from relay_core.providers._held import StreamScrubber
from relay_core.providers._http import CallContext
from relay_core.providers.base import RateLimitFeedback
from relay_core.schemas.chat import ChatCompletionChunk, ChunkChoice, Delta, ToolCallDelta, Usage


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
        shape = StreamShape(self._first.id)
        if self._secret is None:
            yield shape.chunk(self._first)
            async for chunk in self._rest:
                yield shape.chunk(chunk)
            return
        held = StreamScrubber(self._secret)
        last = held.chunk(shape.chunk(self._first))
        yield last
        async for chunk in self._rest:
            last = held.chunk(shape.chunk(chunk))
            yield last
        for index, delta in held.rest():
            yield text_chunk(shape.stream_id, last.model, last.created, delta, index)


@dataclass(slots=True)
class _SentCall:
    """What the client has been sent of one tool call."""

    id: bool = False
    type: bool = False
    name: str = ""


class StreamShape:
    """The stream-wide rules of the module docstring, applied to each chunk in place."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self._started: set[int] = set()
        self._calls: dict[tuple[int, int], _SentCall] = {}

    def chunk(self, chunk: ChatCompletionChunk) -> ChatCompletionChunk:
        chunk.id = self.stream_id
        for choice in chunk.choices:
            if choice.index not in self._started:
                self._started.add(choice.index)
                choice.delta.role = "assistant"
            for call in choice.delta.tool_calls or ():
                self._once(self._calls.setdefault((choice.index, call.index), _SentCall()), call)
        return chunk

    @staticmethod
    def _once(sent: _SentCall, call: ToolCallDelta) -> None:
        if call.id is not None:
            call.id, sent.id = (None if sent.id else call.id), True
        if call.type is not None:
            call.type, sent.type = (None if sent.type else call.type), True
        name = (call.function or {}).get("name")
        if name is None or call.function is None:
            return
        if sent.name and name in ("", sent.name):
            call.function = {k: v for k, v in call.function.items() if k != "name"}
        else:
            sent.name += name


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
