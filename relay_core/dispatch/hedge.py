"""Hedged requests: a second copy of a slow interactive call, sent to another provider.

A call that has not answered after its target's learned p95 answer time (per task family,
``relay_core.routing.outcomes``) is probably a straggler: stuck behind a slow replica, it
will answer seconds late. A hedge sends the same request to the next candidate of a
*different* provider that can serve at once (tokens now, breaker closed; never a paid one in
``free`` mode); the first answer wins and the other call is cancelled (its connection
closed). Nothing but the winning answer reaches the client.

* **Off by default**: ``RELAY_HEDGING``, a request's ``x-relay-hedge: on|off``, or a policy
  that sets :attr:`RouteFlags.hedge <relay_core.dispatch.envelope.RouteFlags.hedge>`.
* **Interactive calls only**: not batch lines, never when the primary is a breaker's probe
  (its outcome must be known). Whole answers here; streams race their first chunk in
  :mod:`relay_core.dispatch.stream_hedge`, on the same budget and admission.
* **A budget** (:class:`HedgeBudget`, per worker process): each hedge-eligible call earns
  ``RELAY_HEDGE_BUDGET`` of a hedge, a hedge spends one, so hedges stay under that share of
  calls; and none while the recent share of failed calls is over
  ``RELAY_HEDGE_FAILURE_CEILING`` (hedging into an overloaded farm makes it worse).
* **A failing hedge never cancels the primary**: a fast 429 (or any error) from the hedge is
  booked against the hedge's target and the primary is awaited as if nothing happened. A
  failing primary lets a running hedge finish; only when both fail does the request fail
  over, with the primary's error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from relay_core.catalogue.models import Tier
from relay_core.context.prepare import prepare_request
from relay_core.dispatch.call import Call
from relay_core.dispatch.envelope import Envelope, Kind
from relay_core.dispatch.state import LiveTarget, WorkerState
from relay_core.errors import InvalidRequest, UpstreamError
from relay_core.providers.base import Completion
from relay_core.routing.outcomes.stats import Stats
from relay_core.schemas.chat import Usage
from relay_core.settings import Mode

MAX_CREDIT = 10.0  # hedges a worker may bank (stragglers come in bursts)
FAILURE_ALPHA = 0.1  # weight of each call in the failure share (about the last 10 calls)
MIN_ANSWERS = 10.0  # learned answers before a target's p95 is trusted
HEDGE_QUANTILE = 0.95

HEDGE_HEADER = "x-relay-hedge"
_ON, _OFF = {"on", "true", "1", "yes"}, {"off", "false", "0", "no"}


def parse_hedge(header: str | None, default: bool) -> bool:
    """The ``x-relay-hedge`` header (``on`` / ``off``); ``default`` when absent."""
    if header is None or not header.strip():
        return default
    word = header.strip().lower()
    if word in _ON | _OFF:
        return word in _ON
    raise InvalidRequest(
        f"{HEDGE_HEADER} must be on or off, not {header[:32]!r}.", param=HEDGE_HEADER
    )


@dataclass(slots=True)
class HedgeBudget:
    """Hedges as a share of calls, and none while calls fail (one per worker process)."""

    ratio: float
    failure_ceiling: float
    credit: float = 0.0
    failing: float = 0.0  # an EWMA of failed calls (0..1)
    spent: int = 0

    def observe(self, ok: bool, *, earn: bool = True) -> None:
        """One upstream call ended; ``earn``: a hedge-eligible call (not a hedge)."""
        if earn:
            self.credit = min(MAX_CREDIT, self.credit + self.ratio)
        self.failing += FAILURE_ALPHA * ((0.0 if ok else 1.0) - self.failing)

    def allows(self) -> bool:
        return self.credit >= 1.0 and self.failing <= self.failure_ceiling

    def spend(self) -> None:
        self.credit -= 1.0
        self.spent += 1

    def refund(self) -> None:
        self.credit += 1.0
        self.spent -= 1


def hedge_delay(stats: Stats | None) -> float | None:
    """When to hedge a call to a target with these learned answer times: their p95, once
    enough answers were seen (None: too little known, do not hedge)."""
    if stats is None or sum(stats.latency) < MIN_ANSWERS:
        return None
    return stats.percentile(HEDGE_QUANTILE)


class LatencySource(Protocol):
    """Learned outcomes per task family (:class:`~relay_core.routing.outcomes.OutcomeCache`)."""

    async def stats(self, family: str) -> Mapping[str, Stats]: ...


@dataclass(frozen=True, slots=True)
class Answered:
    """The answer that won: the call that gave it, its lease and when it went out."""

    call: Call
    lease: str
    started: float
    completion: Completion
    hedged: bool = False


class Report(Protocol):
    """Book one call's outcome (the executor's events: usage, learned outcomes)."""

    def __call__(
        self,
        env: Envelope,
        call: Call,
        started: float,
        error: UpstreamError | None,
        usage: Usage | None = None,
    ) -> Awaitable[None]: ...


Later = Callable[[Coroutine[Any, Any, None]], None]


@dataclass(frozen=True, slots=True)
class _Attempt:
    call: Call
    lease: str
    started: float
    task: asyncio.Task[Completion]


class Hedger:
    def __init__(
        self,
        state: WorkerState,
        latencies: LatencySource,
        clock: Callable[[], float],
        report: Report,
        later: Later,
    ) -> None:
        self.state = state
        self.settings = state.settings
        self.latencies = latencies
        self.clock = clock
        self.report = report
        self.later = later
        self.budget = HedgeBudget(state.settings.hedge_budget, state.settings.hedge_failure_ceiling)

    def wanted(self, env: Envelope, call: Call, *, stream: bool = False) -> bool:
        """Whether ``call`` may be hedged: a whole answer, or with ``stream`` a stream."""
        return (
            env.flags.hedge
            and env.kind is Kind.interactive
            and env.profile is not None
            and bool(call.request.stream) is stream
            and not call.permit.is_probe
        )

    async def complete(self, env: Envelope, call: Call, started: float) -> Answered:
        """``call``'s answer, or a hedge's if it comes first (errors: the primary's)."""
        t = call.target
        primary = _Attempt(call, env.id, started, _send(call))
        try:
            delay = await self._delay(env, t)
            if delay is not None:
                await asyncio.wait({primary.task}, timeout=delay)
            hedge = None if primary.task.done() else await self._launch(env, primary, delay)
            if hedge is None:
                await asyncio.wait({primary.task})
                return self._alone(primary)
            return await self._race(env, primary, hedge)
        finally:
            primary.task.cancel()  # no-op once done; a visit cut short takes its call along

    def _alone(self, primary: _Attempt) -> Answered:
        exc = primary.task.exception()
        self.budget.observe(exc is None)
        if exc is not None:
            raise exc
        return Answered(primary.call, primary.lease, primary.started, primary.task.result())

    async def _delay(self, env: Envelope, t: LiveTarget) -> float | None:
        assert env.profile is not None
        learned = await self.latencies.stats(env.profile.family.value)
        return hedge_delay(learned.get(f"{t.name}/{t.model.id}"))

    async def _launch(
        self, env: Envelope, primary: _Attempt, delay: float | None
    ) -> _Attempt | None:
        """Send the hedge to the first later candidate that can take it now, if the budget
        allows one (and the primary's p95 is known: ``delay``)."""
        if delay is None or not self.budget.allows():
            return None
        call = await self.second(env, primary.call.target)
        return None if call is None else _Attempt(call, hedge_lease(env), self.clock(), _send(call))

    async def second(self, env: Envelope, primary: LiveTarget) -> Call | None:
        """Spend a hedge and admit its call on the first later candidate of another provider
        that can take it now (None: no candidate could, and the hedge is refunded)."""
        self.budget.spend()  # before any await: concurrent calls must not all see it unspent
        for cand in env.candidates[env.index + 1 :]:
            target = self.state.target(cand)
            if target is None or not self._may_take(target, primary):
                continue
            call = await self._admit(env, target)
            if call is not None:
                return call
        self.budget.refund()  # no candidate could take it
        return None

    def _may_take(self, target: LiveTarget, primary: LiveTarget) -> bool:
        paid = target.config.tier is Tier.paid
        return target.name != primary.name and not (paid and self.settings.mode is Mode.free)

    async def _admit(self, env: Envelope, target: LiveTarget) -> Call | None:
        """Tokens now and a closed breaker for ``target``, or None (nothing held)."""
        try:
            request, prompt = prepare_request(
                env.chat,
                target.model,
                self.settings,
                env.message_tokens,
                env.token_scale or 1.0,
            )
        except InvalidRequest:
            return None  # over its window: not a candidate for this request
        estimate = self.state.estimate(target, request, prompt)
        now = self.clock()
        lease = hedge_lease(env)
        plan = self.state.plan(target, now)
        decision = await self.state.limiter.acquire(plan, estimate, lease, now)
        if not decision.granted:
            return None
        permit = await self.state.permit(target, now)
        if isinstance(permit, UpstreamError):
            await self.state.refund(target, lease, estimate, self.clock())
            return None
        return Call(target, permit, request, estimate, prompt)

    async def _race(self, env: Envelope, primary: _Attempt, hedge: _Attempt) -> Answered:
        """The first answer of the two; a failure waits for the other."""
        attempts = {primary.task: primary, hedge.task: hedge}
        pending = set(attempts)
        primary_exc: BaseException | None = None
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=lambda t: t is not primary.task):
                    exc = task.exception()
                    if exc is None:
                        won = attempts[task]
                        losers = [a for a in attempts.values() if a is not won]
                        self._settle(env, primary, primary_exc, losers)
                        return Answered(
                            won.call, won.lease, won.started, task.result(), won is hedge
                        )
                    if task is hedge.task:
                        await self._hedge_failed(env, hedge, exc)
                    else:
                        primary_exc = exc
            self.budget.observe(False)
            assert primary_exc is not None
            raise primary_exc  # both failed: the request fails over as usual
        finally:
            for task in pending:
                task.cancel()

    def _settle(
        self,
        env: Envelope,
        primary: _Attempt,
        primary_exc: BaseException | None,
        losers: list[_Attempt],
    ) -> None:
        """Book the calls that did not win, off the latency path: a primary that failed
        first, and the call cancelled (or answered too late) with its tokens as sent."""
        self.budget.observe(primary_exc is None)
        for loser in losers:
            if loser is primary and isinstance(primary_exc, UpstreamError):
                self.later(self._failed(env, primary, primary_exc))
            elif loser is not primary or primary_exc is None:
                self.later(self._cancelled(loser))

    async def _cancelled(self, loser: _Attempt) -> None:
        await self.cancelled(loser.call, loser.lease)

    async def cancelled(self, call: Call, lease: str) -> None:
        """A call cut off for the winner: its slot back, its tokens counted as the prompt's
        (the upstream read it). A probe it held expires (the breaker learns nothing)."""
        t, now = call.target, self.clock()
        plan = self.state.plan(t, now)
        await self.state.limiter.release(plan, lease, call.prompt, call.estimate, now)

    async def _hedge_failed(self, env: Envelope, hedge: _Attempt, exc: BaseException) -> None:
        await self.hedge_failed(env, hedge.call, hedge.lease, hedge.started, exc)

    async def hedge_failed(
        self, env: Envelope, call: Call, lease: str, started: float, exc: BaseException
    ) -> None:
        self.budget.observe(False, earn=False)
        if isinstance(exc, UpstreamError):
            await self.failed(env, call, lease, started, exc)
        else:  # refused by the adapter: nothing went out
            await self.state.refund(call.target, lease, call.estimate, self.clock())

    async def _failed(self, env: Envelope, attempt: _Attempt, exc: UpstreamError) -> None:
        await self.failed(env, attempt.call, attempt.lease, attempt.started, exc)

    async def failed(
        self, env: Envelope, call: Call, lease: str, started: float, exc: UpstreamError
    ) -> None:
        """Book a failed call against its target, as the executor books any other."""
        t = call.target
        exc.provider, exc.model = t.name, t.model.id
        await self.report(env, call, started, exc)
        await self.state.after_failure(
            t,
            permit=call.permit,
            lease=lease,
            estimate=call.estimate,
            exc=exc,
            now=self.clock(),
            started=started,
        )


def hedge_lease(env: Envelope) -> str:
    """The limiter lease of ``env``'s hedge (the primary's is ``env.id``)."""
    return f"{env.id}:hedge"


def _send(call: Call) -> asyncio.Task[Completion]:
    t = call.target
    return asyncio.create_task(t.provider.complete(call.request, t.model.id))
