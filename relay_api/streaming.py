"""Streaming through the farm: the API's half (the worker's is ``relay_core.dispatch.streaming``).

The API reads the request's Redis Stream through the process's stream reader
(``relay_api.stream_mux``: one ``XREAD BLOCK`` over many streams, no connection held per
stream) and relays each chunk entry as one SSE event, passing the worker's JSON bytes through:

* until the first entry arrives nothing is sent, so an error before the first chunk is an
  ordinary JSON error with its status code (429 with ``Retry-After``, 503, ...);
* then ``200 text/event-stream`` with ``x-relay-provider`` / ``x-relay-model`` headers, one
  ``data: {...}`` event per chunk, and ``data: [DONE]``;
* an error after the first chunk is an ``event: error`` whose data is the OpenAI error object,
  then ``data: [DONE]``;
* a client that disconnects — while its stream waits for the first entry, or later — sets the
  cancel key the worker watches (between chunks, and while it waits for the provider's first
  one), deletes the stream's key, and frees the call's concurrency slot at once;
* a gateway key has at most ``RELAY_MAX_STREAMS_PER_KEY`` streams open (``relay_api.stream_slots``);
* when the worker holding the stream dies (its holds stop moving, ``relay_api.replies``) before
  any entry came, the request is published again under a new stream key
  (``Envelope.republished``; the old key's cancel key is set and the old key deleted, so a
  worker that was only stalled writes nothing where the new one streams): the client gets one
  whole answer. After the first entry it is too late to start again: the stream ends with an
  error event (``upstream_unavailable``) and ``[DONE]`` instead of waiting for its deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import orjson
from redis.exceptions import RedisError
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from relay_api.state import ApiState
from relay_api.stream_mux import ClientLeft, Fields, Subscription
from relay_api.stream_slots import StreamSlot
from relay_core.dispatch.envelope import Envelope, Reply
from relay_core.dispatch.streaming import (
    ATTEMPTS,
    CANCEL_TTL_S,
    CHUNK,
    DONE,
    ERROR,
    FIRST_MS,
    MODEL,
    PROVIDER,
    QUEUE_MS,
    cancel_key,
    stream_key,
    stream_name,
)
from relay_core.errors import RelayError, ServiceError, UpstreamUnavailable

log = logging.getLogger("relay.api")

DONE_EVENT = b"data: [DONE]\n\n"
CLIENT_CLOSED_REQUEST = 499  # the status logged for a client that left before any answer

Publish = Callable[[Envelope], Awaitable[None]]


class HolderLost(Exception):
    """The worker relaying a stream died (read from a :class:`Subscription` it failed)."""


def worker_lost() -> RelayError:
    return UpstreamUnavailable(
        "The worker relaying this stream stopped mid-answer; the answer cannot be resumed. "
        "Send the request again."
    )


AfterFirst = Callable[[str, str], Awaitable[None]]
# Told the stream's last word once its response is over: the worker's reply (None when the
# client left before it, or the stream broke): the route audit reads it.
OnEnd = Callable[[Reply | None], None]


def error_event(exc: RelayError) -> bytes:
    return b"event: error\ndata: " + orjson.dumps(exc.body()) + b"\n\n" + DONE_EVENT


def terminal_error(fields: Fields) -> RelayError:
    reply = Reply.model_validate_json(fields[ERROR])
    if reply.error is None:
        return UpstreamUnavailable("The stream failed.")
    return RelayError.from_info(reply.error)


def last_reply(batch: list[Fields]) -> Reply | None:
    """The worker's reply in a stream's last entry (its done or error field)."""
    for fields in reversed(batch):
        raw = fields.get(DONE) or fields.get(ERROR)
        if raw:
            try:
                return Reply.model_validate_json(raw)
            except ValueError:
                return None
    return None


def frames(batch: list[Fields]) -> tuple[bytes, bool]:
    """The SSE bytes for a batch of entries, and whether the stream has ended."""
    out = bytearray()
    for fields in batch:
        chunk = fields.get(CHUNK)
        if chunk is not None:
            out += b"data: " + chunk + b"\n\n"
        elif DONE in fields:
            return bytes(out + DONE_EVENT), True
        elif ERROR in fields:
            return bytes(out) + error_event(terminal_error(fields)), True
    return bytes(out), False


class SSEResponse(Response):
    """The ASGI response relaying the rest of the stream after its first entries."""

    media_type = "text/event-stream"

    def __init__(self, relay: StreamRelay, first: list[Fields], headers: dict[str, str]) -> None:
        # Like StreamingResponse: no ``body``, so no content-length.
        self.status_code = 200
        self.background = None
        self.relay = relay
        self.first = first
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        finished = False
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            try:
                finished = await self.relay.pump(self.first, send)
            except OSError:  # the client went away while we wrote
                finished = False
            tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await self.relay.close(finished)
        self.relay.ended()


class StreamRelay:
    """One streamed request, from publishing its envelope to its last SSE event."""

    def __init__(
        self,
        state: ApiState,
        env: Envelope,
        after_first: AfterFirst | None,
        on_end: OnEnd | None = None,
    ) -> None:
        self.state = state
        self.env = env
        self.on_end = on_end
        self.last: Reply | None = None  # the worker's reply, once its entry went by
        self.prefix = state.settings.key_prefix
        self.name = stream_name(env)
        self.key = stream_key(self.prefix, self.name)
        self.after_first = after_first
        self.provider = ""
        self.model = ""
        self.slot: StreamSlot | None = None
        self.sub: Subscription | None = None
        self.relaying = False  # an entry came: too late to publish the request again

    async def start(self, publish: Publish, receive: Receive) -> Response:
        """Publish and wait for the first entry: a stream to relay, or the error raised (a
        bare 499 when the client left first)."""
        self.slot = self.state.stream_slots.take(self.env.owner or "")  # 429 beyond the key's cap
        self.sub = self.state.streams.open(self.key)
        self.state.hub.watch(self.env, self._holder_lost)
        try:
            await publish(self.env)
            first = await self._first(publish, receive)
        except ClientLeft:
            await self.close(finished=False)
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        except Exception:  # a deadline, Redis: a late worker must not stream to nobody
            await self.close(finished=False)
            raise
        except BaseException:
            self._forget()
            raise
        head = first[0]
        if ERROR in head:
            await self.close(finished=True)
            raise terminal_error(head)
        self.provider = head.get(PROVIDER, b"").decode()
        self.model = head.get(MODEL, b"").decode()
        headers = {
            "cache-control": "no-cache",
            "x-accel-buffering": "no",
            "x-relay-provider": self.provider,
            "x-relay-model": self.model,
            "x-relay-attempts": head.get(ATTEMPTS, b"1").decode(),
            "x-relay-queue-ms": head.get(QUEUE_MS, b"").decode(),
            "x-relay-upstream-ms": head.get(FIRST_MS, b"").decode(),
            "x-request-id": self.env.id,
        }
        return SSEResponse(self, first, headers)

    async def _first(self, publish: Publish, receive: Receive) -> list[Fields]:
        """The first entries; :class:`ClientLeft` as soon as the client disconnects. The
        request is published again (:meth:`_again`) each time its worker dies first."""
        left = False

        def gone(task: asyncio.Task[None]) -> None:
            nonlocal left
            if not task.cancelled():
                task.exception()  # retrieved: a receive that failed means the client is gone
                left = True
                if self.sub is not None:
                    self.sub.leave()

        watch = asyncio.create_task(_disconnected(receive))
        watch.add_done_callback(gone)
        try:
            while True:
                assert self.sub is not None
                try:
                    first = await self.sub.read(max(0.0, self.env.deadline - time.time()) + 1.0)
                except HolderLost:
                    if left:
                        raise ClientLeft from None
                    await self._again(publish)
                    continue
                self.relaying = True  # no await since the read: the watch sees it at once
                return first
        finally:
            watch.cancel()

    def _holder_lost(self) -> None:
        """The hub found the stream's worker dead: make the waiting read raise."""
        if self.sub is not None:
            self.sub.fail(HolderLost())

    async def _again(self, publish: Publish) -> None:
        """Publish the request again under a new stream key; the old writer's key is
        cancelled (a stalled worker that wakes writes nothing) and deleted."""
        assert self.sub is not None
        old_name, old_key = self.name, self.key
        self.sub.close()
        self.env = self.env.model_copy(update={"republished": self.env.republished + 1})
        self.name = stream_name(self.env)
        self.key = stream_key(self.prefix, self.name)
        self.sub = self.state.streams.open(self.key)
        async with self.state.redis.pipeline(transaction=False) as pipe:
            pipe.set(cancel_key(self.prefix, old_name), b"1", ex=CANCEL_TTL_S)
            pipe.delete(old_key)
            await pipe.execute()
        log.warning("stream %s: published again (round %d)", self.env.id, self.env.republished)
        await publish(self.env)

    async def pump(self, first: list[Fields], send: Send) -> bool:
        """Send every event; True when the stream ended (done or error event sent)."""
        assert self.sub is not None
        batch = first
        idle_s = self.state.settings.request_timeout_s
        while True:
            data, ended = frames(batch)
            if data:
                await send(_body(data))
            if ended:
                self.last = last_reply(batch)
                await send(_body(b"", more=False))
                return True
            if batch is first:
                await self._after_first()
            try:
                batch = await self.sub.read(idle_s)
            except HolderLost:  # its worker died mid-answer: say so now
                await send(_body(error_event(worker_lost()), more=False))
                return False
            except (RelayError, RedisError) as exc:
                await send(_body(error_event(_as_relay_error(exc)), more=False))
                return False

    async def _after_first(self) -> None:
        if self.after_first is None or not self.provider:
            return
        try:
            await self.after_first(self.provider, self.model)
        except RedisError:  # re-pinning is a preference: never break a stream for it
            log.warning("could not pin session for %s", self.env.id, exc_info=True)

    def ended(self) -> None:
        if self.on_end is not None:
            self.on_end(self.last)

    def _forget(self) -> None:
        """Give back the key's stream slot and leave the reader (at once, no I/O)."""
        self.state.hub.forget(self.env.id)
        if self.sub is not None:
            self.sub.close()
        if self.slot is not None:
            self.slot.release()

    async def close(self, finished: bool) -> None:
        """After the last event, or when the client left: tidy up, cancel the upstream call.

        The cancel key goes first, then the stream's key is deleted: a worker writes nothing
        once the cancel key is set, so no key is left behind."""
        self._forget()
        try:
            if finished:
                await self.state.redis.delete(self.key)
                return
            if self.provider:
                log.info("stream %s: client gone, cancelling %s", self.env.id, self.provider)
            async with self.state.redis.pipeline(transaction=False) as pipe:
                pipe.set(cancel_key(self.prefix, self.name), b"1", ex=CANCEL_TTL_S)
                pipe.delete(self.key)
                await pipe.execute()
            await self._release_slot()
        except Exception:  # Redis blinked: the keys expire on their own
            log.warning("could not tidy up stream %s", self.env.id, exc_info=True)

    async def _release_slot(self) -> None:
        """Free the call's concurrency slot now (the worker's own release is then a no-op)."""
        config = next((p for p in self.state.providers if p.name == self.provider), None)
        model = None if config is None else config.model(self.model)
        if config is None or model is None:
            return
        now = time.time()
        plan = self.state.limiter.plan(config, model, now)
        await self.state.limiter.release(plan, self.env.id, 0, 0, now)


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has disconnected (the request's body was read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _as_relay_error(exc: Exception) -> RelayError:
    if isinstance(exc, RelayError):
        return exc
    log.warning("stream read failed", exc_info=exc)
    return ServiceError("Relay lost its connection to Redis while streaming.")


def _body(data: bytes, more: bool = True) -> Message:
    message: dict[str, Any] = {"type": "http.response.body", "body": data, "more_body": more}
    return message


async def stream_chat(
    state: ApiState,
    env: Envelope,
    publish: Publish,
    receive: Receive,
    after_first: AfterFirst | None = None,
    *,
    on_end: OnEnd | None = None,
) -> Response:
    """Publish ``env`` (a ``stream: true`` request) and return its SSE response; ``receive``
    is the request's, to notice the client leaving while the stream waits; ``on_end`` is
    told the worker's last word once the response is over."""
    return await StreamRelay(state, env, after_first, on_end).start(publish, receive)
