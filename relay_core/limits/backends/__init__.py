"""Storage for global limits: Redis (one Lua script per operation) and in-memory (tests)."""

from __future__ import annotations

from relay_core.limits.backends.base import LimitBackend
from relay_core.limits.backends.memory import MemoryBackend
from relay_core.limits.backends.redis import RedisBackend

__all__ = ["LimitBackend", "MemoryBackend", "RedisBackend"]
