"""A worker process's asyncio side: one event loop thread holding the pooled clients.

Celery's threads pool runs tasks on many threads; provider clients, Redis and the limiter are
async. Each process therefore runs one event loop in a background thread, builds the shared
httpx client, Redis pool, providers, limiter and breakers there once, and task threads submit
coroutines to it. One pooled client per process, never one per task.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Coroutine, Mapping
from typing import Any, TypeVar

import httpx
from opentelemetry.trace import Tracer
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from relay_core.batch.run.worker import BatchWorker, Shared
from relay_core.breaker import Breaker, fingerprint
from relay_core.breaker import RedisBackend as BreakerRedis
from relay_core.catalogue.loader import enabled_providers, resolve_catalogue
from relay_core.dispatch.capacity import (
    SlotTimes,
    provider_caps,
    provider_rates,
    slots_needed,
)
from relay_core.dispatch.envelope import Envelope, Reply
from relay_core.dispatch.executor import Executor
from relay_core.dispatch.holds import (
    HOLD_WRITE_SOON_S,
    HeldSet,
    HoldRecord,
    drop_holds,
    write_holds,
)
from relay_core.dispatch.outcome import Done, Forward, Outcome
from relay_core.dispatch.replies import publish_reply
from relay_core.dispatch.state import WorkerState
from relay_core.dispatch.streaming import RedisStreams
from relay_core.events import EventSink
from relay_core.forecast.spend import SpendSink, SpendStore
from relay_core.heartbeat import HEARTBEAT_EVERY_S, WorkerBeat, beat, forget, live_workers
from relay_core.limits import Limiter, RedisBackend
from relay_core.limits.adaptive import RedisAdaptive
from relay_core.limits.costs import RedisCosts
from relay_core.limits.learned import RedisLearned
from relay_core.metrics import InFlight, MetricsSink, RelayMetrics, publish_load
from relay_core.metrics.load import forget_load
from relay_core.metrics.recent import RecentSink
from relay_core.providers.registry import build_provider, make_http_client
from relay_core.redis_pool import redis_pool
from relay_core.routing.outcomes import OutcomeCache, OutcomeSink, OutcomeStore
from relay_core.settings import Settings
from relay_core.storage.marker import same_as_api
from relay_core.tracing import make_tracer
from relay_core.usage import UsageSink
from relay_core.workflow.feed import RunLines
from relay_core.workflow.lines import BatchLines
from relay_core.workflow.route import StepRouter
from relay_core.workflow.runner import WorkflowRunner
from relay_core.workflow.steps import LineSteps
from relay_core.workflow.store import RunStore

T = TypeVar("T")
# A closed breaker's successes are written together this often (relay_core.breaker.breaker).
TALLY_S = 0.25
# How often the slots' sizing re-reads which live workers serve which provider.
WORKERS_EVERY_S = 2.0
# Shutdown: each step of close() at most this long, and the whole at most CLOSE_TOTAL_S.
CLOSE_STEP_S = 5.0
CLOSE_TOTAL_S = 30.0
log = logging.getLogger("relay.worker")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (``uvicorn[standard]`` brings it), else asyncio's own.

    The loop thread carries every Redis and upstream call of the process; uvloop's C event
    loop costs it a little less per call than the selector loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows, or a minimal install
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Runtime:
    """Owns the loop thread and everything built in it."""

    def __init__(
        self, settings: Settings, only: set[str] | None = None, tracer: Tracer | None = None
    ) -> None:
        self.settings = settings
        self.only = only
        self.tracer = tracer  # None: the settings' (OTLP when configured, else none)
        self.loop = new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="relay-loop", daemon=True
        )
        self._thread.start()
        self.http: httpx.AsyncClient
        self.redis: Redis
        self.executor: Executor
        self.usage: UsageSink
        self.outcomes: OutcomeSink
        self.spend: SpendSink
        self.recent: RecentSink  # the last minutes per provider, for the console
        self.served: list[str] = []
        self.name = f"{socket.gethostname()}.{os.getpid()}"
        self.in_flight = 0
        self.load = InFlight()  # in flight per provider, published beside the heartbeat
        # How long visits hold their slot, per provider (they size the worker's slots).
        self.slot_times = SlotTimes()
        self._rates: dict[str, float] = {}
        self._caps: dict[str, int | None] = {}
        self._serving: tuple[float, dict[str, int]] = (float("-inf"), {})
        self.metrics_registry = CollectorRegistry()
        self.stopping = False  # set by stop(): new envelopes go straight back to their queue
        self._visits: set[asyncio.Task[Any]] = set()
        self._beat: asyncio.Task[None] | None = None
        # The messages this process holds, written for the API to see (relay_core.dispatch.holds)
        self.held = HeldSet(self._held_changed)
        self._hold_news = asyncio.Event()
        self._hold_flagged = False
        self._holds: asyncio.Task[None] | None = None
        self.batches: BatchWorker
        self.workflows: WorkflowRunner  # moves a run on after each of its steps' answers
        self.steps: LineSteps  # the books of a workflow batch line's steps
        self.run(self._build())

    async def _build(self) -> None:
        catalogue, _source = resolve_catalogue(self.settings)
        enabled, _disabled = enabled_providers(catalogue, self.settings.mode)
        chosen = [p for p in enabled if self.only is None or p.name in self.only]
        self.http = make_http_client()
        self.redis = redis_pool(self.settings.redis_url, self.settings.worker_concurrency * 2 + 8)
        providers = {p.name: build_provider(p, self.http, p.api_key()) for p in chosen}
        fingerprints = {p.name: fingerprint(p.api_key() or "") for p in chosen}
        state = WorkerState(
            self.settings,
            providers,
            Limiter.from_settings(
                self.settings,
                RedisBackend(self.redis),
                RedisLearned(self.redis),
                RedisCosts(self.redis),
                RedisAdaptive(self.redis),
            ),
            Breaker.from_settings(self.settings, BreakerRedis(self.redis), tally_s=TALLY_S),
            fingerprints,
        )
        metrics = MetricsSink(RelayMetrics.create(self.metrics_registry))
        self.usage = UsageSink(
            self.redis, self.settings.key_prefix, self.settings.usage_retention_days
        )
        self.recent = RecentSink(self.redis, self.settings.key_prefix)
        streams = RedisStreams(self.redis, self.settings.key_prefix)
        # What each answer was worth, for the routers (docs/routing.md).
        store = OutcomeStore(self.redis, self.settings.key_prefix)
        self.outcomes = OutcomeSink(store, TALLY_S)
        # Each provider's, model's and key's pace, for the forecasts (GET /v1/usage).
        self.spend = SpendSink(
            SpendStore(self.redis, self.settings.key_prefix, self.settings.forecast_tau_s)
        )
        sinks: list[EventSink] = [metrics, self.usage, self.outcomes, self.recent, self.spend]
        # Hedges wait for their primary's learned answer time, read as the routers read it.
        latencies = OutcomeCache(store, self.settings.routing_state_ttl_s)
        self.executor = Executor(
            state,
            sinks=sinks,
            streams=streams,
            latencies=latencies,
            tracer=self.tracer or make_tracer(self.settings, "relay-worker"),
        )
        self.served = sorted(providers)
        self._rates, self._caps = provider_rates(chosen), provider_caps(chosen)
        self._beat = asyncio.create_task(self._heartbeat(), name="relay-heartbeat")
        self._holds = asyncio.create_task(self._write_holds(), name="relay-holds")
        # Batches: every worker feeds, sweeps and finalizes them (relay_core/batch/run/worker.py).
        shared = Shared(
            self.settings, enabled, state.limiter, state.breaker, self.name, catalogue.policies
        )
        self.batches = BatchWorker.build(shared, self.redis)
        router = StepRouter(
            self.settings, enabled, state.limiter, state.breaker, catalogue.policies
        )
        runs = RunStore(self.redis, self.settings.key_prefix, self.settings.workflow_run_ttl_s)
        self.workflows = WorkflowRunner(runs, router, BatchLines(self.batches.store))
        workflows = {w.name: w for w in catalogue.workflows}
        self.batches.feeder.runs = RunLines(self.workflows, workflows)
        self.steps = LineSteps(self.batches.books, self.workflows)
        await self._start_batches()

    async def _start_batches(self) -> None:
        """Look after batches, unless this worker's storage is not the API's."""
        storage = self.batches.files.storage
        try:
            same = await same_as_api(self.redis, self.settings.key_prefix, storage)
        except OSError:  # the store is down now: batches wait for it, chat does not
            log.warning("could not check this worker's file storage", exc_info=True)
            same = None
        if same is False:
            log.error(
                "this worker's file storage (%s) is not the API's: it will not feed, validate "
                "or finalize batches (set RELAY_STORAGE_URL, or RELAY_STORAGE_DIR to the "
                "API's folder; docs/operations.md)",
                storage.describe(),
            )
            return
        self.batches.start()

    async def _heartbeat(self) -> None:
        while True:
            info = WorkerBeat(
                name=self.name,
                host=socket.gethostname(),
                pid=os.getpid(),
                providers=self.served,
                in_flight=self.in_flight,
                at=time.time(),
            )
            try:
                await beat(self.redis, self.settings.key_prefix, info)
                await publish_load(
                    self.redis, self.settings.key_prefix, self.name, self.load.snapshot()
                )
            except Exception:  # Redis blinked: the next beat will do
                log.warning("heartbeat failed", exc_info=True)
            await asyncio.sleep(HEARTBEAT_EVERY_S)

    def _held_changed(self) -> None:
        """A message arrived (on Celery's consumer thread): write the holds soon."""
        if not self._hold_flagged:  # one wake-up of the loop per write, not per message
            self._hold_flagged = True
            self.loop.call_soon_threadsafe(self._hold_news.set)

    async def _write_holds(self) -> None:
        """Write what this process holds every third of ``redeliver_after_s``, and soon after
        a message arrives; ``seq`` moves at every write (it is the sign of life)."""
        every_s = self.settings.redeliver_after_s / 3
        seq = 0
        while True:
            self._hold_flagged = False
            self._hold_news.clear()
            seq += 1
            record = HoldRecord(seq=seq, ids=self.held.ids())
            try:
                await write_holds(self.redis, self.settings.key_prefix, self.name, record)
            except Exception:  # Redis blinked: the next write will do
                log.warning("writing the held messages failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every_s):
                    await self._hold_news.wait()
            await asyncio.sleep(HOLD_WRITE_SOON_S)  # coalesce the arrivals of a burst

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop thread and wait for it (called from task threads)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def handle(self, env: Envelope, trace: Mapping[str, object] | None = None) -> Outcome:
        """Visit the envelope; publish the reply when the outcome is final.

        ``trace``: the task's headers, carrying the API's span (relay_core/tracing.py).
        Once :meth:`stop` began, an envelope is handed back to its queue (``Forward``) instead
        of being started, and so is a visit that :meth:`stop` cut short.
        """
        visit = asyncio.current_task()
        if self.stopping or visit is None:
            return Forward(env)
        self._visits.add(visit)
        self.in_flight += 1
        try:
            provider = env.current.provider
            with self.load.track(provider), self.slot_times.track(provider):

                def visit_traced(e: Envelope) -> Coroutine[Any, Any, Outcome]:
                    return self.executor.visit(e, trace)

                outcome: Outcome | None
                if env.batch_id is not None and env.workflow is not None:
                    # A workflow batch line's step: kept in a line's books (None: dropped).
                    outcome = await self.steps.visit(env, visit_traced)
                elif env.batch_id is not None:  # a batch line keeps its own books
                    outcome = await self.batches.handle(env, visit_traced)
                else:  # batch lines stand aside while it waits for a token
                    outcome = await self.batches.interactive(env, visit_traced)
        except asyncio.CancelledError:
            if not self.stopping:
                raise
            visit.uncancel()
            return Forward(env)
        finally:
            self.in_flight -= 1
            self._visits.discard(visit)
        if outcome is None:
            return Done(Reply(id=env.id, ok=False))
        if env.batch_id is not None and env.workflow is not None:
            return await self.steps.answered(env, outcome)  # the run moves on
        if isinstance(outcome, Done) and env.workflow is not None:
            # An interactive run's step's answer: the run moves on; the task sends the next.
            then = await self.workflows.answered(env, outcome.reply)
            return outcome if then is None else Forward(then)
        if isinstance(outcome, Done) and env.reply_to is not None:
            await publish_reply(self.redis, self.settings.key_prefix, env.reply_to, outcome.reply)
        return outcome

    async def slots_needed(self) -> float:
        """The slots this worker needs now (:func:`relay_core.dispatch.capacity.slots_needed`):
        its share of the rate of each provider it serves times the measured slot time."""
        at, serving = self._serving
        if time.monotonic() - at >= WORKERS_EVERY_S:
            beats = await live_workers(self.redis, self.settings.key_prefix)
            serving = {}
            for w in beats:
                for p in w.providers:
                    serving[p] = serving.get(p, 0) + 1
            self._serving = (time.monotonic(), serving)
        return slots_needed(self._rates, self.slot_times, serving, self._caps)

    async def stop(self, grace_s: float) -> int:
        """Take no new work; give visits in flight ``grace_s`` to finish, then cut the rest
        short so they go back to their queues. Returns how many were handed back."""
        self.stopping = True
        pending = {t for t in self._visits if not t.done()}
        log.info("stopping: %d call(s) in flight get %.0f s to finish", len(pending), grace_s)
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=grace_s)
        for visit in pending:
            visit.cancel()
        if pending:
            log.warning("handing %d unfinished call(s) back to their queues", len(pending))
        return len(pending)

    def begin_stop(self, grace_s: float) -> None:
        """Start :meth:`stop` from any thread (a signal handler) without waiting for it."""
        asyncio.run_coroutine_threadsafe(self.stop(grace_s), self.loop)

    def close(self) -> None:
        """Write what is left, say goodbye in Redis and stop the loop thread.

        Each step is bounded by ``CLOSE_STEP_S`` and the whole by ``CLOSE_TOTAL_S``: a Redis
        that stopped answering or an upstream that never closes costs a warning, never a
        process that cannot exit (its heartbeat then expires and its holds are re-sent)."""

        async def step(what: str, aw: Awaitable[object]) -> None:
            try:
                async with asyncio.timeout(CLOSE_STEP_S):
                    await aw
            except TimeoutError:
                log.warning("closing: %s took over %.0f s, left behind", what, CLOSE_STEP_S)
            except Exception:
                log.warning("closing: %s failed", what, exc_info=True)

        async def _close() -> None:
            await step("the bookkeeping in flight", self.executor.drain())
            # Write the tallies; with Redis gone at shutdown their counts are lost.
            tallies = (self.usage, self.recent, self.executor.state.breaker, self.outcomes)
            for tally in (*tallies, self.spend):
                await step(f"writing {type(tally).__name__}", tally.aclose())
            await step("the batch loops", self.batches.stop())
            for task in (self._beat, self._holds):
                if task is not None:
                    task.cancel()
                    await step("the heartbeat", asyncio.gather(task, return_exceptions=True))
            await step("the farewell", self._farewell())
            await step("the upstream client", self.http.aclose())
            await step("the Redis pool", self.redis.aclose(close_connection_pool=True))

        try:
            future = asyncio.run_coroutine_threadsafe(_close(), self.loop)
            try:
                future.result(timeout=CLOSE_TOTAL_S)
            except concurrent.futures.TimeoutError:
                future.cancel()
                log.warning("closing took over %.0f s: the loop is stopped anyway", CLOSE_TOTAL_S)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self.loop.close()

    async def _farewell(self) -> None:
        """Take this worker's heartbeat, holds and load out of Redis."""
        await forget(self.redis, self.settings.key_prefix, self.name)
        await drop_holds(self.redis, self.settings.key_prefix, [self.name])
        await forget_load(self.redis, self.settings.key_prefix, self.name)
