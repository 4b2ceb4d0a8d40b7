"""The books of each batch line, kept around the executor's visit in a worker.

Before a visit: a line whose ``custom_id`` is already recorded (a redelivery, or a late
duplicate the sweeper re-sent) is dropped; so is a line of a batch that is finalizing or final,
or whose window has ended (the expiry writes it as ``batch_expired``); a line of a cancelling
batch is recorded without being run, as ``batch_cancelled`` or, if it ran before, with its last
failure. During it: the line waits for its token here, not inside the limiter, and stands
aside while an interactive request waits for the same provider
(:mod:`relay_core.dispatch.priority`); and its sign of life in ``:inflight`` is renewed as the
visit starts and every quarter of ``RELAY_BATCH_LINE_TIMEOUT_S`` while it runs
(:class:`Beats`), so the sweeper never re-sends a line whose visit is only slow. After it: a
final outcome is recorded once per ``custom_id`` (``record.lua``); a line handed back to a
queue renews its sign of life, so the sweeper leaves it alone, and a line handed on to another
provider counts in that provider's share of the window from then on; a line every candidate refuses
for good (the provider does not have the model, refuses the key or the request, or its
adapter cannot send a field of it) fails now instead of backing off until the window ends; and
a failed upstream attempt (a 5xx, a timeout, an answer that is not one; not a 429) is counted
per line in Redis, so that after ``RELAY_BATCH_MAX_LINE_ATTEMPTS`` of them, however many
redeliveries and re-sends they took, the line fails with its last upstream answer. That last
failure is kept too: a line that ran but never finished (cancelled, expired) shows it in the
error file rather than a "not executed".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from redis.exceptions import RedisError

from relay_core.batch.models import BatchStatus
from relay_core.batch.run.answers import LineCache
from relay_core.batch.run.feeder import line_index
from relay_core.batch.run.hedge import Hedger, is_copy
from relay_core.batch.run.outputs import dropped, failure, relay_part, success
from relay_core.batch.store.store import BatchStore, Recorded
from relay_core.dispatch.envelope import Envelope, Reply
from relay_core.dispatch.outcome import Done, Forward, Outcome
from relay_core.dispatch.priority import Gate
from relay_core.errors import (
    ClientError,
    ErrorInfo,
    GatewayTimeout,
    InvalidRequest,
    RateLimited,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamModelNotFound,
    UpstreamQuotaExhausted,
)

Visit = Callable[[Envelope], Awaitable[Outcome]]
log = logging.getLogger("relay.batch")

# Failures that another try of the same candidate will not fix within a batch's window.
FOR_GOOD = (UpstreamModelNotFound, UpstreamAuthError, UpstreamBadRequest, InvalidRequest)
# The provider's pacing, not a failure of the line: never counted against its attempts.
PACING = (RateLimited, UpstreamQuotaExhausted)
_IN_PROGRESS = BatchStatus.in_progress.value.encode()
_CANCELLING = BatchStatus.cancelling.value.encode()


@dataclass(frozen=True, slots=True)
class Raced:
    """A visit's outcome (None: dropped, the other of its hedged pair was recorded first),
    and whether the line has a hedged twin (its second answer is then counted)."""

    outcome: Outcome | None
    paired: bool = False


@dataclass
class CallClock:
    """When a visit's latest try went to the executor (its wait for a token is over)."""

    started: float | None = None

    def overdue(self, after_s: float) -> bool:
        return self.started is not None and time.monotonic() - self.started >= after_s


def _with_deadline(outcome: Outcome, env: Envelope) -> Outcome:
    """A try's outcome with the line's own deadline back on a forwarded envelope."""
    if isinstance(outcome, Forward):
        restored = outcome.envelope.model_copy(update={"deadline": env.deadline})
        return Forward(restored, outcome.delay_s)
    return outcome


def _no_token(env: Envelope, outcome: Outcome) -> float | None:
    """How long to wait before trying again when the try sent nothing (no token now, or a
    candidate skipped); None when the outcome stands (an answer, or a failure upstream)."""
    if isinstance(outcome, Forward):
        return outcome.delay_s if outcome.envelope.attempts == env.attempts else None
    error = outcome.reply.error
    if error is not None and error.is_a(GatewayTimeout) and time.time() < env.deadline:
        return 0.0  # only the try's own short deadline passed
    return None


def _tokens(reply: Reply) -> tuple[int, int]:
    """A successful line's (prompt, completion) tokens: a completion's, or an embedding's."""
    if reply.embedding is not None:
        return reply.embedding.usage.prompt_tokens, 0
    usage = reply.completion.usage if reply.completion is not None else None
    return (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)


def refused_for_good(env: Envelope) -> ErrorInfo | None:
    """The last failure, when every candidate's latest failure is one that will not heal."""
    latest: dict[tuple[str | None, str | None], ErrorInfo] = {}
    for info in env.failures:
        latest[(info.provider, info.model)] = info
    found = [latest.get((c.provider, c.model)) for c in env.candidates]
    if found and all(f is not None and f.is_a(*FOR_GOOD) for f in found):
        return env.failures[-1]
    return None


class Beats:
    """The sign of life of the lines this worker is visiting: while any visit runs, one loop
    renews them all every quarter of the line timeout, in one round trip to Redis."""

    def __init__(self, store: BatchStore, line_timeout_s: float) -> None:
        self.store = store
        self.line_timeout_s = line_timeout_s
        self.every_s = line_timeout_s / 4
        self._visiting: Counter[tuple[str, int]] = Counter()
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def visiting(self, batch_id: str, index: int) -> Iterator[None]:
        line = (batch_id, index)
        self._visiting[line] += 1
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._forever())
        try:
            yield
        finally:
            self._visiting[line] -= 1
            if self._visiting[line] <= 0:
                del self._visiting[line]

    async def _forever(self) -> None:
        while self._visiting:
            await asyncio.sleep(self.every_s)
            if not self._visiting:
                return
            try:
                await self.store.renew(list(self._visiting), time.time() + self.line_timeout_s)
            except RedisError:  # Redis blinked: the next beat comes well before the timeout
                log.warning("renewing the batch lines being visited failed", exc_info=True)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class LineBooks:
    def __init__(
        self,
        store: BatchStore,
        gate: Gate,
        *,
        line_timeout_s: float,
        hold_s: float,
        on_finished: Callable[[], None],
        max_attempts: int = 8,
        hedger: Hedger | None = None,
        answers: LineCache | None = None,
    ) -> None:
        self.store = store
        self.gate = gate
        self.line_timeout_s = line_timeout_s
        self.hold_s = hold_s  # longest a line waits for a token here before going back
        self.on_finished = on_finished
        self.max_attempts = max_attempts  # failed upstream attempts before the line fails
        self.beats = Beats(store, line_timeout_s)
        self.hedger = hedger  # sends a far-overdue line again (relay_core.batch.run.hedge)
        self.answers = answers  # the exact cache (docs/answers.md), None when off

    async def handle(self, env: Envelope, visit: Visit) -> Outcome:
        batch_id, custom_id = env.batch_id or "", env.custom_id or ""
        index = line_index(env.id)
        keys = self.store.keys(batch_id)
        async with self.store.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.meta, ["status", "closing"])
            pipe.hexists(keys.results, custom_id)
            pipe.hget(keys.last, str(index))
            # Its visit starts: a sign of life (if it is still in flight), in the same trip.
            pipe.zadd(keys.inflight, {str(index): time.time() + self.line_timeout_s}, xx=True)
            (status, closing), seen, last, _ = await pipe.execute()
        skip = Done(Reply(id=env.id, ok=False))
        if seen or closing:
            return skip
        if status == _CANCELLING:  # a line that ran before keeps its last failure
            await self._record(env, last or dropped(custom_id, "batch_cancelled"), ok=False)
            return skip
        if status != _IN_PROGRESS or time.time() >= env.deadline:
            return skip
        cached = await self.answers.lookup(env) if self.answers is not None else None
        if cached is not None:  # answered from the cache: no upstream call
            return await self._after(env, Done(cached))
        with self.beats.visiting(batch_id, index):
            try:
                raced = await self._hedged(env, visit)
            except ClientError as exc:  # the request itself is refused (e.g. a parameter)
                raced = Raced(Done(Reply(id=env.id, ok=False, error=exc.to_info())))
        if raced.outcome is None:  # the other of its pair was recorded first
            await self._discarded(env)
            return skip
        outcome = raced.outcome
        if self.answers is not None and isinstance(outcome, Done):
            await self.answers.store(env, outcome.reply)
        return await self._after(env, outcome, paired=raced.paired)

    async def visit_step(self, env: Envelope, visit: Visit) -> Outcome:
        """Visit the call of a step of a workflow batch line's run (relay_core/workflow/
        steps.py) as a line's call is visited: at its turn at the gate, standing aside for
        interactive requests, its sign of life renewed while it runs and when it goes back
        to a queue; a call every candidate refuses for good fails now. Nothing is recorded
        here: the answer is the run's, and the run's end records the line."""
        batch_id, index = env.batch_id or "", line_index(env.id)
        with self.beats.visiting(batch_id, index):
            try:
                outcome = await self._visit(env, visit)
            except ClientError as exc:  # the request itself is refused (e.g. a parameter)
                return Done(Reply(id=env.id, ok=False, error=exc.to_info()))
        if not isinstance(outcome, Forward):
            return outcome
        given_up = refused_for_good(outcome.envelope)
        if given_up is not None:
            return Done(Reply(id=env.id, ok=False, error=given_up))
        due = time.time() + outcome.delay_s + self.line_timeout_s
        await self.store.touch(batch_id, index, due)
        await self._moved(env, outcome.envelope)
        return outcome

    async def _hedged(self, env: Envelope, visit: Visit) -> Raced:
        """The visit, with a copy of the line sent to another candidate once it is far
        overdue (:mod:`relay_core.batch.run.hedge`); a visit still out when the copy's answer
        is recorded is cancelled (``outcome`` None)."""
        after = self.hedger.after_s(env) if self.hedger is not None else None
        if after is None or self.hedger is None:
            return Raced(await self._timed(env, visit, CallClock()), paired=is_copy(env.id))
        clock = CallClock()
        task = asyncio.ensure_future(self._timed(env, visit, clock))
        try:
            while not clock.overdue(after):  # the call's own time: not its wait for a token
                done, _ = await asyncio.wait({task}, timeout=max(0.05, after / 4))
                if done:
                    return Raced(task.result())
            try:
                await self.hedger.send(env)
            except RedisError:  # Redis blinked: the first call carries on alone
                log.warning("hedging batch line %s failed", env.id, exc_info=True)
                return Raced(await task)
            results = self.store.keys(env.batch_id or "").results
            while True:
                done, _ = await asyncio.wait({task}, timeout=min(1.0, after))
                if done:
                    return Raced(task.result(), paired=True)
                if await self.store.redis.hexists(results, env.custom_id or ""):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    return Raced(None, paired=True)
        finally:
            if not task.done():
                task.cancel()

    async def _timed(self, env: Envelope, visit: Visit, clock: CallClock) -> Outcome:
        """The visit; an answered one's call time (from its last try, after its wait for a
        token) goes to the hedger's samples for its provider."""
        provider = env.current.provider
        outcome = await self._visit(env, visit, clock)
        if self.hedger is not None and isinstance(outcome, Done) and outcome.reply.ok:
            self.hedger.answers.add(provider, time.monotonic() - (clock.started or 0.0))
        return outcome

    async def _discarded(self, env: Envelope) -> None:
        if self.hedger is not None:
            await self.hedger.discarded(env.batch_id or "")

    async def _visit(self, env: Envelope, visit: Visit, clock: CallClock | None = None) -> Outcome:
        """Visit the line when it is its turn (:class:`~relay_core.dispatch.priority.Gate`):
        it waits for its token here rather than inside the limiter, standing aside while an
        interactive request waits for the same provider.

        Each try lets the executor wait in place for at most the gate's lead (a reserved slot
        up to that far ahead, :meth:`~relay_core.dispatch.priority.Gate.lead_s`); a try that found
        no token after all (nothing was sent) says when its limits will pass (the buckets'
        computed refill time): the line sleeps until then (one timer, no polling) and tries
        again, for up to ``hold_s`` in all. A wait beyond that goes back to its queue once,
        delayed by the whole wait, rather than being tried at every token.
        """
        held = 0.0
        while True:
            held += await self.gate.turn(env.current, self.hold_s - held)
            lead = self.gate.lead_s(env.current.provider)
            short = env.model_copy(update={"deadline": min(env.deadline, time.time() + lead)})
            if clock is not None:
                clock.started = time.monotonic()
            outcome = _with_deadline(await visit(short), env)
            again = _no_token(env, outcome)
            if again is None:
                return outcome
            if clock is not None:  # nothing was sent: back to waiting for a token
                clock.started = None
            if isinstance(outcome, Forward):  # maybe now pointing at another candidate
                await self._moved(env, outcome.envelope)
                env = outcome.envelope
            if held + again >= self.hold_s:
                return Forward(env, again)
            await asyncio.sleep(again)
            held += again + 0.001  # every try counts, so the loop ends

    async def _after(self, env: Envelope, outcome: Outcome, *, paired: bool = False) -> Outcome:
        """Record a final outcome (or renew a forwarded line's sign of life); the outcome the
        task acts on. An answer of a hedged pair (``paired``) that comes second is counted as
        discarded."""
        if isinstance(outcome, Forward):
            given_up = refused_for_good(outcome.envelope) or await self._tried(
                env, outcome.envelope
            )
            if given_up is None:
                due = time.time() + outcome.delay_s + self.line_timeout_s
                await self.store.touch(env.batch_id or "", line_index(env.id), due)
                await self._moved(env, outcome.envelope)
                return outcome
            outcome = Done(Reply(id=env.id, ok=False, error=given_up))
        reply = outcome.reply
        custom_id = env.custom_id or ""
        if reply.ok:
            tokens = _tokens(reply)
            if reply.cached:
                tokens = (0, 0)  # no provider token was spent on it
            recorded = await self._record(
                env,
                success(custom_id, env.id, reply),
                ok=True,
                tokens=tokens,
                upstream_s=reply.upstream_s,
                provider=reply.provider,
            )
            if paired and recorded.outcome != 1:
                await self._discarded(env)
        elif reply.error is not None and time.time() < env.deadline:
            line = failure(custom_id, env.id, reply.error, relay_part(reply))
            await self._record(env, line, ok=False, provider=reply.error.provider)
        # else: out of time; the expiry writes it as batch_expired
        return outcome

    async def _moved(self, env: Envelope, forwarded: Envelope) -> None:
        """A line handed on to another provider counts in that one's share of the window."""
        provider = forwarded.current.provider
        if provider != env.current.provider:
            await self.store.assign(env.batch_id or "", [(line_index(env.id), provider)])

    async def _tried(self, env: Envelope, forwarded: Envelope) -> ErrorInfo | None:
        """Count the failed upstream attempt this visit made, if it made one (a 429 or a
        spent quota is the provider's pacing, not counted); the failure to end the line with
        once it has failed ``max_attempts`` times, else None."""
        if forwarded.attempts <= env.attempts or not forwarded.failures:
            return None
        if forwarded.repair is not None and len(forwarded.checks) > len(env.checks):
            return None  # a re-ask after an invalid answer (docs/answers.md): not a failure
        latest = forwarded.failures[-1]
        if not latest.is_a(UpstreamError) or latest.is_a(*PACING):
            return None
        line = failure(env.custom_id or "", env.id, latest)
        index = line_index(env.id)
        count = await self.store.tried(env.batch_id or "", index, line, until=env.deadline)
        return latest if count >= self.max_attempts else None

    async def _record(
        self,
        env: Envelope,
        line: bytes,
        *,
        ok: bool,
        tokens: tuple[int, int] = (0, 0),
        provider: str | None = None,
        upstream_s: float = 0.0,
    ) -> Recorded:
        recorded = await self.store.record(
            env.batch_id or "",
            custom_id=env.custom_id or "",
            index=line_index(env.id),
            line=line,
            ok=ok,
            tokens=tokens,
            provider=provider,
            upstream_s=upstream_s,
        )
        if recorded.finished:
            self.on_finished()
        return recorded
