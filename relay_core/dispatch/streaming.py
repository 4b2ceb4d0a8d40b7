"""Streaming through the farm: the worker's half (the API's is ``relay_api.streaming``).

A worker relays a streamed answer chunk by chunk into one Redis Stream per request,
``{prefix}:stream:{id}``, already serialised in OpenAI's chunk format so the API passes the
bytes through untouched:

* chunk entries ``{c: <chunk JSON>}`` with explicit ids ``0-1``, ``0-2``, ... — the first also
  names the provider, model and attempt (``p``, ``m``, ``a``), the queue wait and the
  upstream's time to its first chunk in ms (``q``, ``f``), for the response headers;
* one terminal entry: ``{d: <Reply JSON>}`` when the answer ended, ``{e: <Reply JSON>}`` when
  it failed (before the first chunk: the API answers a plain error; after it: an SSE error
  event then ``[DONE]``).

Failover is possible until the first chunk is written: an upstream error before that is the
executor's ordinary re-route. Chunks that carry no piece of the answer yet (the role's delta)
are held back until the first one that does, so a stream that ends without any content (an
empty answer) has written nothing and fails over like an empty whole answer (counted against
the provider's learned success); the last candidate's is relayed, such as it is. The explicit
ids make a second writer (a redelivered task after a worker died mid-stream) notice the stream
is taken instead of appending a second answer.

The API sets ``{prefix}:cancel:{id}`` when the client disconnects, then deletes the stream's
key. The worker notices it two ways: each chunk is written by one script that writes nothing
once that key is set, and while a call runs (waiting for the provider's first chunk included,
a hang that would otherwise last until the provider's timeout) one poller per worker process
reads the cancel keys of every stream in flight (one ``MGET`` per :data:`CANCEL_POLL_S`). The
call is then cancelled wherever it is, which closes the upstream request, and settled as a
success with what it used; the terminal entry is not written and the stream's key is deleted
(one script: a stream whose client left leaves no key behind).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis

from relay_core.context.count import count_messages, count_text
from relay_core.dispatch.envelope import Envelope, Reply
from relay_core.errors import (
    UpstreamEmptyStream,
    UpstreamError,
    UpstreamUnavailable,
)
from relay_core.normalize import ChunkNormalizer, Normalize
from relay_core.providers.base import ChunkStream, RateLimitFeedback
from relay_core.schemas.chat import ChatCompletionChunk, ChatCompletionRequest, Usage

STREAM_TTL_S = 600  # an unread stream disappears after this
STREAM_MAXLEN = 10_000  # entries kept per stream (a reader this far behind loses the oldest)
CANCEL_TTL_S = 600
CANCEL_POLL_S = 0.2  # how often a worker looks at the cancel keys of the streams it relays

log = logging.getLogger("relay.dispatch")

CHUNK, DONE, ERROR = b"c", b"d", b"e"
PROVIDER, MODEL, ATTEMPTS = b"p", b"m", b"a"
QUEUE_MS, FIRST_MS = b"q", b"f"  # queue wait, and the upstream's time to its first chunk


def stream_key(prefix: str, name: str) -> str:
    return f"{prefix}:stream:{name}"


def cancel_key(prefix: str, name: str) -> str:
    return f"{prefix}:cancel:{name}"


def stream_name(env: Envelope) -> str:
    """The name of ``env``'s stream and cancel keys: its id, and once the API published it
    again after its worker died, the id and that round (the earlier writer's key is then
    cancelled: it writes nothing where the new one streams)."""
    return env.id if env.republished == 0 else f"{env.id}.r{env.republished}"


def wants_stream(env: Envelope) -> bool:
    return isinstance(env.request, ChatCompletionRequest) and env.request.stream is True


class Written(Enum):
    ok = "ok"
    cancelled = "cancelled"  # the client went away
    taken = "taken"  # another writer already streamed into this key


class ChunkSink(Protocol):
    """Where one request's chunks go."""

    async def write(self, data: bytes, head: dict[bytes, bytes] | None = None) -> Written: ...

    async def left(self) -> None:
        """Returns once the client has gone away (never, for a sink that cannot tell)."""


class StreamHub(Protocol):
    """A worker's streams: open one per request, end it with the final reply."""

    def open(self, name: str) -> ChunkSink:
        """The sink of the stream ``name`` (:func:`stream_name`)."""
        ...

    async def finish(self, name: str, reply: Reply) -> None: ...


# KEYS: the stream, its cancel key. ARGV: the entry id, MAXLEN, TTL, "1" for the first chunk
# (a stream already there is another writer's), then the fields. 0 written, 1 taken,
# 2 cancelled (nothing written).
_WRITE = """
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], ARGV[1], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 0
"""
# KEYS: the stream, its cancel key. ARGV: the field (done or error), the reply, MAXLEN, TTL.
# A stream whose client left is deleted instead (0), else ended (1).
_FINISH = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""
_WRITTEN = {0: Written.ok, 1: Written.taken, 2: Written.cancelled}


class CancelWatch:
    """Which streams' clients left: one ``MGET`` of the cancel keys of every stream a worker
    process relays, each :data:`CANCEL_POLL_S`, while any is in flight."""

    def __init__(self, redis: Redis, poll_s: float = CANCEL_POLL_S) -> None:
        self.redis = redis
        self.poll_s = poll_s
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def wait(self, key: str) -> None:
        """Returns once ``key`` exists."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(fut)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="relay-cancel-watch")
        try:
            await fut
        finally:
            futs = self._waiting.get(key, [])
            if fut in futs:
                futs.remove(fut)
            if not futs:
                self._waiting.pop(key, None)

    async def _run(self) -> None:
        while self._waiting:
            keys = list(self._waiting)
            try:
                found = await self.redis.mget(keys)
            except Exception:  # Redis blinked: the chunk writes still see the key
                log.warning("could not read the cancel keys", exc_info=True)
                found = [None] * len(keys)
            for key, value in zip(keys, found, strict=True):
                for fut in self._waiting.get(key, []) if value is not None else []:
                    if not fut.done():
                        fut.set_result(None)
            await asyncio.sleep(self.poll_s)


class RedisChunkSink:
    def __init__(self, hub: RedisStreams, name: str) -> None:
        self.hub = hub
        self.key = stream_key(hub.prefix, name)
        self.cancel = cancel_key(hub.prefix, name)
        self.seq = 0

    async def write(self, data: bytes, head: dict[bytes, bytes] | None = None) -> Written:
        self.seq += 1
        args: list[Any] = [f"0-{self.seq}", STREAM_MAXLEN, STREAM_TTL_S, int(self.seq == 1)]
        for name, value in {CHUNK: data, **(head or {})}.items():
            args += [name, value]
        result = await self.hub.write_script(keys=[self.key, self.cancel], args=args)
        return _WRITTEN[int(result)]

    async def left(self) -> None:
        await self.hub.cancels.wait(self.cancel)


class RedisStreams:
    """The :class:`StreamHub` on Redis Streams (one per worker process)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.cancels = CancelWatch(redis)
        self.write_script = redis.register_script(_WRITE)
        self._finish_script = redis.register_script(_FINISH)

    def open(self, name: str) -> RedisChunkSink:
        return RedisChunkSink(self, name)

    async def finish(self, name: str, reply: Reply) -> None:
        keys = [stream_key(self.prefix, name), cancel_key(self.prefix, name)]
        kind = DONE if reply.ok else ERROR
        args: list[Any] = [
            kind,
            reply.model_dump_json(exclude_none=True),
            STREAM_MAXLEN,
            STREAM_TTL_S,
        ]
        await self._finish_script(keys=keys, args=args)


@dataclass
class ChunkShape:
    """How one request's chunks are written: OpenAI's format, under Relay's id and model."""

    request_id: str
    model: str
    include_usage: bool
    created: int = field(default_factory=lambda: int(time.time()))

    @classmethod
    def for_request(cls, request_id: str, model: str, request: ChatCompletionRequest) -> ChunkShape:
        include = request.stream_options is not None and request.stream_options.include_usage
        return cls(request_id, model, include)

    def encode(self, chunk: ChatCompletionChunk) -> bytes | None:
        """The chunk as JSON, or None for a usage chunk the client did not ask for."""
        if not chunk.choices and not self.include_usage:
            return None
        out: dict[str, Any] = {
            "id": self.request_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }
        if chunk.system_fingerprint is not None:
            out["system_fingerprint"] = chunk.system_fingerprint
        out["choices"] = [
            {
                "index": c.index,
                "delta": c.delta.model_dump(mode="json", exclude_none=True),
                "logprobs": c.logprobs,
                "finish_reason": c.finish_reason,
            }
            for c in chunk.choices
        ]
        for name, value in (chunk.model_extra or {}).items():
            out.setdefault(name, value)
        if self.include_usage:
            out["usage"] = None if chunk.usage is None else chunk.usage.model_dump(mode="json")
        return orjson.dumps(out)

    def usage_chunk(self, usage: Usage) -> bytes:
        chunk = ChatCompletionChunk(id=self.request_id, model=self.model, choices=[], usage=usage)
        data = self.encode(chunk)
        assert data is not None
        return data


@dataclass
class Streamed:
    """How a relayed stream went."""

    usage: Usage | None = None  # as the provider reported it
    chars: int = 0  # answer characters relayed
    # For an estimate when no usage came: the answer's text, and the chunks that carried some
    # (OpenAI-compatible servers send about one token per chunk).
    pieces: list[str] = field(default_factory=list)
    text_chunks: int = 0
    written: int = 0  # entries written
    ttft_s: float | None = None  # from the call's start to the first chunk written
    error: UpstreamError | None = None  # the upstream failed after the first chunk
    empty: bool = False  # choices came but no content: an empty answer
    cancelled: bool = False
    taken: bool = False  # another writer owns this stream (a redelivered task)

    def estimated_usage(self, request: ChatCompletionRequest, prompt: int | None = None) -> Usage:
        """The provider's usage, else Relay's estimate, marked ``estimated: true``: ``prompt``
        (the request's estimate, counted once) and the answer's tokens, the larger of the
        chunks that carried text and the estimate of that text, never above
        ``max_tokens`` x ``n``."""
        if self.usage is not None:
            return self.usage
        if prompt is None:
            prompt = count_messages(request.messages)
        completion = max(self.text_chunks, count_text("".join(self.pieces)))
        cap = request.output_limit()
        if cap is not None:
            completion = min(completion, cap * (request.n or 1))
        return Usage.model_validate(
            {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "estimated": True,
            }
        )

    def add(self, chunk: ChatCompletionChunk) -> None:
        """Note what ``chunk`` carries of the answer."""
        texts = [c.delta.content or "" for c in chunk.choices]
        for c in chunk.choices:
            for call in c.delta.tool_calls or ():
                texts.append((call.function or {}).get("arguments", ""))
        texts = [t for t in texts if t]
        if texts:
            self.text_chunks += 1
            self.pieces.extend(texts)
            self.chars += sum(len(t) for t in texts)


def carries_answer(chunk: ChatCompletionChunk) -> bool:
    """Whether ``chunk`` holds a piece of the answer: text, a tool call, or a field the
    provider adds to the delta (DeepSeek's ``reasoning_content`` streams before the text)."""
    return any(
        c.delta.content or c.delta.tool_calls or any((c.delta.model_extra or {}).values())
        for c in chunk.choices
    )


class Relay:
    """One stream's relay from the provider to the sink."""

    def __init__(
        self,
        sink: ChunkSink,
        env: Envelope,
        target: tuple[str, str],
        request: ChatCompletionRequest,
        *,
        normalize: bool,
        clock: Callable[[], float] = time.time,
        prompt: int | None = None,
        last: bool = True,
    ) -> None:
        self.sink = sink
        self.last = last  # no candidate after this one: an empty answer is relayed as it is
        self.env = env
        self.provider, self.model = target
        self.request = request
        self.shape = ChunkShape.for_request(env.id, self.model, request)
        self.normalize = Normalize.for_request(request, normalize)
        self.clock = clock
        self.prompt = prompt  # the request's prompt estimate, counted once
        self.result = Streamed()
        self.feedback = RateLimitFeedback()  # what the provider said of its limits

    async def stream(
        self, opening: AbstractAsyncContextManager[ChunkStream], started: float
    ) -> Streamed:
        """Open the upstream stream (which reads its first chunk) and relay it, unless the
        client leaves first: then the call is cancelled wherever it is (waiting for the
        provider, between chunks), which closes the upstream request, and the result is
        marked cancelled. Errors propagate as from :meth:`run`."""
        relaying = asyncio.ensure_future(self._open_and_run(opening, started))
        left = asyncio.ensure_future(self.sink.left())
        try:
            await asyncio.wait({relaying, left}, return_when=asyncio.FIRST_COMPLETED)
            if not relaying.done():  # the client left
                relaying.cancel()
                await asyncio.wait({relaying})
                if relaying.cancelled():
                    self.result.cancelled = True
                    return self.result
            return relaying.result()
        finally:
            left.cancel()
            relaying.cancel()  # when this visit itself is cancelled (a worker stopping)

    async def _open_and_run(
        self, opening: AbstractAsyncContextManager[ChunkStream], started: float
    ) -> Streamed:
        async with opening as upstream:
            self.feedback = upstream.feedback
            return await self.run(upstream, started)

    async def run(self, upstream: ChunkStream, started: float) -> Streamed:
        """Relay every chunk. An upstream error before anything was written propagates (the
        caller fails over); after that it is returned in :attr:`Streamed.error`."""
        normalizer = ChunkNormalizer(self.normalize)
        held: list[ChatCompletionChunk] = []  # before the answer's first piece
        try:
            async for chunk in upstream:
                if chunk.usage is not None and not chunk.choices:
                    self.result.usage = chunk.usage
                self.result.add(chunk)
                for out in normalizer.chunk(chunk):
                    if self.result.written == 0 and not carries_answer(out):
                        held.append(out)
                        continue
                    if not await self._send_all([*held, out], started):
                        return self.result
                    held.clear()
        except UpstreamError as exc:
            if self.result.written == 0:
                raise
            self.result.error = exc
            return self.result
        if self.result.written == 0:
            if not any(c.choices for c in held):
                raise self._empty()
            self.result.empty = True  # the caller fails over, or relays it if it is the last
            if not self.last or not await self._send_all(held, started):
                return self.result
        if self.shape.include_usage and self.result.usage is None:
            usage = self.result.estimated_usage(self.request, self.prompt)
            await self._send(self.shape.usage_chunk(usage), started)
        return self.result

    def _empty(self) -> UpstreamEmptyStream:
        return UpstreamEmptyStream(
            f"{self.provider}: the stream carried no answer for {self.model}.",
            provider=self.provider,
            model=self.model,
        )

    async def _send_all(self, chunks: list[ChatCompletionChunk], started: float) -> bool:
        for chunk in chunks:
            if not await self._send(self.shape.encode(chunk), started):
                return False
        return True

    async def _send(self, data: bytes | None, started: float) -> bool:
        if data is None:
            return True
        first = self.result.written == 0
        written = await self.sink.write(data, self._head(started) if first else None)
        if written is Written.taken:
            self.result.taken = True
            return False
        self.result.written += 1
        if first:
            self.result.ttft_s = self.clock() - started
        if written is Written.cancelled:
            self.result.cancelled = True
            return False
        return True

    def _head(self, started: float) -> dict[bytes, bytes]:
        now = self.clock()
        return {
            PROVIDER: self.provider.encode(),
            MODEL: self.model.encode(),
            ATTEMPTS: str(self.env.attempts).encode(),
            QUEUE_MS: f"{max(0.0, started - self.env.enqueued_at) * 1000:.1f}".encode(),
            FIRST_MS: f"{(now - started) * 1000:.1f}".encode(),
        }

    def reply(self, usage: Usage, started: float, now: float) -> Reply:
        """The final word on a stream that went through (or that the client left)."""
        return Reply(
            id=self.env.id,
            ok=True,
            usage=usage,
            cancelled=self.result.cancelled,
            provider=self.provider,
            model=self.model,
            attempts=self.env.attempts,
            queue_wait_s=max(0.0, started - self.env.enqueued_at),
            upstream_s=now - started,
            failures=self.env.failures,
        )

    def interrupted(self) -> UpstreamError:
        return UpstreamUnavailable(
            "The stream was interrupted (its worker stopped) and cannot be resumed.",
            provider=self.provider,
            model=self.model,
        )
