"""``exhausted_error``: the one error a client sees once no candidate is left."""

from __future__ import annotations

import pytest

from relay_core.dispatch.outcome import exhausted_error
from relay_core.errors import (
    BreakersOpen,
    CapacityExhausted,
    CircuitOpen,
    ContextLengthExceeded,
    ErrorInfo,
    NoProviderAvailable,
    ProviderKeysRefused,
    ProvidersDown,
    RateLimited,
    RelayError,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamContextTooLong,
    UpstreamQuotaExhausted,
    UpstreamTimeout,
    UpstreamUnavailable,
)


def info(cls: type[RelayError], provider: str, retry_after: float | None = None) -> ErrorInfo:
    return cls(
        f"{cls.__name__} at {provider}", provider=provider, retry_after=retry_after
    ).to_info()


def test_no_failure_at_all_is_a_429_after_a_second_by_default() -> None:
    err = exhausted_error([], None)
    assert isinstance(err, CapacityExhausted)
    assert (err.status_code, err.retry_after) == (429, 1.0)


def test_no_failure_says_when_capacity_comes_back() -> None:
    err = exhausted_error([], 12.5)
    assert isinstance(err, CapacityExhausted)
    assert err.retry_after == 12.5
    assert "Retry after 12 s" in err.message


def test_rate_limits_only_are_a_429_with_the_soonest_retry() -> None:
    failures = [
        info(RateLimited, "a", retry_after=30.0),
        info(CapacityExhausted, "b"),
        info(UpstreamQuotaExhausted, "c", retry_after=3600.0),
        info(RateLimited, "d", retry_after=4.0),
    ]
    err = exhausted_error(failures, 9.0)
    assert isinstance(err, CapacityExhausted)
    assert err.retry_after == 4.0


def test_open_breakers_are_a_503_circuit_open_after_the_real_cool_down() -> None:
    failures = [info(CircuitOpen, "a", retry_after=112.0), info(CircuitOpen, "b", retry_after=15.0)]
    err = exhausted_error(failures, None)
    assert isinstance(err, BreakersOpen)
    assert (err.status_code, err.code, err.retry_after) == (503, "circuit_open", 15.0)
    assert "rate limit" not in err.message


def test_a_dead_upstream_is_a_503_upstream_unavailable_not_a_rate_limit() -> None:
    failures = [info(UpstreamUnavailable, "a"), info(CircuitOpen, "b", retry_after=30.0)]
    err = exhausted_error(failures, None)
    assert isinstance(err, ProvidersDown)
    assert (err.status_code, err.code, err.retry_after) == (503, "upstream_unavailable", 30.0)


def test_a_refused_key_everywhere_is_a_503_naming_the_provider() -> None:
    err = exhausted_error([info(UpstreamAuthError, "groq")], None)
    assert isinstance(err, ProviderKeysRefused)
    assert (err.status_code, err.code) == (503, "upstream_auth_failed")
    assert "groq" in err.message
    assert "rate limit" not in err.message


def test_a_request_too_long_for_every_model_is_a_400_context_length_exceeded() -> None:
    failures = [
        ContextLengthExceeded("over a's window", provider="a", param="messages").to_info(),
        UpstreamContextTooLong("over b's window", provider="b").to_info(),
    ]
    err = exhausted_error(failures, None)
    assert isinstance(err, ContextLengthExceeded)
    assert (err.status_code, err.code, err.param) == (400, "context_length_exceeded", "messages")


@pytest.mark.parametrize("hint", [0.0, 0.2])
def test_the_retry_is_never_under_a_second(hint: float) -> None:
    err = exhausted_error([info(RateLimited, "a", retry_after=hint)], None)
    assert err.retry_after == 1.0


def test_rate_limits_beside_a_dead_upstream_are_a_503_with_the_soonest_retry() -> None:
    failures = [info(RateLimited, "a", retry_after=2.0), info(UpstreamUnavailable, "b")]
    err = exhausted_error(failures, 2.0)
    assert isinstance(err, ProvidersDown)
    assert (err.status_code, err.retry_after) == (503, 2.0)
    assert "a: RateLimited at a" in err.message
    assert "b: UpstreamUnavailable at b" in err.message


def test_mixed_reasons_are_a_503_naming_each_provider() -> None:
    failures = [info(UpstreamBadRequest, "a"), info(UpstreamUnavailable, "b")]
    err = exhausted_error(failures, None)
    assert isinstance(err, NoProviderAvailable)
    assert (err.status_code, err.retry_after) == (503, None)
    assert "a: UpstreamBadRequest at a" in err.message


def test_the_503_names_the_last_five_failures() -> None:
    failures = [info(UpstreamTimeout, f"p{i}") for i in range(7)]
    err = exhausted_error(failures, None)
    assert isinstance(err, ProvidersDown)
    assert [f"p{i}:" in err.message for i in range(7)] == [False, False, *[True] * 5]
