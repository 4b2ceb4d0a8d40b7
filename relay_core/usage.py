"""Usage counters: requests, tokens in and out, errors and 429s per day, gateway key,
provider and model — for ``GET /v1/usage``.

One Redis hash per gateway key and UTC day, ``{prefix}:usage:{owner}:{YYYY-MM-DD}``, with
fields ``{provider}|{model}|{counter}``; a set ``{prefix}:usage-days:{owner}`` lists the days.
The executor reports every upstream call (:class:`UsageSink` is an event sink), so a request
that failed over counts once on each provider it tried. Workers write their counts every
half second (:data:`FLUSH_S`), not once per call. Everything expires after
``RELAY_USAGE_RETENTION_DAYS``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

from relay_core.errors import RateLimited, UpstreamQuotaExhausted
from relay_core.events import CallRecord
from relay_core.tally import Tally

INTERNAL = "internal"  # calls made for no gateway key
RATE_LIMIT_ERRORS = (RateLimited, UpstreamQuotaExhausted)
SECONDS_PER_DAY = 86_400
FLUSH_S = 0.5  # how often a worker writes the counts it gathered


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
    estimated_tokens: int = 0  # of the tokens above, those Relay estimated (no upstream usage)
    cache_hits: int = 0  # answers served from the exact cache (no upstream call)
    cached_tokens: int = 0  # the tokens those answers held: no provider was asked for them

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


COUNTERS = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "errors",
    "rate_limited",
    "estimated_tokens",
    "cache_hits",
    "cached_tokens",
)


class UsageSink:
    """An :class:`~relay_core.events.EventSink` counting each call.

    The counts are written every ``flush_s`` (a :class:`~relay_core.tally.Tally`): one
    pipeline for all the calls of that half second, so ``GET /v1/usage`` lags by at most that.
    """

    def __init__(
        self, redis: Redis, prefix: str, retention_days: int, flush_s: float = FLUSH_S
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_s = retention_days * SECONDS_PER_DAY
        self.tally: Tally[tuple[str, str, str]] = Tally(self._write, flush_s, "usage counters")

    async def call_finished(self, record: CallRecord) -> None:
        owner, day = record.owner or INTERNAL, day_of(record.at)
        base = f"{record.provider}|{record.model}|"
        add = self.tally.add
        add((owner, day, base + "requests"))
        if record.prompt_tokens:
            add((owner, day, base + "prompt_tokens"), record.prompt_tokens)
        if record.completion_tokens:
            add((owner, day, base + "completion_tokens"), record.completion_tokens)
        if record.usage_estimated and record.prompt_tokens + record.completion_tokens:
            add(
                (owner, day, base + "estimated_tokens"),
                record.prompt_tokens + record.completion_tokens,
            )
        if not record.ok:
            add((owner, day, base + "errors"))
        if record.error is not None and issubclass(record.error, RATE_LIMIT_ERRORS):
            add((owner, day, base + "rate_limited"))

    async def flush(self) -> None:
        await self.tally.flush()

    async def aclose(self) -> None:
        await self.tally.aclose()

    async def _write(self, counts: Mapping[tuple[str, str, str], int]) -> None:
        days = {(owner, day) for owner, day, _ in counts}
        async with self.redis.pipeline(transaction=False) as pipe:
            for (owner, day, field), n in counts.items():
                pipe.hincrby(usage_key(self.prefix, owner, day), field, n)
            for owner, day in days:
                pipe.expire(usage_key(self.prefix, owner, day), self.ttl_s)
                pipe.sadd(days_key(self.prefix, owner), day)
            for owner in {owner for owner, _ in days}:
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
