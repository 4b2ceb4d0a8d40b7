"""Circuit breakers per provider and per provider/model, shared by every worker.

closed -> open (consecutive failures, or failure ratio over a window) -> half-open after a
cool-down that doubles on each failed probe -> exactly one probe -> closed or open again.
See docs/limits.md.
"""

from __future__ import annotations

from relay_core.breaker.backends import BreakerBackend, MemoryBackend, RedisBackend
from relay_core.breaker.breaker import Breaker
from relay_core.breaker.policy import (
    BreakerPolicy,
    BreakerState,
    BreakerStatus,
    DisabledKey,
    Permit,
    fingerprint,
)

__all__ = [
    "Breaker",
    "BreakerBackend",
    "BreakerPolicy",
    "BreakerState",
    "BreakerStatus",
    "DisabledKey",
    "MemoryBackend",
    "Permit",
    "RedisBackend",
    "fingerprint",
]
