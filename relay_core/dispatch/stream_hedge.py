"""Hedged streams: a second copy of a stream whose first chunk is late; the first chunk wins.

For a stream the client waits on its *first token*, so that is what a hedge races. A stream
that has written nothing after its target's p95 time to first chunk (learned by this worker
process, per target and task family, and read as a whole answer's p95 is, a bucket's upper
edge: :class:`FirstChunkTimes`) gets a second copy on another
provider, admitted as :class:`~relay_core.dispatch.hedge.Hedger` admits a whole answer's
(another provider that can serve at once, never a paid one in ``free`` mode, within the same
hedge budget). Both relays read their upstream; each writes through a :class:`_Claim` on the
request's one stream: the first to write a chunk of the answer claims it, and the other is
cancelled at once (its upstream request closed, its slot and tokens given back as the
prompt's). A chunk of the answer is one with text or a tool call
(:func:`~relay_core.dispatch.streaming.carries_answer`): a role-only chunk claims nothing.

* A contender that fails before writing leaves the other running; only when both fail does
  the request fail over, with the primary's error. One that ends empty (choices, no content)
  is an unusable answer: booked so, and the other goes on.
* The winner's time to first chunk (from its own start) is learned; the loser's, cut short,
  is not (it would pull the p95 down).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from relay_core.dispatch.call import Call
from relay_core.dispatch.envelope import Envelope
from relay_core.dispatch.hedge import HEDGE_QUANTILE, MIN_ANSWERS, Hedger, hedge_lease
from relay_core.dispatch.streaming import ChunkSink, Relay, Streamed, Written
from relay_core.errors import UpstreamError, UpstreamUnusableAnswer
from relay_core.routing.outcomes.stats import LATENCY_EDGES, Stats, latency_bucket

KEPT = 256  # first-chunk times kept per target and family

MakeRelay = Callable[[Call, ChunkSink], Relay]


class FirstChunkTimes:
    """This process's recent times to first chunk per (target, task family)."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._seen: dict[tuple[str, str], deque[float]] = {}

    def add(self, target: str, family: str, seconds: float) -> None:
        key = (target, family)
        if key not in self._seen:
            self._seen[key] = deque(maxlen=self.kept)
        self._seen[key].append(seconds)

    def p95(self, target: str, family: str) -> float | None:
        """The time below which 95 % of first chunks came, read as a whole answer's p95 is
        (:func:`~relay_core.dispatch.hedge.hedge_delay`): the upper edge of its bucket of
        the learned answer times' histogram, at or above the p95 itself, so a hedge goes to
        a stream that is late, not to the slowest 5 % of ordinary ones (None before
        ``MIN_ANSWERS`` streams)."""
        seen = self._seen.get((target, family))
        if seen is None or len(seen) < MIN_ANSWERS:
            return None
        counts = [0.0] * len(LATENCY_EDGES)
        for seconds in seen:
            counts[latency_bucket(seconds)] += 1
        return Stats(latency=tuple(counts)).percentile(HEDGE_QUANTILE)


@dataclass(frozen=True, slots=True)
class Relayed:
    """The stream that reached the client (or, when none did, the primary's)."""

    call: Call
    lease: str
    started: float
    relay: Relay
    result: Streamed
    hedged: bool = False


class _Claim:
    """Which contender's chunks reach the client: the first to write one."""

    def __init__(self) -> None:
        self.winner: str | None = None
        self.won = asyncio.Event()


class _ClaimSink:
    """A contender's view of the request's stream: its writes pass once it has claimed the
    stream; a contender that comes second is told the stream is taken."""

    def __init__(self, sink: ChunkSink, claim: _Claim, me: str) -> None:
        self.sink, self.claim, self.me = sink, claim, me

    async def write(self, data: bytes, head: dict[bytes, bytes] | None = None) -> Written:
        if self.claim.winner is None:
            self.claim.winner = self.me
            self.claim.won.set()
        if self.claim.winner != self.me:
            return Written.taken
        return await self.sink.write(data, head)

    async def left(self) -> None:
        await self.sink.left()


@dataclass(frozen=True, slots=True)
class _Run:
    name: str
    call: Call
    lease: str
    started: float
    relay: Relay
    task: asyncio.Task[Streamed]

    def relayed(self, result: Streamed) -> Relayed:
        return Relayed(self.call, self.lease, self.started, self.relay, result, self.name != "p")


class StreamHedger:
    def __init__(self, hedger: Hedger, clock: Callable[[], float]) -> None:
        self.hedger = hedger
        self.clock = clock
        self.times = FirstChunkTimes()

    def wanted(self, env: Envelope, call: Call) -> bool:
        return self.hedger.wanted(env, call, stream=True)

    def learn(self, env: Envelope, call: Call, ttft_s: float | None) -> None:
        """A stream's time to its first chunk, from its own start."""
        if env.profile is not None and ttft_s is not None:
            self.times.add(_key(call), env.profile.family.value, ttft_s)

    def delay(self, env: Envelope, call: Call) -> float | None:
        assert env.profile is not None
        return self.times.p95(_key(call), env.profile.family.value)

    async def relay(
        self, env: Envelope, call: Call, started: float, sink: ChunkSink, make: MakeRelay
    ) -> Relayed:
        """``call``'s stream, raced by a hedge's when its first chunk is late."""
        claim = _Claim()
        primary = _start("p", call, env.id, started, make(call, _ClaimSink(sink, claim, "p")))
        try:
            delay = self.delay(env, call)
            if delay is not None:
                won = asyncio.ensure_future(claim.won.wait())
                await asyncio.wait({primary.task, won}, timeout=delay)
                won.cancel()
            late = delay is not None and claim.winner is None and not primary.task.done()
            second = None
            if late and self.hedger.budget.allows():
                second = await self.hedger.second(env, call.target)
            if second is None:
                return await self._alone(primary)
            relay = make(second, _ClaimSink(sink, claim, "h"))
            hedge = _start("h", second, hedge_lease(env), self.clock(), relay)
            return await self._race(env, primary, hedge, claim)
        finally:
            primary.task.cancel()  # no-op once done; a visit cut short takes its call along

    async def _alone(self, primary: _Run) -> Relayed:
        await asyncio.wait({primary.task})
        exc = primary.task.exception()
        self.hedger.budget.observe(exc is None)
        if exc is not None:
            raise exc
        return primary.relayed(primary.task.result())

    async def _race(self, env: Envelope, primary: _Run, hedge: _Run, claim: _Claim) -> Relayed:
        runs = {primary.task: primary, hedge.task: hedge}
        pending = set(runs)
        ended: dict[str, BaseException | Streamed] = {}
        won: asyncio.Future[Any] = asyncio.ensure_future(claim.won.wait())
        try:
            while pending and claim.winner is None:
                waiting: set[asyncio.Future[Any]] = {*pending, won}
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for task in [t for t in pending if t in done]:
                    pending.discard(task)
                    run = runs[task]
                    ended[run.name] = task.exception() or task.result()
                    if run is hedge:
                        await self._book_hedge(env, hedge, ended["h"])
            if claim.winner is None:  # neither wrote a chunk: the primary's outcome stands
                self.hedger.budget.observe(False)
                out = ended["p"]
                if isinstance(out, BaseException):
                    raise out
                return primary.relayed(out)
            winner, loser = (primary, hedge) if claim.winner == "p" else (hedge, primary)
            await self._book_loser(env, loser, ended.get(loser.name))
            result = await winner.task
            self.hedger.budget.observe(True)
            return winner.relayed(result)
        finally:
            won.cancel()
            for task in runs:
                task.cancel()

    async def _book_hedge(self, env: Envelope, hedge: _Run, out: BaseException | Streamed) -> None:
        """A hedge that ended without winning: failed, or empty."""
        if isinstance(out, BaseException):
            await self.hedger.hedge_failed(env, hedge.call, hedge.lease, hedge.started, out)
        elif out.empty:
            await self._book_empty(env, hedge, out)
        else:  # the client left: nothing was relayed
            await self.hedger.cancelled(hedge.call, hedge.lease)

    async def _book_loser(
        self, env: Envelope, loser: _Run, out: BaseException | Streamed | None
    ) -> None:
        """The contender that did not win, once the other wrote its first chunk."""
        if out is None:  # still waiting for its first chunk: cut off
            loser.task.cancel()
            self.hedger.later(self.hedger.cancelled(loser.call, loser.lease))
        elif loser.name == "p":  # the hedge's were booked as they ended
            self.hedger.later(self._book_primary(env, loser, out))

    async def _book_primary(
        self, env: Envelope, primary: _Run, out: BaseException | Streamed
    ) -> None:
        call, lease = primary.call, primary.lease
        if isinstance(out, UpstreamError):
            await self.hedger.failed(env, call, lease, primary.started, out)
        elif isinstance(out, Streamed) and out.empty:
            await self._book_empty(env, primary, out)
        elif isinstance(out, Streamed):  # came second, or its client left: cut off
            await self.hedger.cancelled(call, lease)
        else:  # refused by its adapter: nothing went out
            await self.hedger.state.refund(call.target, lease, call.estimate, self.clock())

    async def _book_empty(self, env: Envelope, run: _Run, result: Streamed) -> None:
        """An empty answer: an unusable one (learned), from a provider that answered."""
        call = run.call
        usage = result.estimated_usage(call.request, call.prompt)
        await self.hedger.report(env, call, run.started, empty_answer(call), usage)
        await self.hedger.state.after_success(
            call.target,
            permit=call.permit,
            lease=run.lease,
            tokens=(call.estimate, usage.total_tokens),
            feedback=run.relay.feedback,
            now=self.clock(),
        )


def empty_answer(call: Call) -> UpstreamUnusableAnswer:
    t = call.target
    return UpstreamUnusableAnswer(
        f"{t.name} streamed an empty answer for {t.model.id}.", provider=t.name, model=t.model.id
    )


def _key(call: Call) -> str:
    return f"{call.target.name}/{call.target.model.id}"


def _start(name: str, call: Call, lease: str, started: float, relay: Relay) -> _Run:
    t = call.target
    task = asyncio.ensure_future(relay.stream(t.provider.stream(call.request, t.model.id), started))
    return _Run(name, call, lease, started, relay, task)
