"""Breakers kept in this process's memory: the semantics of the Lua scripts, in Python.

For unit tests and single-process tools. No method awaits, so each is atomic within one event
loop. Nothing expires: time is whatever ``now`` the caller passes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from relay_core.breaker.policy import (
    WINDOW_SLOTS,
    BreakerPolicy,
    BreakerState,
    BreakerStatus,
    DisabledKey,
    Permit,
)


@dataclass
class _Breaker:
    state: BreakerState = BreakerState.closed
    opened_at: float = 0.0
    cooldown: float = 0.0
    probe_until: float = 0.0
    fails: int = 0  # consecutive
    window: dict[int, tuple[int, int]] = field(default_factory=dict)  # slot -> (calls, failures)

    def effective(self, now: float) -> BreakerState:
        if self.state is BreakerState.open and now < self.opened_at + self.cooldown:
            return BreakerState.open
        return BreakerState.closed if self.state is BreakerState.closed else BreakerState.half_open

    def totals(self, policy: BreakerPolicy, now: float) -> tuple[int, int]:
        oldest = math.floor(now / (policy.window_s / WINDOW_SLOTS)) - WINDOW_SLOTS
        live = [v for slot, v in self.window.items() if slot > oldest]
        return sum(c for c, _ in live), sum(f for _, f in live)


def _opened(now: float, cooldown: float) -> _Breaker:
    return _Breaker(BreakerState.open, opened_at=now, cooldown=cooldown)


class MemoryBackend:
    def __init__(self) -> None:
        self._breakers: dict[str, _Breaker] = {}
        self._disabled: dict[str, DisabledKey] = {}

    async def allow(self, keys: Sequence[str], policy: BreakerPolicy, now: float) -> Permit:
        wait, worst, probes = 0.0, None, []
        for key in keys:
            b = self._breakers.get(key, _Breaker())
            state, here = b.effective(now), 0.0
            if state is BreakerState.open:
                here = b.opened_at + b.cooldown - now
            elif state is BreakerState.half_open:
                if b.probe_until > now:
                    here = b.probe_until - now
                else:
                    probes.append(key)
            if here > wait:
                wait, worst = here, state
        if worst is not None:
            return Permit(False, worst, wait, tuple(keys))
        for key in probes:
            self._breakers[key].state = BreakerState.half_open
            self._breakers[key].probe_until = now + policy.probe_ttl_s
        state = BreakerState.half_open if probes else BreakerState.closed
        return Permit(True, state, 0.0, tuple(keys), tuple(probes))

    def _record_closed(
        self, key: str, success: bool, policy: BreakerPolicy, now: float, count: int
    ) -> None:
        b = self._breakers.get(key, _Breaker())
        slot = math.floor(now / (policy.window_s / WINDOW_SLOTS))
        b.window = {s: v for s, v in b.window.items() if s > slot - WINDOW_SLOTS}
        calls, failures = b.window.get(slot, (0, 0))
        b.window[slot] = (calls + count, failures + (0 if success else count))
        b.fails = 0 if success else b.fails + count
        calls, failures = b.totals(policy, now)
        tripped = b.fails >= policy.failures or (
            calls >= policy.min_calls and failures / calls >= policy.ratio
        )
        self._breakers[key] = _opened(now, policy.cooldown_s) if not success and tripped else b

    async def record(
        self,
        keys: Sequence[str],
        probes: Sequence[bool],
        success: bool,
        policy: BreakerPolicy,
        now: float,
        *,
        count: int = 1,
    ) -> None:
        for key, probe in zip(keys, probes, strict=True):
            b = self._breakers.get(key, _Breaker())
            if b.state is BreakerState.closed:
                self._record_closed(key, success, policy, now, count)
            elif probe and b.effective(now) is BreakerState.half_open:
                if success:
                    self._breakers.pop(key)
                else:
                    cooldown = min(2 * b.cooldown, policy.cooldown_max_s)
                    self._breakers[key] = _opened(now, cooldown)

    async def state(
        self, keys: Sequence[str], policy: BreakerPolicy, now: float
    ) -> list[BreakerStatus]:
        found = []
        for key in keys:
            b = self._breakers.get(key, _Breaker())
            state = b.effective(now)
            retry = 0.0
            if state is BreakerState.open:
                retry = b.opened_at + b.cooldown - now
            elif state is BreakerState.half_open and b.probe_until > now:
                retry = b.probe_until - now
            cooldown = policy.cooldown_s if state is BreakerState.closed else b.cooldown
            calls, failures = b.totals(policy, now)
            found.append(BreakerStatus(key, state, retry, b.fails, calls, failures, cooldown))
        return found

    async def disable(self, key: str, disabled: DisabledKey) -> None:
        self._disabled[key] = disabled

    async def disabled(self, key: str) -> DisabledKey | None:
        return self._disabled.get(key)

    async def enable(self, key: str) -> None:
        self._disabled.pop(key, None)
