"""What one worker visit to an envelope ends in, and the final error when every candidate failed."""

from __future__ import annotations

from dataclasses import dataclass

from relay_core.dispatch.envelope import Envelope, Reply
from relay_core.errors import (
    BreakersOpen,
    CapacityExhausted,
    CircuitOpen,
    ContextLengthExceeded,
    ErrorInfo,
    InvalidRequest,
    NoProviderAvailable,
    NoValidAnswer,
    ProviderKeysRefused,
    ProvidersDown,
    RateLimited,
    RelayError,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamContextTooLong,
    UpstreamInvalidAnswer,
    UpstreamMalformed,
    UpstreamQuotaExhausted,
    UpstreamTimeout,
    UpstreamUnavailable,
)


@dataclass(frozen=True, slots=True)
class Done:
    """Final: publish ``reply`` (success or terminal failure) and ack."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class Forward:
    """Not final: publish ``envelope`` to its current candidate's queue after ``delay_s``."""

    envelope: Envelope
    delay_s: float = 0.0


Outcome = Done | Forward

_RATE_LIMITS = (RateLimited, CapacityExhausted, UpstreamQuotaExhausted)
_DOWN = (UpstreamUnavailable, UpstreamTimeout, UpstreamMalformed, CircuitOpen)


def exhausted_error(failures: list[ErrorInfo], soonest_s: float | None) -> RelayError:
    """The one error a client sees once no candidate is left, decided by the classes of
    each candidate's latest failure.

    Only rate limits (429s, empty buckets, spent quotas) → 429 with ``Retry-After``; every
    candidate down → 503 ``upstream_unavailable`` (``circuit_open`` when only breakers kept
    it off), ``Retry-After`` the soonest real cool-down; every provider refusing Relay's key
    → 503 ``upstream_auth_failed``; every candidate refusing the request → its 400; every
    candidate's answer failing its ``response_format`` → 502 ``no_valid_answer``; anything
    else → 503 naming each provider's reason.
    """
    failures = _latest(failures)  # each candidate by its latest failure
    hints = [f.retry_after for f in failures if f.retry_after is not None]
    if soonest_s is not None:
        hints.append(soonest_s)
    retry_after = max(1.0, min(hints)) if hints else None
    if all(f.is_a(*_RATE_LIMITS) for f in failures):
        wait = retry_after or 1.0
        return CapacityExhausted(
            "Every provider that can serve this model is at its rate limit right now. "
            f"Retry after {wait:.0f} s.",
            retry_after=wait,
        )
    reasons = "; ".join(f"{f.provider or '?'}: {f.message}" for f in failures[-5:])
    for_good = _refused_for_good(failures, reasons)
    if for_good is not None:
        return for_good
    if all(f.is_a(CircuitOpen) for f in failures):
        return BreakersOpen(
            f"Every provider for this model is failing and rests ({reasons}). "
            f"Retry after {retry_after or 1.0:.0f} s.",
            retry_after=retry_after,
        )
    if all(f.is_a(UpstreamInvalidAnswer) for f in failures):
        return NoValidAnswer(
            f"No provider answered with the JSON response_format asks for ({reasons}).",
            retry_after=retry_after,
        )
    if all(f.is_a(*_DOWN, *_RATE_LIMITS) for f in failures):
        return ProvidersDown(
            f"No provider for this model is reachable now ({reasons}).", retry_after=retry_after
        )
    return NoProviderAvailable(
        f"No provider could serve this request ({reasons}).", retry_after=retry_after
    )


def _refused_for_good(failures: list[ErrorInfo], reasons: str) -> RelayError | None:
    """When retrying cannot help: every candidate refused the request (its 400, or
    ``context_length_exceeded`` with the code kept), or refused Relay's key for it."""
    last = failures[-1]
    if all(f.is_a(InvalidRequest, UpstreamBadRequest) for f in failures):
        if all(f.is_a(ContextLengthExceeded, UpstreamContextTooLong) for f in failures):
            return ContextLengthExceeded(last.message, param=last.param or "messages")
        return InvalidRequest(f"No provider can take this request ({reasons}).", param=last.param)
    if all(f.is_a(UpstreamAuthError) for f in failures):
        names = ", ".join(sorted({f.provider or "?" for f in failures}))
        return ProviderKeysRefused(
            f"The API key Relay holds for {names} was refused by the provider; an operator "
            "must replace it (relay status shows which)."
        )
    return None


def _latest(failures: list[ErrorInfo]) -> list[ErrorInfo]:
    """Each provider/model's latest failure, in the order they last failed."""
    latest: dict[tuple[str | None, str | None], ErrorInfo] = {}
    for f in failures:
        latest.pop((f.provider, f.model), None)
        latest[(f.provider, f.model)] = f
    return list(latest.values())
