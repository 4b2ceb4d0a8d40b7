"""Storage for circuit breakers: Redis (one Lua script per operation) and in-memory (tests)."""

from __future__ import annotations

from relay_core.breaker.backends.base import BreakerBackend
from relay_core.breaker.backends.memory import MemoryBackend
from relay_core.breaker.backends.redis import RedisBackend

__all__ = ["BreakerBackend", "MemoryBackend", "RedisBackend"]
