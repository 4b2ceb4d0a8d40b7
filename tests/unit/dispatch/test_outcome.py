"""``exhausted_error``: the one error a client sees once no candidate is left."""

from __future__ import annotations

import pytest

from relay_core.dispatch.outcome import exhausted_error
from relay_core.errors import (
    CapacityExhausted,
    CircuitOpen,
    ErrorInfo,
    NoProviderAvailable,
    RateLimited,
    RelayError,
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


def test_capacity_trouble_only_is_a_429_with_the_soonest_retry() -> None:
    failures = [
        info(RateLimited, "a", retry_after=30.0),
        info(CircuitOpen, "b"),
        info(UpstreamQuotaExhausted, "c", retry_after=3600.0),
        info(RateLimited, "d", retry_after=4.0),
    ]
    err = exhausted_error(failures, 9.0)
    assert isinstance(err, CapacityExhausted)
    assert err.retry_after == 4.0


@pytest.mark.parametrize("hint", [0.0, 0.2])
def test_the_retry_is_never_under_a_second(hint: float) -> None:
    err = exhausted_error([info(RateLimited, "a", retry_after=hint)], None)
    assert err.retry_after == 1.0


def test_any_other_failure_is_a_503_naming_each_provider() -> None:
    failures = [info(RateLimited, "a", retry_after=2.0), info(UpstreamUnavailable, "b")]
    err = exhausted_error(failures, 2.0)
    assert isinstance(err, NoProviderAvailable)
    assert err.status_code == 503
    assert err.retry_after is None
    assert "a: RateLimited at a" in err.message
    assert "b: UpstreamUnavailable at b" in err.message


def test_the_503_names_the_last_five_failures() -> None:
    failures = [info(UpstreamTimeout, f"p{i}") for i in range(7)]
    err = exhausted_error(failures, None)
    assert isinstance(err, NoProviderAvailable)
    assert [f"p{i}:" in err.message for i in range(7)] == [False, False, *[True] * 5]
