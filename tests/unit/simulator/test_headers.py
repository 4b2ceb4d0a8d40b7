from __future__ import annotations

import pytest

from relay_sim.headers import go_duration, rate_headers, retry_headers, rfc3339
from relay_sim.limits import RateSnapshot

SNAP = RateSnapshot(30, 0, 7.66, 6000, 5000, 179.56)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.12, "120ms"),
        (1.0, "1s"),
        (7.66, "7.66s"),
        (60.0, "1m0s"),
        (179.56, "2m59.56s"),
        (3725.0, "1h2m5s"),
    ],
)
def test_go_duration(seconds, text):
    assert go_duration(seconds) == text


def test_openai_style():
    assert rate_headers("openai", SNAP, 0.0) == {
        "x-ratelimit-limit-requests": "30",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "7.66s",
        "x-ratelimit-limit-tokens": "6000",
        "x-ratelimit-remaining-tokens": "5000",
        "x-ratelimit-reset-tokens": "2m59.56s",
    }


def test_mistral_style():
    assert rate_headers("mistral", SNAP, 0.0) == {
        "x-ratelimit-limit-req-minute": "30",
        "x-ratelimit-remaining-req-minute": "0",
        "x-ratelimit-limit-tokens-minute": "6000",
        "x-ratelimit-remaining-tokens-minute": "5000",
    }


def test_anthropic_style_resets_are_times():
    headers = rate_headers("anthropic", SNAP, 1_700_000_000.0)
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert headers["anthropic-ratelimit-requests-reset"] == rfc3339(1_700_000_007.66)
    assert headers["anthropic-ratelimit-requests-reset"] == "2023-11-14T22:13:28Z"


def test_no_headers_for_unlimited_budgets_or_style_none():
    only_requests = RateSnapshot(limit_requests=5, remaining_requests=5, reset_requests_s=0.0)
    assert set(rate_headers("openai", only_requests, 0.0)) == {
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    }
    assert rate_headers("none", SNAP, 0.0) == {}


def test_retry_headers_round_up():
    assert retry_headers(1.2, seconds=True, millis=True) == {
        "retry-after": "2",
        "retry-after-ms": "1200",
    }
    assert retry_headers(0.0001, seconds=True, millis=False) == {"retry-after": "1"}
    assert retry_headers(3, seconds=False, millis=False) == {}
