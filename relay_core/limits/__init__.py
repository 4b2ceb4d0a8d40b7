"""Global rate limits shared by every API process and worker.

    limiter = Limiter(RedisBackend(redis_client), settings.key("limits"))
    plan = limiter.plan(provider, model, now=time.time())
    decision = await limiter.acquire(plan, cost_tokens=estimate, lease_id=task_id, now=time.time())
    ...call upstream...
    await limiter.release(plan, task_id, actual_tokens, estimate, now=time.time())

See docs/limits.md for the algorithms and the Redis keys.
"""

from __future__ import annotations

from relay_core.limits.backends import LimitBackend, MemoryBackend, RedisBackend
from relay_core.limits.daily import DailyWindow, daily_window
from relay_core.limits.feedback import pause_scope, remaining_from
from relay_core.limits.limiter import Limiter
from relay_core.limits.plan import build_specs, pause_key, scope_of
from relay_core.limits.specs import (
    BucketSpec,
    Capacity,
    ConcurrencySpec,
    CounterSpec,
    Decision,
    Level,
    LimitPlan,
    Reason,
    Remaining,
)

__all__ = [
    "BucketSpec",
    "Capacity",
    "ConcurrencySpec",
    "CounterSpec",
    "DailyWindow",
    "Decision",
    "Level",
    "LimitBackend",
    "LimitPlan",
    "Limiter",
    "MemoryBackend",
    "Reason",
    "RedisBackend",
    "Remaining",
    "build_specs",
    "daily_window",
    "pause_key",
    "pause_scope",
    "remaining_from",
    "scope_of",
]
