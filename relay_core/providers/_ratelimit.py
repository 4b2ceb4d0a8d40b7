"""What a provider's response headers say about its rate limits, as :class:`RateLimitFeedback`.

Understood headers (first one found wins for each field):

=========================================  =================================================
``retry-after-ms``                         milliseconds (OpenAI SDK convention)
``retry-after``                            seconds, or an HTTP-date
``x-ratelimit-{remaining,limit}-requests``  Groq, OpenAI, Cerebras, Together, ...
``x-ratelimit-{remaining,limit}-tokens``
``x-ratelimit-reset-{requests,tokens}``    durations like ``"2m59.56s"``, ``"6s"``, ``"120ms"``
``x-ratelimit-{remaining,limit}-req-minute``  Mistral
``x-ratelimit-{remaining,limit}-tokens-minute``
``anthropic-ratelimit-{requests,tokens}-{remaining,limit,reset}``  reset is an RFC 3339 time
=========================================  =================================================

A header that cannot be read is ignored: feedback is advice, never a reason to fail a call.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType

from relay_core.providers.base import RateLimitFeedback

_COUNTS: Mapping[str, str] = MappingProxyType(
    {
        "x-ratelimit-remaining-requests": "remaining_requests",
        "x-ratelimit-remaining-tokens": "remaining_tokens",
        "x-ratelimit-limit-requests": "limit_requests",
        "x-ratelimit-limit-tokens": "limit_tokens",
        "x-ratelimit-remaining-req-minute": "remaining_requests",
        "x-ratelimit-remaining-tokens-minute": "remaining_tokens",
        "x-ratelimit-limit-req-minute": "limit_requests",
        "x-ratelimit-limit-tokens-minute": "limit_tokens",
        "anthropic-ratelimit-requests-remaining": "remaining_requests",
        "anthropic-ratelimit-tokens-remaining": "remaining_tokens",
        "anthropic-ratelimit-requests-limit": "limit_requests",
        "anthropic-ratelimit-tokens-limit": "limit_tokens",
    }
)

_RESETS: Mapping[str, str] = MappingProxyType(
    {
        "x-ratelimit-reset-requests": "reset_requests_s",
        "x-ratelimit-reset-tokens": "reset_tokens_s",
        "anthropic-ratelimit-requests-reset": "reset_requests_s",
        "anthropic-ratelimit-tokens-reset": "reset_tokens_s",
    }
)

_UNIT_SECONDS: Mapping[str, float] = MappingProxyType(
    {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
)
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)")


def parse_duration(value: str) -> float | None:
    """``"2m59.56s"`` → 179.56; ``"120ms"`` → 0.12; ``"6"`` → 6.0 (bare numbers are seconds)."""
    text = value.strip()
    if not text:
        return None
    if _is_number(text):
        return max(0.0, float(text))
    if not _all_duration_parts(text):
        return None
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def _all_duration_parts(text: str) -> bool:
    return "".join(m.group(0) for m in _DURATION_PART.finditer(text)) == text


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _seconds_until(moment: datetime, now: float) -> float:
    return max(0.0, moment.timestamp() - now)


def parse_retry_after(value: str, now: float) -> float | None:
    """``Retry-After``: delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    text = value.strip()
    if _is_number(text):
        return max(0.0, float(text))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return _seconds_until(moment, now)


def parse_reset(value: str, now: float) -> float | None:
    """A reset header: a duration (``"6m0s"``), bare seconds, or an RFC 3339 time."""
    seconds = parse_duration(value)
    if seconds is not None:
        return seconds
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return _seconds_until(moment, now)


def _parse_count(value: str) -> int | None:
    text = value.strip()
    return int(float(text)) if _is_number(text) else None


def parse_feedback(headers: Mapping[str, str], now: float | None = None) -> RateLimitFeedback:
    """Read every rate-limit header we know from ``headers`` (case-insensitive names)."""
    at = time.time() if now is None else now
    lowered = {k.lower(): v for k, v in headers.items()}
    feedback = RateLimitFeedback(retry_after_s=_retry_after(lowered, at))
    for header, attr in _COUNTS.items():
        if header in lowered and getattr(feedback, attr) is None:
            setattr(feedback, attr, _parse_count(lowered[header]))
    for header, attr in _RESETS.items():
        if header in lowered and getattr(feedback, attr) is None:
            setattr(feedback, attr, parse_reset(lowered[header], at))
    return feedback


def _retry_after(headers: Mapping[str, str], now: float) -> float | None:
    if "retry-after-ms" in headers:
        millis = parse_duration(headers["retry-after-ms"])
        if millis is not None:
            return millis / 1000.0
    if "retry-after" in headers:
        return parse_retry_after(headers["retry-after"], now)
    return None


def reset_hint(feedback: RateLimitFeedback) -> float | None:
    """When a 429 gave no ``Retry-After``: the reset of the budget that ran out.

    If the headers say which budget is at zero, the latest of those resets; otherwise the
    soonest reset we know of (the limiter learns the rest from later answers).
    """
    exhausted = [
        reset
        for remaining, reset in (
            (feedback.remaining_requests, feedback.reset_requests_s),
            (feedback.remaining_tokens, feedback.reset_tokens_s),
        )
        if remaining == 0 and reset is not None
    ]
    if exhausted:
        return max(exhausted)
    known = [r for r in (feedback.reset_requests_s, feedback.reset_tokens_s) if r is not None]
    return min(known) if known else None
