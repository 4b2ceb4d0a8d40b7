"""One worker visit to one envelope: take tokens, call the provider, decide what happens next.

This is the whole of a worker's logic, free of Celery: the task decodes the message, awaits
:meth:`Executor.visit`, and maps the :class:`Outcome` to publish-reply, forward or ack.

A visit only calls providers this process serves. When the current candidate cannot serve now
it is swapped for one that can (``candidates[:index]`` are always the ones already tried), and
when none can within ``token_wait_max_s`` the envelope is forwarded with a short delay, well
under the broker's visibility timeout: no thread sleeps for long.

Token waits are reservations (see :meth:`Limiter.acquire`): an interactive request takes the
next free slot up to ``token_wait_max_s`` ahead and sleeps until it, so a provider's slots go
out one refill apart in order and none is lost to a worker waking late. A batch line reserves
only as far ahead as its try's deadline, which the batch layer sets
(:meth:`relay_core.dispatch.priority.Gate.lead_s`): a few tens of ms while interactive traffic
is about, so an interactive request never queues behind more than that much batch work. A
call that wakes late for its slot moves the slots after it by its lateness
(:meth:`Limiter.shift`) instead of losing the slot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from opentelemetry.trace import SpanKind, StatusCode, Tracer
from redis.exceptions import RedisError

from relay_core.answers.repair import CheckAction
from relay_core.context.prepare import count_request, prepare_request
from relay_core.context.upstream import corrected_scale, upstream_count
from relay_core.dispatch.call import (
    Call,
    call_record,
    failed_before,
    may_be_the_request,
    near_window,
    the_requests_fault,
    too_long_for_it,
)
from relay_core.dispatch.embed import EmbeddingVisits
from relay_core.dispatch.envelope import Envelope, Kind, Reply
from relay_core.dispatch.hedge import Answered, Hedger, LatencySource
from relay_core.dispatch.outcome import Done, Forward, Outcome, attempt_error, exhausted_error
from relay_core.dispatch.state import DEFAULT_PAUSE_S, LiveTarget, WorkerState
from relay_core.dispatch.stream_hedge import Relayed, StreamHedger, empty_answer
from relay_core.dispatch.streaming import ChunkSink, Relay, StreamHub, stream_name, wants_stream
from relay_core.dispatch.verdict import (
    after_invalid,
    estimated_usage,
    judge_answer,
    profile_of,
    with_check,
)
from relay_core.errors import (
    INTERNAL_MESSAGE,
    GatewayTimeout,
    InternalError,
    InvalidRequest,
    RateLimited,
    RelayError,
    UpstreamContextTooLong,
    UpstreamEmptyStream,
    UpstreamError,
    UpstreamUnavailable,
)
from relay_core.events import EventSink, emit
from relay_core.limits.plan import refill_s
from relay_core.normalize import Normalize, normalize_completion
from relay_core.schemas.chat import ChatCompletionRequest, Usage
from relay_core.schemas.embeddings import EmbeddingRequest
from relay_core.tracing import NO_TRACER, parent_of, record_usage, request_attributes

log = logging.getLogger("relay.dispatch")

# A reserved slot used within this long of its time is used as it is; a call that wakes
# later moves the provider's next slots by its lateness (``Limiter.shift``): sent as it is,
# it would sit closer to the next slots than a refill, and a provider counting over a
# one-second window could see one request too many (the 2 % pacing margin leaves 20 ms a
# second, and sending takes a few ms more). Before, the late call gave its slot up and
# took the next one: on a busy box (load 6-12 on 2 cores) 4 % of a batch's slots were lost.
LATE_S = 0.015
# A batch line reserves at most this many of a provider's refills ahead (its lead, capped): a
# provider that answers 429 pauses, and slots reserved before the pause would still go out.
LEAD_SLOTS = 2.0
# Shortest sleep before asking the limits again.
MIN_POLL_S = 0.005

MAX_FAILURES_KEPT = 8
BATCH_BACKOFF_MAX_S = 60.0


class Executor:
    def __init__(
        self,
        state: WorkerState,
        clock: Callable[[], float] = time.time,
        sinks: Sequence[EventSink] = (),
        streams: StreamHub | None = None,
        *,
        latencies: LatencySource | None = None,
        tracer: Tracer = NO_TRACER,
    ) -> None:
        self.state = state
        self.settings = state.settings
        self.clock = clock
        self.sinks = list(sinks)
        self.streams = streams  # where ``stream: true`` answers go (None: answered whole)
        self._pending: set[asyncio.Task[None]] = set()
        self.tracer = tracer  # spans of visits and upstream attempts (relay_core/tracing.py)
        self.embeddings = EmbeddingVisits(self)
        # Hedged requests need the learned answer times (None: never hedged here).
        self.hedger = (
            None
            if latencies is None
            else Hedger(state, latencies, clock, self._report, self._later)
        )
        self.stream_hedger = None if self.hedger is None else StreamHedger(self.hedger, clock)

    def _later(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._pending.add(task)
        task.add_done_callback(self._done_later)

    def _done_later(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("bookkeeping failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for the bookkeeping still running (at shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _report(
        self,
        env: Envelope,
        call: Call,
        started: float,
        error: UpstreamError | None,
        usage: Usage | None = None,
        *,
        ttft_s: float | None = None,
    ) -> None:
        if not self.sinks:
            return
        record = call_record(
            env, call.target, started, self.clock(), error, usage=usage, ttft_s=ttft_s
        )
        await emit(self.sinks, record)

    async def visit(self, env: Envelope, trace: Mapping[str, object] | None = None) -> Outcome:
        """One visit of ``env``; ``trace``: the task headers carrying the API's span."""
        with self.tracer.start_as_current_span(
            "relay.visit",
            context=parent_of(trace),
            kind=SpanKind.CONSUMER,
            attributes={"relay.request_id": env.id, "relay.kind": env.kind.value},
        ):
            return await self._traced_visit(env)

    async def _traced_visit(self, env: Envelope) -> Outcome:
        try:
            await self.state.refresh_learned(time.time())
            if isinstance(env.request, EmbeddingRequest):  # relay_core/dispatch/embed.py
                outcome = await self.embeddings.visit(env, env.request)
            else:
                outcome = await self._visit(env)
        except (RedisError, OSError):
            raise  # the infrastructure failed: the message is redelivered, the line re-swept
        except Exception:
            if env.batch_id is not None:
                raise  # the sweeper sends it again; its owner polls, nobody waits on it
            # A bug: answer the waiting client now rather than at its deadline.
            log.exception("visit of %s failed", env.id)
            outcome = self._final(env, InternalError(INTERNAL_MESSAGE))
        # A stream that failed ends here; one that went through was ended by _stream.
        failed = isinstance(outcome, Done) and not outcome.reply.ok
        if self.streams is not None and failed and wants_stream(env):
            assert isinstance(outcome, Done)
            await self.streams.finish(stream_name(env), outcome.reply)
        return outcome

    async def _visit(self, env: Envelope) -> Outcome:
        if self.clock() >= env.deadline:
            return self._final(env, GatewayTimeout("No provider answered before the deadline."))
        if env.index >= len(env.candidates):
            return self._next_round(env, None)
        request = env.chat
        if env.message_tokens is None or len(env.message_tokens) != len(request.messages):
            # Counted once (a batch line's first visit); every later visit reuses the counts.
            env = env.model_copy(update={"message_tokens": await count_request(request)})
        if env.profile is None:
            env = env.model_copy(update={"profile": profile_of(env)})
        tokens = env.message_tokens
        if env.repair is not None and env.repair.candidate == env.current.key:
            request, tokens = env.repair.applied(request, tokens)  # a re-ask (docs/answers.md)
        prepared = self._prepare(env, request, tokens)
        if isinstance(prepared, RelayError):
            return self._advance(env, prepared)
        target, request, prompt = prepared
        # Admission takes the call as this upstream counts it (learned from its usage).
        estimate = self.state.estimate(target, request, prompt)
        wait = await self._take(target, env, estimate)
        if wait is not None:
            return await self._no_capacity(env, wait, estimate)
        # Tokens first, then the breaker: a half-open breaker's one probe is granted only to a
        # call that is certain to go out.
        permit = await self.state.permit(target, self.clock())
        if isinstance(permit, UpstreamError):
            await self.state.refund(target, env.id, estimate, self.clock())
            return self._advance(env, permit)
        return await self._call(env, Call(target, permit, request, estimate, prompt))

    def _prepare(
        self, env: Envelope, request: ChatCompletionRequest, tokens: list[int] | None
    ) -> tuple[LiveTarget, ChatCompletionRequest, int] | RelayError:
        """The current candidate and the request as it will be sent to it, or why it is
        skipped: not served here (a mis-delivery, or a provider disabled here), or the
        conversation cannot fit its context window (the next candidate's may be larger)."""
        target = self.state.target(env.current)
        if target is None:
            return UpstreamUnavailable(
                f"{env.current.provider} is not served by this worker.",
                provider=env.current.provider,
            )
        try:
            fitted, prompt = prepare_request(
                request, target.model, self.settings, tokens, env.token_scale or 1.0
            )
            return target, fitted, prompt
        except InvalidRequest as exc:
            exc.provider, exc.model = target.name, target.model.id
            return exc

    async def _take(self, target: LiveTarget, env: Envelope, estimate: int) -> float | None:
        """Take tokens for ``target``; None when granted, else seconds until it could be.

        Short waits (under ``token_wait_max_s``) are spent here; longer ones are returned.
        """
        deadline = min(self.clock() + self.settings.token_wait_max_s, env.deadline)
        while True:
            now = self.clock()
            plan = self.state.plan(target, now)
            ahead = deadline - now  # a batch line's try deadline is its lead (priority.Gate)
            if env.kind is Kind.batch:
                ahead = min(ahead, LEAD_SLOTS * refill_s(plan, estimate))
            decision = await self.state.limiter.acquire(
                plan, estimate, env.id, now, reserve_s=max(0.0, ahead)
            )
            if decision.granted:
                if decision.wait_s <= 0:
                    return None
                slot = now + decision.wait_s  # a reserved slot: ours once this has passed
                await asyncio.sleep(decision.wait_s)
                paused = self.state.limiter.paused_here(target.name, self.clock())
                if paused > 0:  # a 429 came meanwhile: the slot is not worth a call
                    await self.state.refund(target, env.id, estimate, self.clock())
                    return paused
                late = self.clock() - slot
                if late > LATE_S:
                    # Sent now, the call could crowd the next slots into one of the
                    # provider's windows: they move back by as much.
                    await self.state.limiter.shift(plan, late, self.clock())
                return None
            if now + decision.wait_s > deadline:
                return decision.wait_s
            reason = decision.reason
            # A bucket's slot can be reserved ``ahead`` of its refill: ask again then.
            step = decision.wait_s - (ahead if reason and reason.reservable else 0.0)
            await asyncio.sleep(max(step, MIN_POLL_S))

    async def _no_capacity(self, env: Envelope, wait_s: float, estimate: int) -> Outcome:
        """The current candidate cannot serve soon: hop to one that can, or come back later."""
        rest = env.candidates[env.index :]
        soonest = await self.state.soonest(rest, self.clock(), estimate)
        if soonest is not None and soonest[1] <= 0 and rest[soonest[0]] != env.current:
            return Forward(_swap(env, env.index + soonest[0]))
        best_wait = min(wait_s, soonest[1] if soonest else wait_s)
        too_long = best_wait > self.settings.max_queue_wait_s
        if env.kind is Kind.interactive and (too_long or self.clock() + best_wait > env.deadline):
            return self._final(env, exhausted_error(env.failures, best_wait))
        delay = min(max(best_wait, 0.01), self.settings.requeue_delay_max_s)
        if soonest is not None and soonest[1] < wait_s:
            return Forward(_swap(env, env.index + soonest[0]), delay)
        return Forward(env, delay)

    async def _call(self, env: Envelope, call: Call) -> Outcome:
        t = call.target
        attributes = request_attributes(call.request, t.name, t.model.id)
        with self.tracer.start_as_current_span(
            f"chat {t.model.id}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            outcome = await self._attempt(env, call)
            failed = attempt_error(env, outcome)
            if failed is not None:
                span.set_status(StatusCode.ERROR)
                span.set_attribute("error.type", failed)
            elif isinstance(outcome, Done):
                reply = outcome.reply
                usage = reply.completion.usage if reply.completion else reply.usage
                record_usage(span, reply.model or t.model.id, usage)
            return outcome

    async def _attempt(self, env: Envelope, call: Call) -> Outcome:
        t = call.target
        started = self.clock()
        env = env.model_copy(update={"attempts": env.attempts + 1})
        try:
            if self.streams is not None and call.request.stream:
                return await self._stream(env, call, started)
            answered = await self._complete(env, call, started)
        except InvalidRequest as exc:  # this provider's adapter cannot send it: nothing went out
            return await self._refused(env, call, exc)
        except UpstreamError as exc:
            return await self._failed(env, call, started, exc)
        elapsed = self.clock() - started  # the client's wait, hedged or not
        call, completion = answered.call, answered.completion
        t = call.target
        usage = completion.body.usage or estimated_usage(completion.body, call)
        actual = usage.total_tokens
        if completion.body.usage is not None:
            self.state.learn_cost(t, call.request, call.prompt, usage)
        body = completion.body.model_copy(update={"model": t.model.id, "usage": usage})
        how = Normalize.for_request(call.request, self.settings.normalize_output)
        body = normalize_completion(body, how)
        verdict = judge_answer(env, call, body)
        check, unusable = verdict.check, verdict.unusable
        # Bookkeeping after a success changes no decision about this request: it runs after
        # the reply is on its way, off the latency path. An unusable answer still went out
        # and came back: the tokens are spent, the breaker sees a working provider.
        self._later(self._report(env, call, answered.started, unusable, usage))
        self._later(
            self.state.after_success(
                t,
                permit=call.permit,
                lease=answered.lease,
                tokens=(call.estimate, actual),
                feedback=completion.feedback,
                now=self.clock(),
            )
        )
        if check.failed:  # repaired on this candidate, then failed over (docs/answers.md)
            after = after_invalid(env, call, body, check, self.settings.repair_max_attempts)
            return after if isinstance(after, Forward) else self._advance(*after)
        if unusable is not None and self._may_fail_over(env):
            return self._advance(env, unusable)  # nothing reached the client yet
        if check.checked:
            env = with_check(env, call.target, check, CheckAction.delivered)
        return Done(
            Reply(
                id=env.id,
                ok=True,
                completion=body,
                provider=t.name,
                model=t.model.id,
                attempts=env.attempts,
                queue_wait_s=max(0.0, started - env.enqueued_at),
                upstream_s=elapsed,
                checks=env.checks,
                hedged=answered.hedged,
                failures=env.failures,
            )
        )

    async def _complete(self, env: Envelope, call: Call, started: float) -> Answered:
        """The call's whole answer; hedged (another provider's may win) when it may be."""
        if self.hedger is not None and self.hedger.wanted(env, call):
            return await self.hedger.complete(env, call, started)
        t = call.target
        return Answered(call, env.id, started, await t.provider.complete(call.request, t.model.id))

    async def _failed(
        self, env: Envelope, call: Call, started: float, exc: UpstreamError
    ) -> Outcome:
        """A call the upstream failed: bookkeeping, then what the request does next."""
        t = call.target
        exc.provider, exc.model = t.name, t.model.id
        await self._report(env, call, started, exc)
        if isinstance(exc, UpstreamEmptyStream) and near_window(call):
            exc = too_long_for_it(exc, call)
        elif may_be_the_request(exc, call):
            if not failed_before(env, exc):  # once more before blaming anyone
                await self.state.refund(t, env.id, call.estimate, self.clock())
                return Forward(_with_failure(env, exc))
            if await self.state.breaker.answers_others(call.permit.keys[0], self.clock()):
                exc = the_requests_fault(exc, t.name)
        await self.state.after_failure(
            t,
            permit=call.permit,
            lease=env.id,
            estimate=call.estimate,
            exc=exc,
            now=self.clock(),
            started=started,
        )
        if not exc.retryable:  # the request's fault; an over-long prompt is re-fitted once
            refit = _refit(env, call, exc)
            return self._final(env, exc) if refit is None else Forward(refit)
        if isinstance(exc, RateLimited) and env.attempts < self.settings.max_attempts:
            # The provider's pacing, not a failure: it stays a candidate once its pause ends.
            env = _with_failure(env, exc)
            wait = exc.retry_after or DEFAULT_PAUSE_S
            return await self._no_capacity(env, wait, call.estimate)
        return self._advance(env, exc)

    async def _relayed(self, env: Envelope, call: Call, started: float) -> Relayed:
        """The stream that reached the client: ``call``'s, or a hedge's that wrote first."""
        assert self.streams is not None
        sink = self.streams.open(stream_name(env))
        last = not self._may_fail_over(env)

        def make(c: Call, to: ChunkSink) -> Relay:
            target = (c.target.name, c.target.model.id)
            normalize = self.settings.normalize_output
            return Relay(
                to, env, target, c.request, normalize=normalize, clock=self.clock,
                prompt=c.prompt, last=last,
            )  # fmt: skip

        if self.stream_hedger is not None and self.stream_hedger.wanted(env, call):
            return await self.stream_hedger.relay(env, call, started, sink, make)
        relay = make(call, sink)
        t = call.target
        result = await relay.stream(t.provider.stream(call.request, t.model.id), started)
        return Relayed(call, env.id, started, relay, result)

    async def _stream(self, env: Envelope, call: Call, started: float) -> Outcome:
        """Relay a streamed answer (see :mod:`relay_core.dispatch.streaming`). Errors before
        the first chunk raise, for the caller's ordinary failover; an empty answer that
        reached no one fails over as an empty whole answer does."""
        assert self.streams is not None
        won = await self._relayed(env, call, started)
        call, relay, result, started = won.call, won.relay, won.result, won.started
        t = call.target
        if result.error is not None:  # after the first chunk: too late to fail over
            await self._report(env, call, started, result.error, ttft_s=result.ttft_s)
            await self.state.after_failure(
                t,
                permit=call.permit,
                lease=won.lease,
                estimate=call.estimate,
                exc=result.error,
                now=self.clock(),
                started=started,
            )
            return self._final(env, result.error)
        usage = result.estimated_usage(call.request, call.prompt)
        if result.usage is not None:
            self.state.learn_cost(t, call.request, call.prompt, result.usage)
        unusable = empty_answer(call) if result.empty else None
        fails_over = unusable is not None and not result.written  # nothing reached the client
        reply = relay.reply(usage, started, self.clock())
        reply = reply.model_copy(update={"hedged": won.hedged}) if won.hedged else reply
        if not result.taken and not fails_over:  # [DONE] first, the bookkeeping after
            await self.streams.finish(stream_name(env), reply)
        await self._report(env, call, started, unusable, usage, ttft_s=result.ttft_s)
        if self.stream_hedger is not None and unusable is None:
            self.stream_hedger.learn(env, call, result.ttft_s)
        await self.state.after_success(
            t,
            permit=call.permit,
            lease=won.lease,
            tokens=(call.estimate, usage.total_tokens),
            feedback=relay.feedback,
            now=self.clock(),
        )
        if result.taken:
            return self._final(env, relay.interrupted())
        if unusable is not None and fails_over:
            return self._advance(env, unusable)
        return Done(reply)

    async def _refused(self, env: Envelope, call: Call, exc: InvalidRequest) -> Outcome:
        """The adapter refused the request before sending it (a field or message its API
        family cannot take): give back the tokens and the breaker's permit, try the next."""
        t = call.target
        exc.provider, exc.model = t.name, t.model.id
        await self.state.refund(t, env.id, call.estimate, self.clock())
        await self.state.breaker.record_permit(call.permit, True, self.clock())
        return self._advance(env, exc)

    def _may_fail_over(self, env: Envelope) -> bool:
        """Another candidate is left to try (the last one's answer, such as it is, is given)."""
        return env.index + 1 < len(env.candidates) and env.attempts < self.settings.max_attempts

    def _advance(self, env: Envelope, exc: RelayError) -> Outcome:
        env = _with_failure(env, exc)
        env = env.model_copy(update={"index": env.index + 1})
        if env.attempts >= self.settings.max_attempts and env.kind is Kind.interactive:
            return self._final(env, exhausted_error(env.failures, None))
        if env.index >= len(env.candidates):
            return self._next_round(env, None)
        return Forward(env)

    def _next_round(self, env: Envelope, wait_s: float | None) -> Outcome:
        """Every candidate was tried once: interactive requests give up, batch lines back off."""
        if env.kind is Kind.interactive:
            return self._final(env, exhausted_error(env.failures, wait_s))
        rounds = env.attempts // max(1, len(env.candidates))
        delay = min(BATCH_BACKOFF_MAX_S, 2.0 ** min(rounds, 6))
        return Forward(env.model_copy(update={"index": 0}), delay)

    def _final(self, env: Envelope, exc: RelayError) -> Outcome:
        info = exc.to_info()
        return Done(
            Reply(
                id=env.id,
                ok=False,
                error=info,
                attempts=env.attempts,
                checks=env.checks,
                failures=env.failures,
            )
        )


def _refit(env: Envelope, call: Call, exc: UpstreamError) -> Envelope | None:
    """After the upstream said the prompt is over its window: the envelope to send to the
    same candidate once more, trimmed by the upstream's own count (None: already retried,
    or the upstream named no figure)."""
    if not isinstance(exc, UpstreamContextTooLong) or env.token_scale is not None:
        return None
    count = upstream_count(exc.upstream_body or exc.message)
    if count is None:
        return None
    scale = corrected_scale(count, call.prompt, call.target.model.context_window)
    return _with_failure(env, exc).model_copy(update={"token_scale": scale})


def _with_failure(env: Envelope, exc: RelayError) -> Envelope:
    failures = [*env.failures, exc.to_info()][-MAX_FAILURES_KEPT:]
    return env.model_copy(update={"failures": failures})


def _swap(env: Envelope, j: int) -> Envelope:
    """Bring candidate ``j`` to the current position (the tried prefix stays as it is)."""
    cands = list(env.candidates)
    cands[env.index], cands[j] = cands[j], cands[env.index]
    return env.model_copy(update={"candidates": cands})
