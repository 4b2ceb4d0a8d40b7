"""The API side of replies: one subscription per process, a future per waiting request.

Subscribing once (rather than once per request) keeps a thousand waiting requests on one Redis
connection. The future is registered *before* the task is published, so a fast worker cannot
answer into the void.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from relay_core.dispatch.envelope import Reply
from relay_core.dispatch.replies import read_result, reply_channel

log = logging.getLogger("relay.api")


class ReplyHub:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.channel = reply_channel(prefix, uuid.uuid4().hex[:16])
        self._waiters: dict[str, asyncio.Future[Reply]] = {}
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.channel)
        self._task = asyncio.create_task(self._listen(self._pubsub), name="relay-replies")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        for fut in self._waiters.values():
            fut.cancel()

    def expect(self, request_id: str) -> asyncio.Future[Reply]:
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = fut
        return fut

    def forget(self, request_id: str) -> None:
        self._waiters.pop(request_id, None)

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
