"""The last minutes of calls per provider: counted by the sink, read back in bins."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fakeredis
import pytest

from relay_core.errors import RateLimited, UpstreamUnavailable
from relay_core.events import CallRecord
from relay_core.metrics.recent import BIN_S, RecentSink, bin_of, read_recent

NOW = 1_700_000_002.0  # 2 s into a bin


@pytest.fixture
async def redis() -> AsyncIterator[fakeredis.FakeAsyncRedis]:
    client = fakeredis.FakeAsyncRedis()
    yield client
    await client.aclose()


def call(provider: str, at: float, latency_s: float, error: type | None = None) -> CallRecord:
    return CallRecord(
        provider=provider,
        model="m",
        owner=None,
        kind="interactive",
        ok=error is None,
        error=error,
        latency_s=latency_s,
        queue_wait_s=0.0,
        at=at,
    )


async def test_calls_are_counted_in_their_bins_with_errors_and_429s(redis) -> None:
    sink = RecentSink(redis, "t")
    for _ in range(8):
        await sink.call_finished(call("groq", NOW - 1, 0.04))
    await sink.call_finished(call("groq", NOW - 1, 0.4, RateLimited))
    await sink.call_finished(call("groq", NOW - 2 * BIN_S, 3.0, UpstreamUnavailable))
    await sink.call_finished(call("gemini", NOW - 1, 0.2))
    await sink.aclose()

    found = await read_recent(redis, "t", ["groq", "gemini", "idle"], NOW, window_s=60)

    groq = found["groq"]
    assert len(groq.bins) == 60 // BIN_S
    assert groq.bins[-1].start == bin_of(NOW - 1)
    assert (groq.bins[-1].requests, groq.bins[-1].rate_limited) == (9, 1)
    assert (groq.bins[-3].requests, groq.bins[-3].errors) == (1, 1)
    assert (groq.requests, groq.errors, groq.rate_limited) == (10, 2, 1)
    assert groq.error_rate == pytest.approx(0.2)
    # 8 of 10 at most 50 ms, one at most 0.5 s, one at most 5 s
    assert groq.latency_s == {"p50": 0.05, "p95": 5.0, "p99": 5.0}
    assert found["gemini"].requests == 1
    assert found["idle"].requests == 0
    assert found["idle"].latency_s == {"p50": None, "p95": None, "p99": None}


async def test_calls_older_than_the_window_are_left_out(redis) -> None:
    sink = RecentSink(redis, "t")
    await sink.call_finished(call("groq", NOW - 120, 0.1))
    await sink.call_finished(call("groq", NOW, 0.1))
    await sink.aclose()

    found = await read_recent(redis, "t", ["groq"], NOW, window_s=60)

    assert found["groq"].requests == 1
    assert await redis.ttl(f"t:recent:groq:{bin_of(NOW)}") > 0  # every bin expires
