"""What an upstream's rate-limit headers mean for our limits.

Providers report "remaining requests / tokens" without saying over which window: Groq's
``x-ratelimit-remaining-requests`` is per day while its ``-tokens`` is per minute; Mistral's are
per minute. We decide by the reported limit first (it equals the catalogue's rpd or rpm), then by
the reset time (more than a minute away: a daily budget), and otherwise assume a minute.
"""

from __future__ import annotations

from relay_core.limits.specs import LimitPlan, Reason, Remaining
from relay_core.providers.base import RateLimitFeedback


def _kind(
    plan: LimitPlan,
    limit: int | None,
    reset_s: float | None,
    minute: Reason,
    day: Reason,
) -> Reason:
    if limit is not None:
        if any(c.reason is day and c.limit == limit for c in plan.counters):
            return day
        if any(b.reason is minute and round(b.rate * 60) == limit for b in plan.buckets):
            return minute
    if reset_s is not None and reset_s > 60:
        return day
    return minute


def remaining_from(plan: LimitPlan, feedback: RateLimitFeedback) -> Remaining:
    """The ``Remaining`` to ``lower`` a plan by, from one response's headers."""
    found: dict[Reason, float] = {}
    if feedback.remaining_requests is not None:
        kind = _kind(
            plan, feedback.limit_requests, feedback.reset_requests_s, Reason.rpm, Reason.rpd
        )
        found[kind] = feedback.remaining_requests
    if feedback.remaining_tokens is not None:
        kind = _kind(plan, feedback.limit_tokens, feedback.reset_tokens_s, Reason.tpm, Reason.tpd)
        found[kind] = feedback.remaining_tokens
    return Remaining(
        rpm=found.get(Reason.rpm),
        tpm=found.get(Reason.tpm),
        rpd=found.get(Reason.rpd),
        tpd=found.get(Reason.tpd),
    )


def pause_scope(plan: LimitPlan) -> str | None:
    """Whom a 429 pauses: the model when the catalogue limits it per model (Groq, Gemini),
    else the whole provider (Mistral's limits are per key). Returns the model id or None."""
    scopes = [
        *(b.scope for b in plan.buckets),
        *(c.scope for c in plan.counters),
        *(s.scope for s in plan.concurrency),
    ]
    return plan.model if any("/" in scope for scope in scopes) else None
