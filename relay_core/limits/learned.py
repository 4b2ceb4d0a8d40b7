r"""Rates learned from a provider's 429s, for limits lower than the published ones.

A catalogue's limits are what a provider publishes; some enforce less (a free tier shared
with other keys, a limit changed without notice). Pacing at the published rate against such a
provider meets a stream of 429s. So when a provider answers 429 to a call Relay's own buckets
let through, the rate Relay paces that provider at is lowered (multiplicative decrease), then
raised again: quickly back to just under where the 429 came, then slowly beyond it (additive
increase, a probe), so a wrong catalogue entry costs a few 429s and little throughput:

    factor
    1.0  -+                                     / slow probe (SLOW_PER_S)
          | 429          +-------------------- /
    0.9x -+   \     /  back to TARGET x the factor at the 429
          |    \   /   (FAST_PER_S)
    0.7x -+     \ /
          +------------------------------------------> time

The factor scales the provider's RPM and TPM buckets (``relay_core.limits.plan``). It is kept
in Redis (``{prefix}:{provider}:learned``, a hash: factor after the decrease, target, at, and
when the last 429 came) so every worker paces alike, and a 429 from many calls in flight at
once lowers it once (``HOLD_S``).

**A lone 429 lowers nothing.** Against a provider counting per second, paced 2 % under its
limit, a call that reaches it a few ms early now and then (the box was busy, the network
jittered) is refused although nothing is hidden: measured, 2-3 such 429s per provider in a
250-line run at 2 lines/s. Each one used to cost that provider 10 % of its rate for 100 s
(the slow probe back), 12-18 % of the batch's throughput in all. So a 429 lowers the factor
only when another came within ``CONFIRM_S`` before it (a hidden limit answers 429 again
within a second or two of pacing at the published rate); a lone one is only noted, and
its ``Retry-After`` pause is all it costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from redis.asyncio import Redis

DECREASE = 0.7  # the factor after a 429, times the one in force
TARGET = 0.9  # back quickly to this share of the factor the 429 came at
FAST_PER_S = 0.05  # how fast the factor climbs back to the target
SLOW_PER_S = 0.001  # then how fast it probes above (0.1 in 100 s)
FLOOR = 0.1  # never pace a provider slower than this share of its published rate
HOLD_S = 2.0  # 429s within this long of a decrease (calls already in flight) do not lower it
CONFIRM_S = 20.0  # a 429 lowers the factor only when another came less than this before it
REFRESH_S = 1.0  # how often a worker reads the factors other workers learned


@dataclass(frozen=True, slots=True)
class Learned:
    """One provider's learned state: ``base`` after its last decrease at ``at``, climbing back
    to ``target`` (epoch seconds)."""

    base: float = 1.0
    target: float = 1.0
    at: float = 0.0

    def factor(self, now: float) -> float:
        """The share of the published rate to pace at, ``now``."""
        t = max(0.0, now - self.at)
        fast_s = max(0.0, self.target - self.base) / FAST_PER_S
        if t < fast_s:
            return min(1.0, self.base + FAST_PER_S * t)
        return min(1.0, max(self.base, self.target) + SLOW_PER_S * (t - fast_s))

    def after_429(self, now: float) -> Learned:
        current = self.factor(now)
        return Learned(max(FLOOR, current * DECREASE), max(FLOOR, current * TARGET), now)


NOTHING_LEARNED = Learned()


class Lowered(IntEnum):
    """What a 429 did to a provider's learned factor."""

    held = 0  # another worker lowered it under HOLD_S ago: its figure stands
    lowered = 1
    lone = 2  # no other 429 within CONFIRM_S: noted, nothing lowered


class LearnedStore(Protocol):
    async def read(self, keys: Sequence[str]) -> list[Learned]: ...

    async def lower(self, key: str, learned: Learned, hold_s: float) -> Lowered:
        """A 429 came at ``learned.at``: note it, and write ``learned`` unless another
        decrease is under ``hold_s`` old or no other 429 came within ``CONFIRM_S`` before."""
        ...


class MemoryLearned:
    def __init__(self) -> None:
        self._kept: dict[str, Learned] = {}
        self._seen: dict[str, float] = {}  # key -> when its last 429 came

    async def read(self, keys: Sequence[str]) -> list[Learned]:
        return [self._kept.get(k, NOTHING_LEARNED) for k in keys]

    async def lower(self, key: str, learned: Learned, hold_s: float) -> Lowered:
        seen = self._seen.get(key)
        self._seen[key] = learned.at
        if seen is None or learned.at - seen >= CONFIRM_S:
            return Lowered.lone
        kept = self._kept.get(key)
        if kept is not None and learned.at - kept.at < hold_s:
            return Lowered.held
        self._kept[key] = learned
        return Lowered.lowered


_LOWER = """
local now = tonumber(ARGV[3])
local seen = tonumber(redis.call('HGET', KEYS[1], 'seen') or '')
redis.call('HSET', KEYS[1], 'seen', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
if seen == nil or now - seen >= tonumber(ARGV[6]) then return 2 end
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or '0')
if now - at < tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'base', ARGV[1], 'target', ARGV[2], 'at', ARGV[3])
return 1
"""
KEEP_S = 7 * 86_400  # a learned factor is forgotten a week after its last 429


class RedisLearned:
    def __init__(self, client: Redis) -> None:
        self._client = client
        self._lower = client.register_script(_LOWER)

    async def read(self, keys: Sequence[str]) -> list[Learned]:
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key, ["base", "target", "at"])
            rows = await pipe.execute()
        return [
            NOTHING_LEARNED
            if row[2] is None
            else Learned(float(row[0]), float(row[1]), float(row[2]))
            for row in rows
        ]

    async def lower(self, key: str, learned: Learned, hold_s: float) -> Lowered:
        args: list[str | int] = [repr(learned.base), repr(learned.target), repr(learned.at)]
        args += [repr(hold_s), KEEP_S, repr(CONFIRM_S)]
        return Lowered(int(await self._lower([key], args)))


def learned_key(prefix: str, provider: str) -> str:
    return f"{prefix}:{provider}:learned"


class LearnedRates:
    """A process's copy of every provider's learned factor, read from the store at most every
    ``REFRESH_S``; :meth:`factor` answers synchronously (plans are built without I/O)."""

    def __init__(self, store: LearnedStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix
        self._known: dict[str, Learned] = {}
        self._read_at = -REFRESH_S

    def factor(self, provider: str, now: float) -> float:
        return self._known.get(provider, NOTHING_LEARNED).factor(now)

    async def refresh(self, providers: Sequence[str], now: float) -> None:
        if now - self._read_at < REFRESH_S or not providers:
            return
        self._read_at = now
        found = await self.store.read([learned_key(self.prefix, p) for p in providers])
        self._known.update(zip(providers, found, strict=True))

    async def rate_limited(self, provider: str, now: float) -> float:
        """A 429 that Relay's own buckets let through: lower the provider's factor (once per
        ``HOLD_S``, and only when it is not a lone one); returns the factor now in force."""
        lowered = self._known.get(provider, NOTHING_LEARNED).after_429(now)
        done = await self.store.lower(learned_key(self.prefix, provider), lowered, HOLD_S)
        if done is Lowered.lowered:
            self._known[provider] = lowered
        elif done is Lowered.held:  # another worker lowered it just now: take its figure
            (self._known[provider],) = await self.store.read([learned_key(self.prefix, provider)])
        return self.factor(provider, now)
