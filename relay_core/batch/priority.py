"""Interactive requests before batch lines, at every provider's token bucket.

Buckets hold one request (strict pacing), so whoever asks first when a token refills gets it.
An interactive request about to wait for a provider's token says so in Redis (a sorted set
per provider: request id → until when); batch lines check it before each try and stand aside
while anyone waits. Entries expire on their own (a worker that dies mid-wait leaves nothing
behind), so a mark costs one pipelined round trip before the visit and one fire-and-forget
removal after it.

    {prefix}:interactive:{provider}     sorted set: request id -> mark expiry (epoch s)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from redis.asyncio import Redis

from relay_core.dispatch.envelope import Candidate

log = logging.getLogger("relay.batch")


class Priority:
    def __init__(self, redis: Redis, prefix: str, mark_s: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.mark_s = mark_s  # longest an interactive request waits in place for a token
        self._pending: set[asyncio.Task[object]] = set()

    def key(self, provider: str) -> str:
        return f"{self.prefix}:interactive:{provider}"

    @asynccontextmanager
    async def interactive(self, request_id: str, provider: str) -> AsyncIterator[None]:
        """Mark an interactive request as waiting for ``provider`` while the block runs."""
        key, now = self.key(provider), time.time()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zadd(key, {request_id: now + self.mark_s})
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.expire(key, int(self.mark_s) + 2)
                await pipe.execute()
        except Exception:  # priority is best effort: never fail a request over it
            log.warning("could not mark an interactive request", exc_info=True)
        try:
            yield
        finally:
            task = asyncio.ensure_future(self.redis.zrem(key, request_id))
            self._pending.add(task)
            task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[object]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:  # the mark expires anyway
            log.debug("could not unmark an interactive request", exc_info=task.exception())

    async def waiting(self, provider: str) -> bool:
        """Whether an interactive request waits for ``provider`` now."""
        return bool(await self.redis.zcount(self.key(provider), f"({time.time()}", "+inf"))


# (candidate) -> seconds until its limits could pass one request (0: now)
Peek = Callable[[Candidate], Awaitable[float]]
# A line waits in place for a token only when it is this close (the executor's own wait).
NEAR_S = 0.03
# How often a line standing aside for an interactive request looks again.
YIELD_S = 0.02


class Gate:
    """Where a batch line waits for its turn at a provider: until no interactive request
    waits for it and its bucket has a token. Waiting here costs one peek per wake-up, where
    a try through the executor would cost a whole visit."""

    def __init__(self, priority: Priority, peek: Peek) -> None:
        self.priority = priority
        self.peek = peek

    async def turn(self, candidate: Candidate, budget_s: float) -> float:
        """Wait (at most ``budget_s``) for ``candidate``'s turn; the seconds waited."""
        spent = 0.0
        while spent < budget_s:
            if await self.priority.waiting(candidate.provider):
                step = YIELD_S
            else:
                step = await self.peek(candidate)
                if step <= NEAR_S:
                    return spent
                step -= NEAR_S / 2  # wake a little early: the executor waits out the rest
            step = min(step, budget_s - spent)
            await asyncio.sleep(step)
            spent += step
        return spent
