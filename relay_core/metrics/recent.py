"""The last minutes of upstream calls per provider, in Redis: for the console's pool page.

Prometheus keeps the long history (``/metrics``); this keeps just enough, shared by every worker,
for a page to show requests per second, 429s, errors and latency percentiles *now* without a
Prometheus server. Each worker counts its calls (an :class:`~relay_core.events.EventSink`) into
bins of :data:`BIN_S` seconds, one Redis hash per provider and bin,
``{prefix}:recent:{provider}:{bin start}``, written every :data:`FLUSH_S` by a
:class:`~relay_core.tally.Tally` and expiring after :data:`KEEP_S`. Latencies are counted in
the fixed buckets of :data:`LATENCY_BOUNDS_S`, so a percentile is read as "at most this bound".
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence

from pydantic import BaseModel
from redis.asyncio import Redis

from relay_core.events import CallRecord
from relay_core.tally import Tally
from relay_core.usage import RATE_LIMIT_ERRORS

BIN_S = 5
KEEP_S = 900  # bins older than this are gone
WINDOW_S = 300  # what read_recent reads unless told
FLUSH_S = 1.0
LATENCY_BOUNDS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, math.inf)
COUNTS = ("requests", "errors", "rate_limited")
PERCENTILES = (0.5, 0.95, 0.99)


def recent_key(prefix: str, provider: str, start: int) -> str:
    return f"{prefix}:recent:{provider}:{start}"


def bin_of(epoch_s: float) -> int:
    return int(epoch_s // BIN_S) * BIN_S


class RecentBin(BaseModel):
    """One bin of one provider: its start (epoch s) and what its calls came to."""

    start: int
    requests: int = 0
    errors: int = 0
    rate_limited: int = 0


class RecentCalls(BaseModel):
    """One provider's calls over the window read, oldest bin first (every bin, empty ones too)."""

    bins: list[RecentBin]
    requests: int
    errors: int
    rate_limited: int
    error_rate: float  # errors / requests (0.0 with no request)
    latency_s: dict[str, float | None]  # "p50" | "p95" | "p99" -> upper bound, None when unknown


class RecentSink:
    """Counts each upstream call into its provider's current bin."""

    def __init__(self, redis: Redis, prefix: str, flush_s: float = FLUSH_S) -> None:
        self.redis = redis
        self.prefix = prefix
        self.tally: Tally[tuple[str, int, str]] = Tally(self._write, flush_s, "recent calls")

    async def call_finished(self, record: CallRecord) -> None:
        key = (record.provider, bin_of(record.at))
        self.tally.add((*key, "requests"))
        if not record.ok:
            self.tally.add((*key, "errors"))
        if record.error is not None and issubclass(record.error, RATE_LIMIT_ERRORS):
            self.tally.add((*key, "rate_limited"))
        slot = bisect.bisect_left(LATENCY_BOUNDS_S, record.latency_s)
        self.tally.add((*key, f"lat{min(slot, len(LATENCY_BOUNDS_S) - 1)}"))

    async def aclose(self) -> None:
        await self.tally.aclose()

    async def _write(self, counts: Mapping[tuple[str, int, str], int]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for (provider, start, field), n in counts.items():
                pipe.hincrby(recent_key(self.prefix, provider, start), field, n)
            for provider, start in {(p, s) for p, s, _ in counts}:
                pipe.expire(recent_key(self.prefix, provider, start), KEEP_S)
            await pipe.execute()


def _percentile(histogram: Sequence[int], q: float) -> float | None:
    total = sum(histogram)
    if not total:
        return None
    seen = 0
    for bound, n in zip(LATENCY_BOUNDS_S, histogram, strict=True):
        seen += n
        if seen >= q * total:
            return None if math.isinf(bound) else bound
    return None


def _summary(bins: list[RecentBin], histogram: list[int]) -> RecentCalls:
    requests = sum(b.requests for b in bins)
    errors = sum(b.errors for b in bins)
    return RecentCalls(
        bins=bins,
        requests=requests,
        errors=errors,
        rate_limited=sum(b.rate_limited for b in bins),
        error_rate=errors / requests if requests else 0.0,
        latency_s={f"p{round(q * 100)}": _percentile(histogram, q) for q in PERCENTILES},
    )


async def read_recent(
    redis: Redis, prefix: str, providers: Sequence[str], now: float, window_s: int = WINDOW_S
) -> dict[str, RecentCalls]:
    """The calls of each of ``providers`` over the last ``window_s`` (one round trip)."""
    starts = list(range(bin_of(now - window_s) + BIN_S, bin_of(now) + BIN_S, BIN_S))
    async with redis.pipeline(transaction=False) as pipe:
        for name in providers:
            for start in starts:
                pipe.hgetall(recent_key(prefix, name, start))
        found = iter(await pipe.execute())
    out: dict[str, RecentCalls] = {}
    for name in providers:
        bins: list[RecentBin] = []
        histogram = [0] * len(LATENCY_BOUNDS_S)
        for start in starts:
            fields = {_text(k): int(_text(v)) for k, v in next(found).items()}
            bins.append(RecentBin(start=start, **{c: fields.get(c, 0) for c in COUNTS}))
            for i in range(len(histogram)):
                histogram[i] += fields.get(f"lat{i}", 0)
        out[name] = _summary(bins, histogram)
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
