"""The batch side of a worker process: the loop that looks after running batches, and the
hook that keeps each line's books.

Every worker runs the loop (:meth:`BatchWorker.start`) on its event loop. Each tick it looks
at the active batches and, by status: validates (one worker, under a lease), feeds and sweeps
(:class:`~relay_core.batch.run.feeder.Feeder`; the Lua scripts make any number of workers safe),
expires, closes a cancel, or finalizes (one worker, under a lease). Once a second it also looks
at the other workers' holds and sends again at once the lines of one found dead
(:mod:`relay_core.batch.run.orphans`). Nothing lives only in a
worker's memory: kill every worker and the next one carries on from Redis.

:meth:`BatchWorker.handle` wraps the executor's visit of a batch line: it drops lines of a
cancelled or finished batch (and redeliveries of lines already recorded), and records each
final outcome once per ``custom_id`` (see ``record.lua``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from redis.asyncio import Redis

from relay_core.answers.cache import AnswerCache
from relay_core.batch.client.files import FileStore
from relay_core.batch.client.validate import Scan, scan_file
from relay_core.batch.models import BatchStatus, Endpoint, EndReason
from relay_core.batch.run.allowance import BatchLeft, TargetView, allowances
from relay_core.batch.run.answers import LineCache
from relay_core.batch.run.books import LineBooks, Visit
from relay_core.batch.run.feeder import Feeder, Plan
from relay_core.batch.run.finalize import finalize, write_failed
from relay_core.batch.run.hedge import Hedger
from relay_core.batch.run.intake import validate_batch
from relay_core.batch.run.orphans import Orphans
from relay_core.batch.run.planner import Pace, target_rates
from relay_core.batch.store.record import BatchRecord
from relay_core.batch.store.store import BatchStore
from relay_core.breaker import Breaker
from relay_core.catalogue.models import ProviderConfig
from relay_core.dispatch.capacity import Recent
from relay_core.dispatch.envelope import Candidate, Envelope, queue_name
from relay_core.dispatch.holds import HolderWatch
from relay_core.dispatch.outcome import Outcome
from relay_core.dispatch.priority import Gate, Priority
from relay_core.heartbeat import live_workers
from relay_core.limits import Limiter
from relay_core.policy.models import Policy
from relay_core.routing.embedding import embedding_targets
from relay_core.routing.live import live_limits
from relay_core.routing.targets import Selection, Target, resolve_targets
from relay_core.settings import Settings
from relay_core.storage import open_storage

log = logging.getLogger("relay.batch")

LEASE_S = 60.0
WORKERS_EVERY_S = 2.0
# Interactive requests mark themselves for batch lines to see (relay_core.dispatch.priority) only
# while a batch is about: from the tick that first sees one until this long after the last.
BATCH_QUIET_S = 5.0
# Before a batch's first answer its answer time is unknown, but at least as long as its lines
# have been out: the feeder's window grows with that (up to this), so a batch of slow answers
# ramps at the pooled rate instead of waiting for its first answers with a window of none.
FIRST_ANSWER_MAX_S = 60.0
# The pacing bucket holds what accrues between two of this worker's ticks (twice that), so a
# tick slowed by a busy machine or a slow store loses no lines; beyond this gap, no more.
TICK_GAP_MAX_S = 1.0


def answer_time_s(batch: BatchRecord, now: float) -> float:
    """The answer time that sizes the feeder's window: the batch's measured mean, or before
    its first answer, how long its lines have been out (at most :data:`FIRST_ANSWER_MAX_S`)."""
    if batch.upstream_s > 0 or batch.in_progress_at is None:
        return batch.upstream_s
    return min(FIRST_ANSWER_MAX_S, max(0.0, now - batch.in_progress_at))


@dataclass
class Shared:
    """What a worker process already built, handed to its batch side."""

    settings: Settings
    providers: Sequence[ProviderConfig]  # every enabled provider (not only those served here)
    limiter: Limiter
    breaker: Breaker
    name: str  # the worker's name (lease holder)
    policies: Sequence[Policy] = ()  # the catalogue's routing policies, for batch lines


class BatchWorker:
    def __init__(self, shared: Shared, store: BatchStore, files: FileStore) -> None:
        self.shared = shared
        self.settings = shared.settings
        self.store = store
        self.files = files
        self.feeder = Feeder(
            store,
            files.storage,
            shared.settings.batch_line_timeout_s,
            self.resolve,
            policies=shared.policies,
            mode=shared.settings.mode,
        )
        self._jobs: dict[str, asyncio.Task[object]] = {}
        self._swept: dict[str, float] = {}
        self._fed_at: dict[str, float] = {}  # batch id -> when this worker last fed it
        self._served: tuple[float, set[str] | None] = (0.0, None)
        self._batches_seen_at = float("-inf")  # when a tick last found a batch not yet ended
        self._wake = asyncio.Event()
        self._stopped = False
        self._task: asyncio.Future[None] | None = None
        s = shared.settings
        self.priority = Priority(store.redis, s.key_prefix, s.token_wait_max_s + 1.0)
        self._models = {(p.name, m.id): (p, m) for p in shared.providers for m in p.models}
        queues = [queue_name(s.key_prefix, p.name) for p in shared.providers]
        self.orphans = Orphans(store, shared.name, queues, HolderWatch(s.redeliver_after_s))
        self.books = LineBooks(
            store,
            Gate(self.priority, self.peek),
            line_timeout_s=s.batch_line_timeout_s,
            hold_s=s.token_wait_max_s,
            on_finished=self._wake.set,
            max_attempts=s.batch_max_line_attempts,
            hedger=Hedger(
                store.redis,
                s.key_prefix,
                Recent(),
                s.batch_hedge_after_p99,
                s.batch_hedge_min_s,
            ),
            answers=LineCache(AnswerCache.from_settings(store.redis, s), s)
            if s.cache_enabled
            else None,
        )

    def resolve(self, sel: Selection) -> list[Target]:
        s, providers = self.settings, self.shared.providers
        if sel.embeddings:  # the named model's targets, then its dimension's (same_dimension)
            failover = s.embeddings_failover
            found = embedding_targets(
                providers, sel, dimensions=sel.dimensions, mode=s.mode, failover=failover
            )
            return found[0]
        return resolve_targets(providers, sel, mode=s.mode, meta_model=s.meta_model)

    def scan(self, source: BinaryIO, endpoint: Endpoint | str, default_model: str | None) -> Scan:
        return scan_file(
            source,
            endpoint,
            max_lines=self.settings.batch_max_lines,
            max_line_bytes=self.settings.batch_max_line_bytes,
            check_route=self.resolve,
            default_model=default_model,
        )

    # ---- the loop ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop on the running event loop (the worker's)."""
        self._task = asyncio.ensure_future(self._forever())

    async def _forever(self) -> None:
        while not self._stopped:
            try:
                await self.tick()
            except Exception:  # Redis blinked, say: the next tick tries again
                log.warning("batch tick failed", exc_info=True)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.batch_tick_s):
                    await self._wake.wait()

    @classmethod
    def build(cls, shared: Shared, redis: Redis) -> BatchWorker:
        """The batch side of a worker process, on its Redis pool."""
        s = shared.settings
        files = FileStore(redis, s.key_prefix, open_storage(s))
        return cls(shared, BatchStore(redis, s.key_prefix), files)

    async def stop(self) -> None:
        """Stop the loop and any validation or finalize this worker runs (another worker
        takes them over once their lease expires)."""
        self._stopped = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for job in list(self._jobs.values()):
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job
        await self.books.beats.aclose()

    async def tick(self) -> None:
        batches = []
        for batch_id in await self.store.active():
            batch = await self.store.batch(batch_id)
            if batch is None:
                await self.store.retire(batch_id)
                continue
            batches.append(batch)
        if batches:
            self._batches_seen_at = time.time()
        # The lines of workers found dead (any other status than in_progress leaves them to
        # the sweeper: they are recorded without running, or expire).
        running_ids = [b.id for b in batches if b.status is BatchStatus.in_progress]
        orphaned = await self.orphans.collect(running_ids)
        running = len(running_ids)
        for batch in batches:
            await self.step(batch, max(1, running), orphaned.get(batch.id, []))

    async def step(self, batch: BatchRecord, running: int, orphaned: Sequence[int] = ()) -> None:
        status, batch_id = batch.status, batch.id
        if status is BatchStatus.validating:
            await self._job(batch_id, "validate", self._validate(batch))
        elif status is BatchStatus.in_progress:
            await self._run(batch, running, orphaned)
        elif status is BatchStatus.cancelling:
            await self._cancelling(batch)
        elif status is BatchStatus.finalizing:
            await self._job(batch_id, "finalize", self._finalize(batch))
        else:
            self.feeder.forget(batch_id)
            self._fed_at.pop(batch_id, None)
            await self.store.retire(batch_id)

    async def _job(self, batch_id: str, what: str, coro: Awaitable[object]) -> None:
        """Run ``coro`` in the background if this worker gets the lease for it."""
        running = self._jobs.get(batch_id)
        if running is not None and not running.done():
            _close(coro)
            return
        key = self.store.keys(batch_id).lease(what)
        got = await self.store.redis.set(key, self.shared.name, nx=True, px=int(LEASE_S * 1000))
        if not got:
            _close(coro)
            return
        task: asyncio.Task[object] = asyncio.ensure_future(coro)
        self._jobs[batch_id] = task
        task.add_done_callback(lambda t: self._job_done(batch_id, what, t))

    def _job_done(self, batch_id: str, what: str, task: asyncio.Task[object]) -> None:
        if self._jobs.get(batch_id) is task:
            del self._jobs[batch_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("batch %s: %s failed", batch_id, what, exc_info=task.exception())
        self._wake.set()

    async def _validate(self, batch: BatchRecord) -> None:
        try:
            status = await validate_batch(self.store, self.files, batch, self.scan)
        finally:  # done (or failed): a cancel need not wait for the lease to lapse
            await self.store.redis.delete(self.store.keys(batch.id).lease("validate"))
        log.info("batch %s: validated, now %s", batch.id, status)

    async def _finalize(self, batch: BatchRecord) -> None:
        key = self.store.keys(batch.id).lease("finalize")

        async def keep() -> None:
            await self.store.redis.pexpire(key, int(LEASE_S * 1000))

        try:
            status = await finalize(self.store, self.files, batch, keep)
        except OSError as exc:  # storage refused the files: say so, and back off
            delay = await write_failed(self.store, batch.id, exc, self.settings)
            # The lease, kept by this worker, is the back-off: no worker finalizes the batch
            # before it lapses.
            await self.store.redis.set(key, self.shared.name, xx=True, px=max(1, int(delay * 1000)))
            log.error(
                "batch %s: its output files could not be written (%s); trying again in %.1f s",
                batch.id,
                exc,
                delay,
            )
            return
        self.feeder.forget(batch.id)
        log.info("batch %s: %s", batch.id, status)

    async def _run(self, batch: BatchRecord, running: int, orphaned: Sequence[int]) -> None:
        batch_id, now = batch.id, time.time()
        if now >= batch.expires_at_exact:
            await self._end(batch, BatchStatus.in_progress, EndReason.expired)
            return
        if batch.done >= batch.total:
            await self._end(batch, BatchStatus.in_progress, EndReason.completed)
            return
        plan = await self._plan(batch)
        s = self.settings
        gap = now - self._fed_at.get(batch_id, now)
        self._fed_at[batch_id] = now
        pace = Pace.of(
            plan.pooled * s.batch_pace,
            share=1 / running,
            window_s=s.batch_window_s,
            tick_s=min(TICK_GAP_MAX_S, max(s.batch_tick_s, gap)),
            upstream_s=answer_time_s(batch, now),
            # Headroom (a pace under 1) leaves the limiter's slots free: no overfeed then.
            feedable_rps=plan.feedable * s.batch_pace if s.batch_pace >= 1 else None,
        )
        if orphaned:
            resent = await self.feeder.resend_orphans(batch, plan, orphaned)
            log.warning("batch %s: re-sent %d lines held by a dead worker", batch_id, resent)
        await self.feeder.feed(batch, plan, pace)
        if now - self._swept.get(batch_id, 0.0) >= max(1.0, s.batch_tick_s * 10):
            self._swept[batch_id] = now
            resent = await self.feeder.resend_stale(batch, plan)
            if resent:
                log.warning("batch %s: re-sent %d lines whose tasks vanished", batch_id, resent)

    async def _plan(self, batch: BatchRecord) -> Plan:
        """The batch's targets, which are healthy, and the lines/s each may take under every
        one of its limits (``allowance``)."""
        routes = await self.feeder.routes(batch.id)
        union = list({t.key: t for r in routes for t in r}.values())
        s, now = self.shared, time.time()
        await s.limiter.costs.sync([(t.provider.name, t.model.id) for t in union], now)
        read = await live_limits(union, s.limiter, s.breaker, now)
        live = {t.key: state for t, (state, _, _) in zip(union, read, strict=True)}
        views = {
            t.key: TargetView(plan, cap, s.limiter.costs.get(t.provider.name, t.model.id))
            for t, (_, plan, cap) in zip(union, read, strict=True)
        }
        left = BatchLeft(batch.total - batch.done, batch.expires_at_exact, batch.upstream_s)
        allowed = allowances(union, target_rates(union), views, left, now)
        return self.feeder.plan(routes, live, await self._served_providers(), allowed)

    async def _served_providers(self) -> set[str] | None:
        at, served = self._served
        if time.time() - at >= WORKERS_EVERY_S:
            beats = await live_workers(self.store.redis, self.store.prefix)
            served = {p for w in beats for p in w.providers} or None
            self._served = (time.time(), served)
        return served

    async def _end(self, batch: BatchRecord, from_: BatchStatus, reason: EndReason) -> None:
        moved = await self.store.transition(
            batch.id,
            BatchStatus.finalizing,
            [from_],
            finalizing_at=int(time.time()),
            end_reason=reason.value,
        )
        if moved:
            fresh = await self.store.batch(batch.id)
            if fresh is not None:
                await self._job(batch.id, "finalize", self._finalize(fresh))

    async def _cancelling(self, batch: BatchRecord) -> None:
        """Close a cancel once no line is mid-call (parked and lost lines do not count)."""
        batch_id, now = batch.id, time.time()
        keys = self.store.keys(batch_id)
        if not batch.closing:
            if await self.store.redis.exists(keys.lease("validate")):
                return
            timeout = self.settings.batch_line_timeout_s
            busy = await self.store.redis.zcount(keys.inflight, f"({now}", now + timeout)
            if busy:
                return
            await self.store.transition(
                batch_id,
                BatchStatus.cancelling,
                [BatchStatus.cancelling],
                closing="1",
                end_reason=EndReason.cancelled.value,
            )
            batch = await self.store.batch(batch_id) or batch
        await self._job(batch_id, "finalize", self._finalize(batch))

    async def handle(self, env: Envelope, visit: Visit) -> Outcome:
        """Visit a batch line, keeping its books (see :mod:`relay_core.batch.run.books`)."""
        return await self.books.handle(env, visit)

    async def peek(self, candidate: Candidate) -> float:
        """Seconds until ``candidate``'s limits could pass one line (0: now or unknown): a
        request, and the tokens a line was learned to cost there, so that a line waiting for
        a token bucket sleeps until it refills rather than trying at every token."""
        found = self._models.get((candidate.provider, candidate.model))
        if found is None:
            return 0.0
        now, limiter = time.time(), self.shared.limiter
        plan = limiter.plan(found[0], found[1], now)
        line = limiter.costs.get(candidate.provider, candidate.model).line_tokens
        return (await limiter.peek(plan, now, math.ceil(line or 1))).wait_s

    @property
    def batches_about(self) -> bool:
        """Whether a batch was active lately (as of this worker's ticks)."""
        return time.time() - self._batches_seen_at < BATCH_QUIET_S

    async def interactive(self, env: Envelope, visit: Visit) -> Outcome:
        """Visit an interactive request; batch lines stand aside while it waits for a token.

        With no batch about, there is nobody to stand aside: the visit goes without the mark
        (two round trips to Redis fewer on every request)."""
        if not self.batches_about:
            return await visit(env)
        async with self.priority.interactive(env.id, env.current.provider):
            return await visit(env)


def _close(coro: Awaitable[object]) -> None:
    close = getattr(coro, "close", None)
    if close is not None:
        close()
