"""Test support shared by the limits and breaker suites: a clock and Redis clean-up."""

from __future__ import annotations

from datetime import UTC, datetime

from redis.asyncio import Redis

REDIS_URL = "redis://127.0.0.1:6379/0"
START = datetime(2025, 1, 15, 12, 0, tzinfo=UTC).timestamp()


class Clock:
    """Time as the tests say it is (epoch seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


async def drop_prefix(client: Redis, prefix: str) -> None:
    """Delete every key under ``prefix``."""
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
