"""Read the farm's live condition for a set of targets (one Redis round trip per kind), and
keep it for a moment in each process that routes (:class:`LiveCache`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from relay_core.breaker import Breaker, BreakerState
from relay_core.limits import Limiter
from relay_core.limits.specs import Capacity, LimitPlan
from relay_core.routing.ranking import LiveState
from relay_core.routing.targets import Target


async def live_states(
    targets: Sequence[Target], limiter: Limiter, breaker: Breaker, now: float
) -> dict[str, LiveState]:
    return {
        t.key: state
        for t, (state, _) in zip(targets, await _read(targets, limiter, breaker, now), strict=True)
    }


async def _read(
    targets: Sequence[Target], limiter: Limiter, breaker: Breaker, now: float
) -> list[tuple[LiveState, Capacity]]:
    return [(state, cap) for state, _, cap in await live_limits(targets, limiter, breaker, now)]


async def live_limits(
    targets: Sequence[Target], limiter: Limiter, breaker: Breaker, now: float
) -> list[tuple[LiveState, LimitPlan, Capacity]]:
    """Each target's condition, its limits and their levels: one round trip for the limits,
    one for the breakers."""
    if not targets:
        return []
    plans = [limiter.plan(t.provider, t.model, now) for t in targets]
    caps = await limiter.peek_many(plans, now)
    keys = [k for t in targets for k in breaker.keys(t.provider.name, t.model.id)]
    states = await breaker.state(keys, now)
    out: list[tuple[LiveState, LimitPlan, Capacity]] = []
    for i, (plan, cap) in enumerate(zip(plans, caps, strict=True)):
        open_ = any(s.state is BreakerState.open for s in states[2 * i : 2 * i + 2])
        state = LiveState(wait_s=cap.wait_s, headroom=cap.headroom, breaker_open=open_)
        out.append((state, plan, cap))
    return out


class LiveCache:
    """The farm's live condition as one process routes: read from Redis at most every
    ``ttl_s`` per target, and between reads adjusted for each request this process sends.

    Every request of a busy API would otherwise cost two Redis round trips over every
    candidate (a bucket peek and the breakers) before it is even queued; with ten providers
    that was most of the farm's added latency. A snapshot a quarter of a second old ranks as
    well: the worker still takes the real tokens and checks the real breaker, and moves on
    when the first candidate cannot serve. So that requests within one snapshot do not all
    pile on the same target, each one sent lowers its target's headroom by what one request
    costs of its tightest limit.
    """

    def __init__(
        self,
        limiter: Limiter,
        breaker: Breaker,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter
        self.breaker = breaker
        self.ttl_s = ttl_s
        self.clock = clock
        self._seen: dict[str, tuple[float, LiveState, float]] = {}  # read at, state, step
        self._sent: dict[str, int] = {}  # requests sent to a target since it was read

    async def states(self, targets: Sequence[Target]) -> dict[str, LiveState]:
        now = self.clock()
        stale = [t for t in targets if self._expired(t.key, now)]
        if stale:
            await self._read(stale, now)
        return {t.key: self._adjusted(t.key) for t in targets}

    def sent(self, target: Target) -> None:
        """A request was queued for ``target``: count it until the next read."""
        self._sent[target.key] = self._sent.get(target.key, 0) + 1

    def _expired(self, key: str, now: float) -> bool:
        seen = self._seen.get(key)
        return seen is None or now - seen[0] >= self.ttl_s

    async def _read(self, targets: Sequence[Target], now: float) -> None:
        read = await _read(targets, self.limiter, self.breaker, time.time())
        for t, (state, cap) in zip(targets, read, strict=True):
            step = max((1 / lv.limit for lv in cap.levels if lv.limit > 0), default=0.0)
            self._seen[t.key] = (now, state, step)
            self._sent.pop(t.key, None)

    def _adjusted(self, key: str) -> LiveState:
        _, state, step = self._seen[key]
        sent = self._sent.get(key, 0)
        if not sent or not step:
            return state
        return replace(state, headroom=state.headroom - sent * step)
