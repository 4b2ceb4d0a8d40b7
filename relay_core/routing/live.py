"""Read the farm's live condition for a set of targets (one Redis round trip per kind)."""

from __future__ import annotations

from collections.abc import Sequence

from relay_core.breaker import Breaker, BreakerState
from relay_core.limits import Limiter
from relay_core.routing.ranking import LiveState
from relay_core.routing.targets import Target


async def live_states(
    targets: Sequence[Target], limiter: Limiter, breaker: Breaker, now: float
) -> dict[str, LiveState]:
    if not targets:
        return {}
    plans = [limiter.plan(t.provider, t.model, now) for t in targets]
    caps = await limiter.peek_many(plans, now)
    keys = [k for t in targets for k in breaker.keys(t.provider.name, t.model.id)]
    states = await breaker.state(keys, now)
    out: dict[str, LiveState] = {}
    for i, t in enumerate(targets):
        open_ = any(s.state is BreakerState.open for s in states[2 * i : 2 * i + 2])
        out[t.key] = LiveState(wait_s=caps[i].wait_s, headroom=caps[i].headroom, breaker_open=open_)
    return out
