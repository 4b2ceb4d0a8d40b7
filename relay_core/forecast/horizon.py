"""Time to exhaustion: how long each limit lasts at the recent pace of spending.

For a minute limit (an ``rpm`` / ``tpm`` bucket refilled at ``rate`` a second) spent at
``pace`` a second: never, while the pace is at most the refill; else what is left over the
difference. For a daily limit (``rpd`` / ``tpd``, and a key's daily tokens): what is left
over the pace, unless the day resets first. The pace is the decayed rate of
:mod:`relay_core.forecast.spend`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel

from relay_core.forecast.spend import IDLE, Spend
from relay_core.limits.specs import BucketSpec, Capacity, CounterSpec, LimitPlan, Reason


class Horizon(BaseModel):
    """One limit of one scope, at the recent pace."""

    scope: str  # "groq", "groq/llama-3.1-8b" or "key:{owner}"
    limit: Reason  # rpm, tpm, rpd or tpd (a key's daily tokens are its tpd)
    of: float  # the limit (requests or tokens)
    left: float  # what is left of it now
    pace_per_min: float  # the recent spending, per minute
    exhausted_in_s: float | None  # None: not at this pace (before the reset, for a day)
    resets_in_s: float | None = None  # daily limits: until the counter starts again


def bucket_horizon(spec: BucketSpec, left: float, pace: float) -> float | None:
    if pace <= spec.rate:
        return None
    return max(0.0, left) / (pace - spec.rate)


def counter_horizon(left: float, pace: float, resets_in_s: float) -> float | None:
    if pace <= 0:
        return 0.0 if left <= 0 else None
    seconds = max(0.0, left) / pace
    return seconds if seconds < resets_in_s else None


def _pace(spend: Spend, reason: Reason) -> float:
    return spend.tokens if reason.counts_tokens else spend.requests


def horizons(
    plans: Sequence[LimitPlan],
    caps: Sequence[Capacity],
    spends: Mapping[str, Spend],
    now: float,
) -> list[Horizon]:
    """Every bucket and counter of ``plans`` (each once, however many plans share it), with
    the levels ``caps`` read for them (``Limiter.peek_many``, in the same order)."""
    seen: set[tuple[str, Reason]] = set()
    out: list[Horizon] = []
    for plan, cap in zip(plans, caps, strict=True):
        specs: Iterable[BucketSpec | CounterSpec] = (*plan.buckets, *plan.counters)
        for spec, level in zip(specs, cap.levels, strict=False):
            if (spec.scope, spec.reason) in seen:
                continue
            seen.add((spec.scope, spec.reason))
            pace = _pace(spends.get(spec.scope, IDLE), spec.reason)
            if isinstance(spec, BucketSpec):
                resets, until = None, bucket_horizon(spec, level.available, pace)
            else:
                resets = max(0.0, spec.reset_at - now)
                until = counter_horizon(level.available, pace, resets)
            out.append(
                Horizon(
                    scope=spec.scope,
                    limit=spec.reason,
                    of=spec.limit,
                    left=round(level.available, 3),
                    pace_per_min=round(pace * 60, 3),
                    exhausted_in_s=None if until is None else round(until, 1),
                    resets_in_s=None if resets is None else round(resets, 1),
                )
            )
    return out


def scopes_of(plans: Sequence[LimitPlan]) -> list[str]:
    """The scopes whose spending ``plans`` need."""
    found = {b.scope for p in plans for b in p.buckets} | {
        c.scope for p in plans for c in p.counters
    }
    return sorted(found)
