"""Interactive requests before batch lines, at every provider's token bucket.

Buckets hold one request (strict pacing), so whoever asks first when a token refills gets it.
An interactive request about to wait for a provider's token says so in Redis (a sorted set
per provider: request id → until when, plus a "seen lately" key); batch lines look before each
try and stand aside while anyone waits. Entries expire on their own (a worker that dies mid-wait
leaves nothing behind), so a mark costs one pipelined round trip before the visit and one
fire-and-forget removal after it. Requests mark themselves only while a batch is about
(:attr:`relay_core.batch.run.worker.BatchWorker.batches_about`): otherwise nobody would look.

Batch lines also change how they approach a refill. With no interactive traffic lately they
reserve the next slot up to :data:`LEAD_S` before it refills (the executor sleeps out the
rest), so no slot is lost to their own lateness on a busy box, and the lines waiting for one
provider take its slots in turn. While interactive traffic is about, they go for a token only
once it is there, reserving at most :data:`LEAD_LATELY_S` ahead: an interactive request
already sleeping until that refill gets it first, and one arriving next waits behind at most
one batch line.

    {prefix}:interactive:{provider}        sorted set: request id -> mark expiry (epoch s)
    {prefix}:interactive-seen:{provider}   present for RECENT_S after an interactive request
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

    def seen_key(self, provider: str) -> str:
        return f"{self.prefix}:interactive-seen:{provider}"

    @asynccontextmanager
    async def interactive(self, request_id: str, provider: str) -> AsyncIterator[None]:
        """Mark an interactive request as waiting for ``provider`` while the block runs."""
        key, now = self.key(provider), time.time()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zadd(key, {request_id: now + self.mark_s})
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.expire(key, int(self.mark_s) + 2)
                pipe.set(self.seen_key(provider), 1, px=int(RECENT_S * 1000))
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
        return (await self.state(provider))[0]

    async def state(self, provider: str) -> tuple[bool, bool]:
        """(an interactive request waits for ``provider`` now, one came lately)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcount(self.key(provider), f"({time.time()}", "+inf")
            pipe.exists(self.seen_key(provider))
            waiting, seen = await pipe.execute()
        return bool(waiting), bool(seen)


# (candidate) -> seconds until its limits could pass one request (0: now)
Peek = Callable[[Candidate], Awaitable[float]]
# With no interactive traffic lately, a line reserves its slot up to this long before the
# token refills (the executor sleeps out the rest in place): on a busy box (load 6-12 on 2
# cores) three lines in four came to a bucket that had refilled already when they committed
# 15 ms ahead, and a bucket of one loses every refill it sits full for.
LEAD_S = 0.25
# While interactive traffic is about, a line reserves at most this far ahead: an interactive
# request arriving next queues behind at most one batch line (with 0.1 s its p99 during a
# full-pace batch was 271 ms against 70 ms idle; with 30 ms, 174 ms: docs/limits.md).
LEAD_LATELY_S = 0.03
# A line wakes this long before its lead, so its lateness in waking does not cost the slot.
EARLY_S = 0.015
# How often a line standing aside for an interactive request looks again.
YIELD_S = 0.02
# Interactive traffic counts as "lately" for this long after a request.
RECENT_S = 2.0


class Gate:
    """Where a batch line waits for its turn at a provider: until no interactive request
    waits for it and its bucket has (or, with no interactive traffic lately, is about to
    have) a token. Waiting here costs two round trips per wake-up, where a try through the
    executor would cost a whole visit."""

    def __init__(self, priority: Priority, peek: Peek) -> None:
        self.priority = priority
        self.peek = peek
        self._lately: dict[str, bool] = {}  # provider -> interactive traffic at its last turn

    def lead_s(self, provider: str) -> float:
        """How far ahead of its token a line whose turn came may reserve ``provider``'s slot."""
        return LEAD_LATELY_S if self._lately.get(provider, True) else LEAD_S

    async def turn(self, candidate: Candidate, budget_s: float) -> float:
        """Wait (at most ``budget_s``) for ``candidate``'s turn; the seconds waited."""
        spent = 0.0
        while spent < budget_s:
            waiting, lately = await self.priority.state(candidate.provider)
            self._lately[candidate.provider] = lately
            if waiting:
                step = YIELD_S
            else:
                wait = await self.peek(candidate)
                if wait <= (0.0 if lately else LEAD_S - EARLY_S):
                    return spent
                # Lately: go once the token is there, after any interactive request sleeping
                # until that refill; else up to the lead before, so no slot is lost to our
                # lateness.
                step = wait if lately else wait - (LEAD_S - EARLY_S)
            step = min(step, budget_s - spent)
            await asyncio.sleep(step)
            spent += step
        return spent
