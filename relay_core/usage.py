"""Usage counters: requests, tokens in and out, errors and 429s per day, gateway key,
provider and model — for ``GET /v1/usage``.

One Redis hash per gateway key and UTC day, ``{prefix}:usage:{owner}:{YYYY-MM-DD}``, with
fields ``{provider}|{model}|{counter}``; a set ``{prefix}:usage-days:{owner}`` lists the days.
The executor reports every upstream call (:class:`UsageSink` is an event sink), so a request
that failed over counts once on each provider it tried. Everything expires after
``RELAY_USAGE_RETENTION_DAYS``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from redis.asyncio import Redis

from relay_core.errors import RateLimited, UpstreamQuotaExhausted
from relay_core.events import CallRecord

INTERNAL = "internal"  # calls made for no gateway key
RATE_LIMIT_ERRORS = frozenset({RateLimited.__name__, UpstreamQuotaExhausted.__name__})
SECONDS_PER_DAY = 86_400


def usage_key(prefix: str, owner: str, day: str) -> str:
    return f"{prefix}:usage:{owner}:{day}"


def days_key(prefix: str, owner: str) -> str:
    return f"{prefix}:usage-days:{owner}"


def day_of(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).date().isoformat()


@dataclass
class UsageRow:
    date: str
    provider: str
    model: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: int = 0
    rate_limited: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


COUNTERS = ("requests", "prompt_tokens", "completion_tokens", "errors", "rate_limited")


class UsageSink:
    """An :class:`~relay_core.events.EventSink` counting each call (one pipeline per call)."""

    def __init__(self, redis: Redis, prefix: str, retention_days: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_s = retention_days * SECONDS_PER_DAY

    async def call_finished(self, record: CallRecord) -> None:
        owner = record.owner or INTERNAL
        day = day_of(record.at)
        key = usage_key(self.prefix, owner, day)
        base = f"{record.provider}|{record.model}|"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, base + "requests", 1)
            if record.prompt_tokens:
                pipe.hincrby(key, base + "prompt_tokens", record.prompt_tokens)
            if record.completion_tokens:
                pipe.hincrby(key, base + "completion_tokens", record.completion_tokens)
            if not record.ok:
                pipe.hincrby(key, base + "errors", 1)
            if record.error in RATE_LIMIT_ERRORS:
                pipe.hincrby(key, base + "rate_limited", 1)
            pipe.expire(key, self.ttl_s)
            pipe.sadd(days_key(self.prefix, owner), day)
            pipe.expire(days_key(self.prefix, owner), self.ttl_s)
            await pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _rows(day: str, counters: dict[bytes | str, bytes | str]) -> Iterable[UsageRow]:
    rows: dict[tuple[str, str], UsageRow] = {}
    for raw_field, raw_value in counters.items():
        provider, _, rest = _text(raw_field).partition("|")
        model, _, counter = rest.rpartition("|")
        if counter not in COUNTERS:
            continue
        row = rows.setdefault((provider, model), UsageRow(day, provider, model))
        setattr(row, counter, int(_text(raw_value)))
    return rows.values()


async def read_usage(
    redis: Redis,
    prefix: str,
    owner: str,
    *,
    day: str | None = None,
    provider: str | None = None,
    model: str | None = None,
) -> list[UsageRow]:
    """``owner``'s counters for ``day`` (default: every day kept), optionally narrowed."""
    if day is not None:
        days = [day]
    else:
        days = sorted(_text(d) for d in await redis.smembers(days_key(prefix, owner)))
    async with redis.pipeline(transaction=False) as pipe:
        for d in days:
            pipe.hgetall(usage_key(prefix, owner, d))
        found = await pipe.execute()
    out = [row for d, counters in zip(days, found, strict=True) for row in _rows(d, counters)]
    out = [
        r
        for r in out
        if (provider is None or r.provider == provider) and (model is None or r.model == model)
    ]
    return sorted(out, key=lambda r: (r.date, r.provider, r.model))
