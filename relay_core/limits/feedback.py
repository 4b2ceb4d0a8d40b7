"""What an upstream's rate-limit headers mean for our limits.

Providers report "remaining requests / tokens" without saying over which window: Groq's
``x-ratelimit-remaining-requests`` is per day while its ``-tokens`` is per minute; Mistral's are
per minute. We decide by the reported limit first (it equals the catalogue's rpd or rpm), then by
the reset time (more than a minute away: a daily budget), and otherwise assume a minute.
"""

from __future__ import annotations

from relay_core.limits.plan import PACING_MARGIN
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
        published = (
            round(b.rate * 60 / (1 - PACING_MARGIN)) for b in plan.buckets if b.reason is minute
        )
        if limit in published:
            return minute
    if reset_s is not None and reset_s > 60:
        return day
    return minute


def _bucket_level(
    plan: LimitPlan, kind: Reason, left: float, limit: int | None, reset_s: float | None
) -> float | None:
    """How much ``kind``'s bucket may hold once the upstream said ``left`` remain; None: the
    header tells nothing our pacing does not already do.

    ``reset`` is the time until the budget is whole again (OpenAI's meaning), so with none left
    the next unit frees in about ``reset / limit``. Pacing at the published rate meets an
    empty window now and then (the provider counted our own last request), and the next unit
    then frees before our next slot anyway: zeroing the bucket would only throw away the refill
    it had earned. Only when the upstream frees it later than that (someone else shares the
    key) does the bucket wait for it.
    """
    if left >= 1 or limit is None or reset_s is None:
        return left
    rates = [b.rate for b in plan.buckets if b.reason is kind]
    if not rates:
        return left
    rate = rates[-1]  # the most specific one, the one `lower` touches
    next_free_s = reset_s / max(limit, 1)
    # Resets often come rounded up to the second (Anthropic's are RFC 3339 times): allow that.
    if next_free_s <= 1 / rate + 1 / max(limit, 1):
        return None
    return 1 - rate * next_free_s  # the next token exactly when the upstream frees one


def remaining_from(plan: LimitPlan, feedback: RateLimitFeedback) -> Remaining:
    """The ``Remaining`` to ``lower`` a plan by, from one response's headers."""
    found: dict[Reason, float | None] = {}
    if feedback.remaining_requests is not None:
        limit, reset = feedback.limit_requests, feedback.reset_requests_s
        kind = _kind(plan, limit, reset, Reason.rpm, Reason.rpd)
        left: float | None = feedback.remaining_requests
        if kind is Reason.rpm:
            left = _bucket_level(plan, kind, feedback.remaining_requests, limit, reset)
        found[kind] = left
    if feedback.remaining_tokens is not None:
        limit, reset = feedback.limit_tokens, feedback.reset_tokens_s
        kind = _kind(plan, limit, reset, Reason.tpm, Reason.tpd)
        left = feedback.remaining_tokens
        if kind is Reason.tpm:
            left = _bucket_level(plan, kind, feedback.remaining_tokens, limit, reset)
        found[kind] = left
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
