"""From the catalogue's published limits to a :class:`LimitPlan` of buckets, counters and caps.

Provider-level and model-level limits both apply: a call to ``groq/llama-3.1-8b`` takes from
``groq``'s buckets and from ``groq/llama-3.1-8b``'s. Keys (under ``prefix``)::

    {prefix}:{scope}:rpm | :tpm                 token buckets (hash: tokens, ts)
    {prefix}:{scope}:rpd:{day} | :tpd:{day}     daily counters (string: used)
    {prefix}:{scope}:concurrency                leases (sorted set: lease id -> expiry)
    {prefix}:{scope}:paused                     upstream said wait (string: until)

where ``scope`` is ``provider`` or ``provider/model`` (provider names never contain ``/``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from relay_core.catalogue.models import Limits, ModelConfig, ProviderConfig
from relay_core.limits.backends.base import amount_for
from relay_core.limits.daily import daily_window
from relay_core.limits.specs import (
    BucketSpec,
    ConcurrencySpec,
    CounterSpec,
    LimitPlan,
    Reason,
)

DAY_S = 86_400
# Pace 2 % under the published rate: over a one-second window that leaves 20 ms for the jitter
# between our clock and the provider's (see docs/limits.md, "Why strict pacing").
PACING_MARGIN = 0.02


def scope_of(provider: str, model: str | None = None) -> str:
    return provider if model is None else f"{provider}/{model}"


def pause_key(prefix: str, provider: str, model: str | None = None) -> str:
    return f"{prefix}:{scope_of(provider, model)}:paused"


def _buckets(prefix: str, scope: str, limits: Limits, factor: float = 1.0) -> list[BucketSpec]:
    # Strict pacing: requests are spaced evenly (a bucket of one), a little under the published
    # rate, so that no window a provider may count over (a minute, or a second) ever holds
    # more than its share, even with a few ms of jitter between us and the provider.
    found: list[BucketSpec] = []
    if limits.rpm is not None:
        rate = limits.rpm / 60 * (1 - PACING_MARGIN) * factor
        capacity = float(limits.burst) if limits.burst is not None else 1.0
        found.append(BucketSpec(f"{prefix}:{scope}:rpm", rate, capacity, Reason.rpm, scope))
    if limits.tpm is not None:
        rate = limits.tpm / 60 * (1 - PACING_MARGIN) * factor
        # A request larger than this may still start once the bucket is full (it leaves the
        # bucket in debt); see docs/limits.md, "Requests larger than the bucket".
        found.append(BucketSpec(f"{prefix}:{scope}:tpm", rate, max(1.0, rate), Reason.tpm, scope))
    return found


def _counters(
    prefix: str, scope: str, limits: Limits, daily_reset: str, now: float
) -> list[CounterSpec]:
    window = daily_window(daily_reset, now)
    # Keep a closed window readable for a day (status screens); it is never written again.
    ttl_s = math.ceil(window.resets_at - now) + DAY_S
    found: list[CounterSpec] = []
    for reason, limit in ((Reason.rpd, limits.rpd), (Reason.tpd, limits.tpd)):
        if limit is not None:
            key = f"{prefix}:{scope}:{reason}:{window.id}"
            found.append(CounterSpec(key, limit, ttl_s, window.resets_at, reason, scope))
    return found


def build_specs(
    prefix: str,
    provider: ProviderConfig,
    model: ModelConfig,
    now: float,
    *,
    lease_ttl_s: float | None = None,
    factor: float = 1.0,
    learned_slots: Callable[[str], int] | None = None,
) -> LimitPlan:
    """Every limit a call to ``model`` on ``provider`` must respect at ``now`` (epoch seconds).

    ``factor`` scales the RPM and TPM buckets: the share of the published rate learned from
    the provider's 429s (``relay_core.limits.learned``).

    ``learned_slots(scope)`` is the concurrency learned for a scope whose limits say
    ``adaptive_concurrency`` (``relay_core.limits.adaptive``); without it such a scope is
    capped by its published ``concurrency`` alone.

    ``lease_ttl_s`` bounds how long a concurrency slot outlives a worker that died holding it;
    by default twice the provider's timeout (a streaming call may need more: pass it).
    """
    ttl = lease_ttl_s if lease_ttl_s is not None else 2 * provider.timeout_s
    levels: list[tuple[str, Limits, str]] = [
        (provider.name, provider.limits, provider.limits.daily_reset)
    ]
    if model.limits is not None:
        inherited = "daily_reset" not in model.limits.model_fields_set
        reset = provider.limits.daily_reset if inherited else model.limits.daily_reset
        levels.append((scope_of(provider.name, model.id), model.limits, reset))
    buckets: list[BucketSpec] = []
    counters: list[CounterSpec] = []
    caps: list[ConcurrencySpec] = []
    for scope, limits, reset in levels:
        buckets += _buckets(prefix, scope, limits, factor)
        counters += _counters(prefix, scope, limits, reset, now)
        cap = limits.concurrency
        if limits.adaptive_concurrency and learned_slots is not None:
            learned = learned_slots(scope)
            cap = learned if cap is None else min(cap, learned)
        if cap is not None:
            key = f"{prefix}:{scope}:concurrency"
            caps.append(ConcurrencySpec(key, cap, ttl, scope))
    return LimitPlan(
        provider=provider.name,
        model=model.id,
        buckets=tuple(buckets),
        counters=tuple(counters),
        concurrency=tuple(caps),
        pauses=(pause_key(prefix, provider.name), pause_key(prefix, provider.name, model.id)),
    )


def refill_s(plan: LimitPlan, cost_tokens: int) -> float:
    """Seconds the slowest of ``plan``'s buckets takes to refill one call of ``cost_tokens``
    tokens (0: no bucket)."""
    return max(
        (amount_for(b, cost_tokens) / b.rate for b in plan.buckets if b.rate > 0), default=0.0
    )
