"""The API side of replies: one subscription per process, a future per waiting request.

Subscribing once (rather than once per request) keeps a thousand waiting requests on one Redis
connection. The future is registered *before* the task is published, so a fast worker cannot
answer into the void.

While requests wait, the hub looks once a second at what the workers hold
(:mod:`relay_core.dispatch.holds`): a request whose worker died is published again to its
queue, so its client gets an answer seconds after the death, not at its deadline. A stream
(:meth:`ReplyHub.watch`) is told instead, and decides (``relay_api.streaming``): published
again under a new stream key while nothing reached its client, else ended with an error event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from relay_core.dispatch.envelope import Envelope, Reply
from relay_core.dispatch.holds import HolderWatch, drop_holds, read_holds, taken
from relay_core.dispatch.publish import publish_envelope
from relay_core.dispatch.replies import read_result, reply_channel

log = logging.getLogger("relay.api")
WATCH_EVERY_S = 1.0


class ReplyHub:
    def __init__(self, redis: Redis, prefix: str, redeliver_after_s: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.channel = reply_channel(prefix, uuid.uuid4().hex[:16])
        self._waiters: dict[str, asyncio.Future[Reply]] = {}
        # What to publish again if its worker dies, and the delivery tag of its message.
        self._envelopes: dict[str, tuple[Envelope, str | None]] = {}
        # Streams waiting or relaying: what to call when their worker died.
        self._streams: dict[str, Callable[[], None]] = {}
        self._watch = HolderWatch(redeliver_after_s)
        self.redelivered = 0
        self._pubsub: PubSub | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.channel)
        self._tasks = [
            asyncio.create_task(self._listen(self._pubsub), name="relay-replies"),
            asyncio.create_task(self._watch_holders(), name="relay-holders"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pubsub is not None:
            await self._pubsub.aclose()
        for fut in self._waiters.values():
            fut.cancel()

    def expect(self, env: Envelope) -> asyncio.Future[Reply]:
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiters[env.id] = fut
        self._envelopes[env.id] = (env, None)
        return fut

    async def publish(self, env: Envelope) -> None:
        """Publish ``env`` (after :meth:`expect`), keeping its delivery tag."""
        tag = await publish_envelope(self.redis, self.prefix, env)
        if env.id in self._envelopes:
            self._envelopes[env.id] = (env, tag)

    def watch(self, env: Envelope, on_lost: Callable[[], None]) -> None:
        """Call ``on_lost`` (no I/O) whenever the worker holding the stream ``env`` is found
        dead, until :meth:`forget`; publish it with :meth:`publish`."""
        self._streams[env.id] = on_lost
        self._envelopes[env.id] = (env, None)

    def forget(self, request_id: str) -> None:
        self._waiters.pop(request_id, None)
        self._streams.pop(request_id, None)
        self._envelopes.pop(request_id, None)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def wait(
        self, request_id: str, fut: asyncio.Future[Reply], limit_s: float
    ) -> Reply | None:
        """The reply, or None at the deadline (after one last look at the stored result)."""
        try:
            return await asyncio.wait_for(asyncio.shield(fut), limit_s)
        except TimeoutError:
            return await read_result(self.redis, self.prefix, request_id)
        finally:
            self.forget(request_id)

    async def _watch_holders(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            try:
                await self.redeliver_lost()
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis blinked: look again next time
                log.warning("could not check the workers' held requests", exc_info=True)

    async def redeliver_lost(self) -> None:
        """Publish again each waiting request whose worker died (one look at the holds)."""
        waiting = [i for i, fut in self._waiters.items() if not fut.done()]
        waiting += list(self._streams)
        if not waiting:
            return
        holds = await read_holds(self.redis, self.prefix)
        tags = {}
        for request_id in self._watch.unheld(waiting, holds):
            tag = self._envelopes.get(request_id, (None, None))[1]
            if tag is not None:
                tags[tag] = request_id
        got = {tags[t] for t in await taken(self.redis, tags)}
        lost, dead = self._watch.lost(waiting, holds, time.monotonic(), got)
        for request_id in lost:
            on_lost = self._streams.get(request_id)
            if on_lost is not None:
                log.warning("stream %s: its worker stopped showing signs of life", request_id)
                on_lost()
                continue
            env = self._envelopes.get(request_id, (None, None))[0]
            fut = self._waiters.get(request_id)
            if env is None or fut is None or fut.done():
                continue
            log.warning(
                "request %s: its worker stopped showing signs of life; publishing it again",
                request_id,
            )
            await self.publish(env)
            self.redelivered += 1
        # A dead worker's record goes once a worker took its batch lines (orphaned_at).
        orphaned = [w for w in dead if w in holds and holds[w].orphaned_at is not None]
        await drop_holds(self.redis, self.prefix, orphaned)

    async def _listen(self, pubsub: PubSub) -> None:
        while True:
            try:
                async for message in pubsub.listen():
                    self._deliver(message)
            except asyncio.CancelledError:
                raise
            except Exception:  # the connection dropped: resubscribe and carry on
                log.warning("reply subscription lost; resubscribing", exc_info=True)
                await asyncio.sleep(0.2)
                with contextlib.suppress(Exception):
                    await pubsub.subscribe(self.channel)

    def _deliver(self, message: dict[str, object]) -> None:
        if message.get("type") != "message":
            return
        data = message.get("data")
        if not isinstance(data, bytes | str):
            return
        reply = Reply.model_validate_json(data)
        fut = self._waiters.get(reply.id)
        if fut is not None and not fut.done():
            fut.set_result(reply)
