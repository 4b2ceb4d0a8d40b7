"""The exact answer cache, in Redis: shared by every worker and API process.

``{prefix}:cache:{scope}:{digest}`` holds one :class:`CachedAnswer` (JSON) with its TTL, and
``{prefix}:near:{scope}:{near digest}`` a copy for near-duplicates (:mod:`.near`), when on;
``scope`` is the gateway key's owner id, or ``shared`` with ``RELAY_CACHE_SHARED``. Lookups
are counted in ``{prefix}:cache:stats`` (``{kind}|{result}`` fields: ``lookup``, ``hit``,
``store``; misses are lookups less hits) for ``/metrics``; a hit is counted in the owner's
usage as ``cache_hits`` and ``cached_tokens`` (tokens no provider was asked for).

Only a whole, successful answer is stored: never an error, an empty answer, one cut short
(``finish_reason`` ``length`` or ``content_filter``), or one that failed its response_format.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pydantic import BaseModel
from redis.asyncio import Redis

from relay_core.dispatch.envelope import Reply
from relay_core.schemas.chat import ChatCompletion
from relay_core.settings import Settings
from relay_core.usage import INTERNAL, SECONDS_PER_DAY, day_of, days_key, usage_key

SHARED = "shared"
CUT_SHORT = frozenset({"length", "content_filter"})


EXACT, NEAR = "exact", "near"


@dataclass(frozen=True, slots=True)
class CacheKeys:
    """A request's digests: the exact one, and its near-duplicate one when that is on."""

    exact: str
    near: str | None = None


class CachedAnswer(BaseModel):
    completion: ChatCompletion
    provider: str
    model: str
    stored_at: float


def storable(reply: Reply) -> bool:
    """A whole, successful, non-empty answer that passed its checks."""
    body = reply.completion
    if not reply.ok or reply.cached or body is None or not body.choices:
        return False
    if reply.checks and not reply.checks[-1].valid:
        return False
    for choice in body.choices:
        if choice.finish_reason in CUT_SHORT:
            return False
        if not (choice.message.content or "").strip() and not choice.message.tool_calls:
            return False
    return True


def stats_key(prefix: str) -> str:
    return f"{prefix}:cache:stats"


class AnswerCache:
    def __init__(self, redis: Redis, prefix: str, *, shared: bool, retention_s: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.shared = shared
        self.retention_s = retention_s  # how long the usage counters are kept

    @classmethod
    def from_settings(cls, redis: Redis, settings: Settings) -> AnswerCache:
        retention_s = settings.usage_retention_days * SECONDS_PER_DAY
        return cls(
            redis, settings.key_prefix, shared=settings.cache_shared, retention_s=retention_s
        )

    def key(self, owner: str | None, digest: str, space: str = "cache") -> str:
        scope = SHARED if self.shared else (owner or "anonymous")
        return f"{self.prefix}:{space}:{scope}:{digest}"

    def _keys(self, owner: str | None, keys: CacheKeys) -> list[str]:
        found = [self.key(owner, keys.exact)]
        if keys.near is not None:
            found.append(self.key(owner, keys.near, NEAR))
        return found

    async def get(self, owner: str | None, keys: CacheKeys, kind: str) -> Found | None:
        """The cached answer (the exact key's before the near-duplicate's), or None. One round
        trip for a miss (the reads and the lookup's count together), one more for a hit (its
        counts, in stats and the owner's usage)."""
        names = self._keys(owner, keys)
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.get(name)
            pipe.hincrby(stats_key(self.prefix), f"{kind}|lookup")
            *raws, _ = await pipe.execute()
        for match, raw in zip((EXACT, NEAR), raws, strict=False):
            if raw is not None:
                found = Found(CachedAnswer.model_validate_json(raw), match)
                await self._count_hit(owner, found, kind)
                return found
        return None

    async def put(
        self, owner: str | None, keys: CacheKeys, reply: Reply, ttl_s: int, kind: str
    ) -> bool:
        """Store ``reply`` under its exact key (and its near-duplicate key, when it has one)."""
        if ttl_s <= 0 or not storable(reply) or reply.completion is None:
            return False
        entry = CachedAnswer(
            completion=reply.completion,
            provider=reply.provider or "",
            model=reply.model or "",
            stored_at=time.time(),
        )
        value = entry.model_dump_json(exclude_none=True)
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in self._keys(owner, keys):
                pipe.set(name, value, ex=ttl_s)
            pipe.hincrby(stats_key(self.prefix), f"{kind}|store")
            await pipe.execute()
        return True

    async def _count_hit(self, owner: str | None, hit: Found, kind: str) -> None:
        """The hit in the owner's usage (``GET /v1/usage``): no provider token was spent."""
        owner, found = owner or INTERNAL, hit.answer
        day = day_of(time.time())
        usage = found.completion.usage
        tokens = usage.total_tokens if usage is not None else 0
        base = f"{found.provider}|{found.model}|"
        key = usage_key(self.prefix, owner, day)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(stats_key(self.prefix), f"{kind}|hit")
            if hit.match == NEAR:
                pipe.hincrby(stats_key(self.prefix), f"{kind}|near_hit")
            pipe.hincrby(key, base + "cache_hits", 1)
            if tokens:
                pipe.hincrby(key, base + "cached_tokens", tokens)
            pipe.expire(key, self.retention_s)
            pipe.sadd(days_key(self.prefix, owner), day)
            pipe.expire(days_key(self.prefix, owner), self.retention_s)
            await pipe.execute()


async def read_stats(redis: Redis, prefix: str) -> dict[tuple[str, str], int]:
    """``{(kind, result): count}`` for results ``hit``, ``miss`` and ``store`` (misses are the
    lookups that were not hits)."""
    raw = await redis.hgetall(stats_key(prefix))
    counted: dict[tuple[str, str], int] = {}
    for field, value in raw.items():
        name = field.decode() if isinstance(field, bytes) else str(field)
        kind, _, result = name.partition("|")
        counted[(kind, result)] = int(value)
    out = {k: n for k, n in counted.items() if k[1] != "lookup"}
    for (kind, result), n in counted.items():
        if result == "lookup":
            out[(kind, "miss")] = n - counted.get((kind, "hit"), 0)
    return out


@dataclass(frozen=True, slots=True)
class Found:
    answer: CachedAnswer
    match: str  # EXACT or NEAR


def hit_reply(request_id: str, found: CachedAnswer) -> Reply:
    """A reply made from a cached answer: no upstream call, no attempt."""
    return Reply(
        id=request_id,
        ok=True,
        completion=found.completion,
        provider=found.provider,
        model=found.model,
        attempts=0,
        cached=True,
    )
