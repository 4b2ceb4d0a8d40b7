"""Limits kept in Redis: every operation is one Lua script, so it is atomic across workers.

Scripts are registered once (``register_script``) and run with EVALSHA; redis-py loads a
script again when Redis answers NOSCRIPT (after a restart or ``SCRIPT FLUSH``), pipelines too.
Works with clients made with or without ``decode_responses``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files

from redis.asyncio import Redis

from relay_core.limits.backends.base import CONCURRENCY_POLL_S, to_lower, token_limits
from relay_core.limits.specs import (
    Capacity,
    Decision,
    Level,
    LimitPlan,
    Reason,
    Remaining,
)

Args = list[str | int | float]


def _script(name: str) -> str:
    """A script's text: the shared prelude, then the script itself."""
    here = files(__package__)
    return here.joinpath("prelude.lua").read_text() + here.joinpath(name).read_text()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_call(
    plan: LimitPlan,
    cost_tokens: int,
    lease_id: str,
    now: float,
    *,
    take: bool,
    reserve_s: float = 0.0,
) -> tuple[list[str], Args]:
    """KEYS and ARGV for acquire.lua (see its header)."""
    keys = [*plan.pauses]
    args: Args = [repr(now), cost_tokens, lease_id, int(take), repr(CONCURRENCY_POLL_S)]
    args.append(repr(reserve_s))
    args += [len(plan.pauses), len(plan.buckets), len(plan.counters)]
    for b in plan.buckets:
        keys.append(b.key)
        args += [repr(b.rate), repr(b.capacity), b.reason.value, int(b.reason.counts_tokens)]
    for c in plan.counters:
        keys.append(c.key)
        args += [c.limit, repr(c.reset_at), c.ttl_s, c.reason.value, int(c.reason.counts_tokens)]
    for s in plan.concurrency:
        keys.append(s.key)
        args += [s.limit, repr(s.lease_ttl_s)]
    return keys, args


def _capacity(plan: LimitPlan, reply: object) -> Capacity:
    """acquire.lua's reply as a :class:`Capacity` (levels in the plan's order)."""
    if not isinstance(reply, list):
        raise TypeError(f"acquire.lua answered {reply!r}")
    values = [_text(v) for v in reply]
    levels = tuple(
        Level(spec.reason, spec.scope, float(value), float(spec.limit))
        for spec, value in zip(plan.specs(), values[3:], strict=True)
    )
    reason = Reason(values[2]) if values[2] else None
    return Capacity(wait_s=float(values[1]), reason=reason, levels=levels)


class RedisBackend:
    def __init__(self, client: Redis) -> None:
        self._client = client
        self._acquire = client.register_script(_script("acquire.lua"))
        self._release = client.register_script(_script("release.lua"))
        self._lower = client.register_script(_script("lower.lua"))
        self._pause = client.register_script(_script("pause.lua"))
        self._shift = client.register_script(_script("shift.lua"))

    async def acquire(
        self,
        plan: LimitPlan,
        cost_tokens: int,
        lease_id: str,
        now: float,
        reserve_s: float = 0.0,
    ) -> Decision:
        keys, args = _check_call(plan, cost_tokens, lease_id, now, take=True, reserve_s=reserve_s)
        reply = await self._acquire(keys, args)
        seen = _capacity(plan, reply)
        granted = _text(reply[0]) == "1"  # _capacity checked it is a list
        return Decision(granted=granted, wait_s=seen.wait_s, reason=seen.reason)

    async def release(self, plan: LimitPlan, lease_id: str, delta_tokens: int, now: float) -> None:
        buckets, counters = token_limits(plan)
        keys = [*(b.key for b in buckets), *(c.key for c in counters)]
        keys += [s.key for s in plan.concurrency]
        args: Args = [repr(now), lease_id, delta_tokens, len(buckets), len(counters)]
        for b in buckets:
            args += [repr(b.rate), repr(b.capacity)]
        args += [c.ttl_s for c in counters]
        await self._release(keys, args)

    async def shift(self, plan: LimitPlan, late_s: float, now: float) -> None:
        keys = [b.key for b in plan.buckets]
        args: Args = [repr(now), repr(late_s)]
        for b in plan.buckets:
            args += [repr(b.rate), repr(b.capacity)]
        await self._shift(keys, args)

    async def pause(self, key: str, until: float, now: float) -> None:
        await self._pause([key], [repr(until), repr(now)])

    async def lower(self, plan: LimitPlan, remaining: Remaining, now: float) -> None:
        buckets, counters = to_lower(plan, remaining)
        if not buckets and not counters:
            return
        keys = [b.key for b, _ in buckets] + [c.key for c, _ in counters]
        args: Args = [repr(now), len(buckets)]
        for b, left in buckets:
            args += [repr(b.rate), repr(b.capacity), repr(left)]
        for c, left in counters:
            args += [c.limit, c.ttl_s, repr(left)]
        await self._lower(keys, args)

    async def peek_many(
        self, plans: Sequence[LimitPlan], cost_tokens: int, now: float
    ) -> list[Capacity]:
        """One round trip for many plans: a pipeline of read-only acquire.lua calls."""
        async with self._client.pipeline(transaction=False) as pipe:
            for plan in plans:
                keys, args = _check_call(plan, cost_tokens, "", now, take=False)
                await self._acquire(keys, args, client=pipe)
            replies = await pipe.execute()
        return [_capacity(plan, reply) for plan, reply in zip(plans, replies, strict=True)]
