"""What each provider, model and gateway key spends, as time-decayed rates in Redis.

One hash per scope, ``{prefix}:spend:{scope}``, fields ``r`` (requests), ``t`` (tokens) and
``ts``: counts that decay by ``exp(-dt / tau)`` (an exponentially weighted moving average of
the rate is the decayed count over ``tau``). Decayed counts add up, so any number of workers
write the same hash with one Lua script each, never losing each other's. Scopes are the
limits' (``groq``, ``groq/llama-3.1-8b``) and the key quotas' (``key:{owner}``).

Workers count every upstream call (:class:`SpendSink`, an event sink) and write every
:data:`FLUSH_S`: a request that failed over counts on each provider it tried.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from relay_core.events import CallRecord
from relay_core.limits.quota import key_scope
from relay_core.tally import Tally

FLUSH_S = 0.5
KEY_SCOPE = key_scope("")

# KEYS[1]: the scope's hash. ARGV: now, tau, requests, tokens, ttl.
_ADD = """
local now, tau = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'r', 't', 'ts')
local ts = tonumber(v[3] or ARGV[1])
local k = math.exp(-math.max(0, now - ts) / tau)
local r = tonumber(v[1] or '0') * k + tonumber(ARGV[3])
local t = tonumber(v[2] or '0') * k + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'r', r, 't', t, 'ts', math.max(now, ts))
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


@dataclass(frozen=True, slots=True)
class Spend:
    """A scope's recent pace, per second."""

    requests: float = 0.0
    tokens: float = 0.0


IDLE = Spend()


class SpendStore:
    def __init__(self, redis: Redis, prefix: str, tau_s: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.tau_s = tau_s
        self._add = redis.register_script(_ADD)

    def key(self, scope: str) -> str:
        return f"{self.prefix}:spend:{scope}"

    @property
    def owners_key(self) -> str:
        """The set of owner ids with a key scope (``relay status`` lists them)."""
        return f"{self.prefix}:spend-owners"

    async def add(self, counts: Mapping[str, tuple[int, int]], now: float) -> None:
        """Add each scope's (requests, tokens): one round trip for them all."""
        if not counts:
            return
        ttl = math.ceil(10 * self.tau_s)
        pipe = self.redis.pipeline(transaction=False)
        for scope, (requests, tokens) in counts.items():
            args = [now, self.tau_s, requests, tokens, ttl]
            await self._add(keys=[self.key(scope)], args=args, client=pipe)
        owners = [s.removeprefix(KEY_SCOPE) for s in counts if s.startswith(KEY_SCOPE)]
        if owners:
            pipe.sadd(self.owners_key, *owners)
            pipe.expire(self.owners_key, ttl)
        await pipe.execute()

    async def owners(self) -> list[str]:
        """The owner ids that spent within the last ``10 x tau`` or so."""
        found = await self.redis.smembers(self.owners_key)
        return sorted(o.decode() if isinstance(o, bytes) else str(o) for o in found)

    async def read(self, scopes: Sequence[str], now: float) -> dict[str, Spend]:
        """Each scope's pace now (one round trip)."""
        if not scopes:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for scope in scopes:
                pipe.hmget(self.key(scope), "r", "t", "ts")
            rows = await pipe.execute()
        return {s: self._pace(row, now) for s, row in zip(scopes, rows, strict=True)}

    def _pace(self, row: Sequence[bytes | None], now: float) -> Spend:
        r, t, ts = (float(x) if x is not None else None for x in row)
        if ts is None:
            return IDLE
        k = math.exp(-max(0.0, now - ts) / self.tau_s) / self.tau_s
        return Spend((r or 0.0) * k, (t or 0.0) * k)


class SpendSink:
    """Counts each call against its provider, its model and its key; written every
    ``flush_s`` in one pipeline."""

    def __init__(
        self, store: SpendStore, flush_s: float = FLUSH_S, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.clock = clock
        self.tally: Tally[tuple[str, str]] = Tally(self._write, flush_s, "spend rates")

    async def call_finished(self, record: CallRecord) -> None:
        tokens = record.prompt_tokens + record.completion_tokens
        scopes = [record.provider, f"{record.provider}/{record.model}"]
        if record.owner is not None:
            scopes.append(key_scope(record.owner))
        for scope in scopes:
            self.tally.add((scope, "r"))
            if tokens:
                self.tally.add((scope, "t"), tokens)

    async def _write(self, counts: Mapping[tuple[str, str], int]) -> None:
        by_scope: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (scope, kind), n in counts.items():
            by_scope[scope][0 if kind == "r" else 1] += n
        await self.store.add({s: (r, t) for s, (r, t) in by_scope.items()}, self.clock())

    async def aclose(self) -> None:
        await self.tally.aclose()
