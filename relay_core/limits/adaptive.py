r"""Concurrency learned by AIMD, for providers whose concurrency limit is unknown or shared.

Some providers publish no concurrency limit but enforce one: OpenRouter's ``:free`` models
(shared with every other user of the key), a local Ollama (as many calls as it has slots).
For a provider or model whose catalogue limits say ``adaptive_concurrency: true``, Relay
learns the limit the way TCP learns a congestion window:

* **additive increase**: each call that succeeds while the cap was binding (the other calls
  in flight filled it, less one) raises the limit by ``INCREASE / limit``, about
  ``INCREASE`` per round of ``limit`` calls, while a cut is recent;
* **slow start** once the limit is free (nothing cut it yet, or it probed the slot count
  that last failed and held there): each binding success adds up to ``SLOW_START`` slot
  more, so the limit grows by up to half per round of ``limit`` calls (TCP's window doubles
  before its first loss; half as fast overshoots by half as much before the first 429 comes
  back). After a cut it comes in as the limit moves past the slot count that failed (in full
  ``NEAR`` times past it: :func:`step`, TCP CUBIC's shape), because the count of leases is
  not the provider's (a lease is held a little before and after the call) and a probe can
  pass that the provider never saw: there, growth stays slow and the next 429 comes before
  a burst of them. A limit that was raised is found in a few rounds instead of many;
* **multiplicative decrease**: a 429, a 5xx or a timeout cuts it to ``DECREASE`` times,
  once per generation of calls: a failure of a call that started before the last cut says
  nothing new (it was sent under the old limit), so a burst of failures cuts it once;
* **a hold**: after a cut the limit regrows quickly to just under the slot count that
  failed, and stays there for ``HOLD`` binding successes before trying it again (for
  ``PROBE`` successes, then growing past it). Without it
  a small limit is probed every few calls (at a hidden 5: 15 % of calls were 429s); with
  it, at most one 429 per ``HOLD`` calls in steady state. A limit that was raised meanwhile
  is found once the hold ends: the probe holds, and slow start takes the limit up.

``FLOOR <= limit <= CEILING`` (and never above a published ``concurrency``). The limit is
a hash in Redis (``{prefix}:{scope}:aimd``: ``limit``, ``cut``, ``peak``, ``since``),
changed by one Lua script per event so every worker shares it; each worker reads it at
most every ``REFRESH_S`` and takes the figure each of its own updates returns (the same bargain as
:mod:`relay_core.limits.learned`, which learns hidden *rates*). The concurrency cap itself is
an ordinary one (:class:`~relay_core.limits.specs.ConcurrencySpec`, ``floor(limit)`` slots).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from relay_core.catalogue.models import ModelConfig, ProviderConfig
from relay_core.limits.backends.memory import MemoryBackend
from relay_core.limits.learned import REFRESH_S
from relay_core.limits.plan import scope_of

START = 8.0  # the limit before anything was learned
INCREASE = 2.0  # per round of ``limit`` calls that succeed while the cap binds
DECREASE = 0.75  # the limit after an overload, times the one in force
HOLD = 40  # successes after a cut before the slot count that failed is tried again
PROBE = 8  # successes at that slot count before the limit grows past it
SLOW_START = 0.5  # slots per binding success while the limit is free (x1.5 per round)
NEAR = 0.5  # past the slot count that failed by this share of it, slow start is in full
FLOOR = 1.0
CEILING = 256.0
KEEP_S = 86_400  # a learned limit is forgotten a day after its last change
NO_PEAK = CEILING + 1  # no overload seen: nothing holds the growth back
FREE = HOLD + PROBE  # binding successes after which a cut holds nothing back


def binds(limit: float, leases: int, since: int) -> bool:
    """Whether a success seen with ``leases`` calls in flight (its own included) says the
    cap was in use: filled but for one slot (a freed slot waits a moment for the next
    call), or to its last slot while the limit probes the slot count that failed (a
    success that left that slot unused proves nothing about it)."""
    slack = 0 if HOLD <= since < FREE else 1
    return leases >= math.floor(limit) - slack


def grown(limit: float, leases: int, peak: float = NO_PEAK, since: int = FREE) -> float:
    """``limit`` after a success seen with ``leases`` calls in flight (its own included),
    ``since`` binding successes after the cut from ``peak``."""
    if not binds(limit, leases, since):
        return limit  # the cap did not bind: nothing learned about it
    return max(limit, min(CEILING, limit + step(limit, peak, since), held(peak, since)))


def step(limit: float, peak: float, since: int) -> float:
    """What one binding success adds: ``INCREASE / limit`` after a cut; once free, up to
    ``SLOW_START`` more, in full before any overload, else in proportion to how far past the
    slot count that last failed the limit is (full at ``NEAR`` times past it): slow where a
    limit was met, fast where none was (TCP CUBIC's shape)."""
    if since < FREE:
        return INCREASE / limit
    if peak >= NO_PEAK:
        return SLOW_START
    away = (limit - peak) / (NEAR * peak)
    return INCREASE / limit + SLOW_START * min(1.0, max(0.0, away))


def held(peak: float, since: int) -> float:
    """How high the limit may grow ``since`` binding successes after a cut from ``peak``:
    just under the slot count that failed during the hold, then that slot count once more
    (a probe), then as high as successes take it."""
    if since < HOLD:
        return math.floor(peak) - 0.001
    if since < HOLD + PROBE:
        return math.floor(peak) + 0.25
    return CEILING


def cut(limit: float) -> float:
    return max(FLOOR, limit * DECREASE)


class AdaptiveStore(Protocol):
    async def read(self, keys: Sequence[str]) -> list[float | None]: ...

    async def succeeded(self, key: str, leases_key: str, now: float) -> float:
        """Grow the limit at ``key`` if the cap at ``leases_key`` binds; the limit now."""
        ...

    async def overloaded(self, key: str, started: float, now: float) -> float:
        """Cut the limit unless the failed call started before the last cut; the limit now."""
        ...


@dataclass(slots=True)
class _Kept:
    limit: float = START
    at: float = 0.0  # when last cut
    peak: float = NO_PEAK  # the limit the last overload came at
    since: int = FREE  # binding successes since


class MemoryAdaptive:
    """The same semantics in Python (unit tests), counting the leases ``backend`` holds."""

    def __init__(self, backend: MemoryBackend) -> None:
        self.backend = backend
        self.kept: dict[str, _Kept] = {}

    async def read(self, keys: Sequence[str]) -> list[float | None]:
        return [self.kept[k].limit if k in self.kept else None for k in keys]

    async def succeeded(self, key: str, leases_key: str, now: float) -> float:
        k = self.kept.setdefault(key, _Kept())
        leases = self.backend.leases(leases_key, now)
        if binds(k.limit, leases, k.since):
            k.limit, k.since = grown(k.limit, leases, k.peak, k.since), k.since + 1
        return k.limit

    async def overloaded(self, key: str, started: float, now: float) -> float:
        k = self.kept.setdefault(key, _Kept())
        if started >= k.at:
            k.peak, k.limit, k.at, k.since = k.limit, cut(k.limit), now, 0
        return k.limit


# KEYS[1]: the limit's hash, KEYS[2]: the cap's lease set. ARGV: now, start, increase,
# ceiling, keep, hold, no peak, probe, free, slow start, near. Leases are scored by their
# expiry: those after ``now`` are in flight. The same arithmetic as :func:`binds`,
# :func:`grown`, :func:`step` and :func:`held`.
_SUCCEEDED = """
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit') or ARGV[2])
local peak = tonumber(redis.call('HGET', KEYS[1], 'peak') or ARGV[7])
local since = tonumber(redis.call('HGET', KEYS[1], 'since') or ARGV[9])
local leases = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[1], '+inf')
local slack = 1
if since >= tonumber(ARGV[6]) and since < tonumber(ARGV[9]) then slack = 0 end
if leases >= math.floor(limit) - slack then
  local cap = tonumber(ARGV[4])  -- the ceiling
  if since < tonumber(ARGV[6]) then
    cap = math.floor(peak) - 0.001
  elseif since < tonumber(ARGV[6]) + tonumber(ARGV[8]) then
    cap = math.floor(peak) + 0.25
  end
  local step = tonumber(ARGV[3]) / limit
  if since >= tonumber(ARGV[9]) then
    if peak >= tonumber(ARGV[7]) then
      step = tonumber(ARGV[10])
    else
      local away = (limit - peak) / (tonumber(ARGV[11]) * peak)
      step = step + tonumber(ARGV[10]) * math.min(1, math.max(0, away))
    end
  end
  local grown = math.min(tonumber(ARGV[4]), limit + step, cap)
  limit = math.max(limit, grown)
  redis.call('HSET', KEYS[1], 'since', since + 1)
end
redis.call('HSET', KEYS[1], 'limit', string.format('%.17g', limit))
redis.call('EXPIRE', KEYS[1], ARGV[5])
return string.format('%.17g', limit)
"""
# KEYS[1]: the limit's hash. ARGV: now, started, start, decrease, floor, keep.
_OVERLOADED = """
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit') or ARGV[3])
local at = tonumber(redis.call('HGET', KEYS[1], 'cut') or '0')
if tonumber(ARGV[2]) >= at then
  local peak = limit
  limit = math.max(tonumber(ARGV[5]), limit * tonumber(ARGV[4]))
  redis.call('HSET', KEYS[1], 'limit', string.format('%.17g', limit), 'cut', ARGV[1],
    'peak', string.format('%.17g', peak), 'since', 0)
  redis.call('EXPIRE', KEYS[1], ARGV[6])
end
return string.format('%.17g', limit)
"""


class RedisAdaptive:
    def __init__(self, client: Redis) -> None:
        self._client = client
        self._succeeded = client.register_script(_SUCCEEDED)
        self._overloaded = client.register_script(_OVERLOADED)

    async def read(self, keys: Sequence[str]) -> list[float | None]:
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(key, "limit")
            rows = await pipe.execute()
        return [None if row is None else float(row) for row in rows]

    async def succeeded(self, key: str, leases_key: str, now: float) -> float:
        args: list[str | int] = [repr(now), repr(START), repr(INCREASE), repr(CEILING), KEEP_S]
        args += [HOLD, repr(NO_PEAK), PROBE, FREE, repr(SLOW_START), repr(NEAR)]
        return float(await self._succeeded([key, leases_key], args))

    async def overloaded(self, key: str, started: float, now: float) -> float:
        args: list[str | int] = [repr(now), repr(started), repr(START), repr(DECREASE)]
        args += [repr(FLOOR), KEEP_S]
        return float(await self._overloaded([key], args))


def adaptive_key(prefix: str, scope: str) -> str:
    return f"{prefix}:{scope}:aimd"


def leases_key(prefix: str, scope: str) -> str:
    """The lease set of ``scope``'s concurrency cap (the key :mod:`plan` gives it)."""
    return f"{prefix}:{scope}:concurrency"


class AdaptiveCaps:
    """A process's copy of every adaptive scope's learned limit (``provider`` or
    ``provider/model``); :meth:`slots` answers synchronously (plans are built without I/O)."""

    def __init__(self, store: AdaptiveStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix
        self._known: dict[str, float] = {}
        self._read_at = -REFRESH_S

    def limit(self, scope: str) -> float:
        return self._known.get(scope, START)

    def slots(self, scope: str) -> int:
        """The concurrency cap in force for ``scope``: whole slots of the learned limit."""
        return max(1, math.floor(self.limit(scope)))

    async def refresh(self, scopes: Sequence[str], now: float) -> None:
        if now - self._read_at < REFRESH_S or not scopes:
            return
        self._read_at = now
        found = await self.store.read([adaptive_key(self.prefix, s) for s in scopes])
        for scope, limit in zip(scopes, found, strict=True):
            self._known[scope] = START if limit is None else limit

    async def succeeded(self, scope: str, now: float) -> None:
        key, leases = adaptive_key(self.prefix, scope), leases_key(self.prefix, scope)
        self._known[scope] = await self.store.succeeded(key, leases, now)

    async def overloaded(self, scope: str, started: float, now: float) -> float:
        limit = await self.store.overloaded(adaptive_key(self.prefix, scope), started, now)
        self._known[scope] = limit
        return limit


def adaptive_scopes(provider: ProviderConfig, model: ModelConfig) -> list[str]:
    """The scopes of a call to ``model`` whose concurrency is learned (provider, model)."""
    found = [provider.name] if provider.limits.adaptive_concurrency else []
    if model.limits is not None and model.limits.adaptive_concurrency:
        found.append(scope_of(provider.name, model.id))
    return found
