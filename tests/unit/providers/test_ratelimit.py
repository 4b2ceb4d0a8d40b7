from __future__ import annotations

from email.utils import formatdate

import httpx
import pytest

from relay_core.providers._ratelimit import (
    parse_duration,
    parse_feedback,
    parse_reset,
    parse_retry_after,
    reset_hint,
)
from relay_core.providers.base import RateLimitFeedback

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2m59.56s", 179.56),
        ("6s", 6.0),
        ("120ms", 0.12),
        ("1h2m3s", 3723.0),
        ("7.66s", 7.66),
        ("0s", 0.0),
        ("45", 45.0),
        ("1d", 86400.0),
    ],
)
def test_durations_in_groq_and_openai_form(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "2x", "m", "5s later", "nan", "inf"])
def test_unreadable_durations_are_none(text):
    assert parse_duration(text) is None


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("17", NOW) == 17.0
    date = formatdate(NOW + 90, usegmt=True)
    assert parse_retry_after(date, NOW) == pytest.approx(90.0)
    assert parse_retry_after(formatdate(NOW - 90, usegmt=True), NOW) == 0.0
    assert parse_retry_after("not a date", NOW) is None


def test_reset_accepts_rfc3339_times():
    # NOW is 2023-11-14T22:13:20Z
    assert parse_reset("2023-11-14T22:13:20Z", NOW) == pytest.approx(0.0)
    assert parse_reset("2023-11-14T22:14:20+00:00", NOW) == pytest.approx(60.0)
    assert parse_reset("2023-11-14T22:12:20Z", NOW) == 0.0  # already past
    assert parse_reset("2023-11-14T22:14:20", NOW) is None  # no zone: cannot tell


def test_groq_headers():
    headers = httpx.Headers(
        {
            "x-ratelimit-limit-requests": "14400",
            "x-ratelimit-limit-tokens": "18000",
            "x-ratelimit-remaining-requests": "14370",
            "x-ratelimit-remaining-tokens": "17997",
            "x-ratelimit-reset-requests": "2m59.56s",
            "x-ratelimit-reset-tokens": "7.66s",
            "retry-after": "2",
        }
    )
    assert parse_feedback(headers, NOW) == RateLimitFeedback(
        remaining_requests=14370,
        remaining_tokens=17997,
        limit_requests=14400,
        limit_tokens=18000,
        reset_requests_s=179.56,
        reset_tokens_s=7.66,
        retry_after_s=2.0,
    )


def test_mistral_minute_headers():
    headers = {
        "X-RateLimit-Remaining-Req-Minute": "0",
        "X-RateLimit-Limit-Req-Minute": "60",
        "X-RateLimit-Remaining-Tokens-Minute": "499000",
        "X-RateLimit-Limit-Tokens-Minute": "500000",
    }
    feedback = parse_feedback(headers, NOW)
    assert (feedback.remaining_requests, feedback.limit_requests) == (0, 60)
    assert (feedback.remaining_tokens, feedback.limit_tokens) == (499000, 500000)
    assert feedback.reset_requests_s is None


def test_anthropic_headers():
    headers = {
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-reset": "2023-11-14T22:13:50Z",
        "anthropic-ratelimit-tokens-remaining": "39000",
    }
    feedback = parse_feedback(headers, NOW)
    assert feedback.remaining_requests == 49
    assert feedback.limit_requests == 50
    assert feedback.reset_requests_s == pytest.approx(30.0)
    assert feedback.remaining_tokens == 39000


def test_retry_after_ms_wins_over_retry_after():
    feedback = parse_feedback({"retry-after-ms": "1500", "retry-after": "9"}, NOW)
    assert feedback.retry_after_s == 1.5


def test_no_headers_no_feedback_and_garbage_is_ignored():
    assert parse_feedback({}, NOW).is_empty()
    garbage = {"x-ratelimit-remaining-requests": "lots", "retry-after": "whenever"}
    assert parse_feedback(garbage, NOW).is_empty()


def test_reset_hint_prefers_the_exhausted_budget():
    tokens_out = RateLimitFeedback(
        remaining_requests=10, remaining_tokens=0, reset_requests_s=3600.0, reset_tokens_s=6.0
    )
    assert reset_hint(tokens_out) == 6.0
    requests_out = RateLimitFeedback(
        remaining_requests=0, remaining_tokens=100, reset_requests_s=40.0, reset_tokens_s=6.0
    )
    assert reset_hint(requests_out) == 40.0
    unknown = RateLimitFeedback(reset_requests_s=40.0, reset_tokens_s=6.0)
    assert reset_hint(unknown) == 6.0
    assert reset_hint(RateLimitFeedback()) is None
