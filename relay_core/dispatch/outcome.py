"""What one worker visit to an envelope ends in, and the final error when every candidate failed."""

from __future__ import annotations

from dataclasses import dataclass

from relay_core.dispatch.envelope import Envelope, Reply
from relay_core.errors import (
    CapacityExhausted,
    CircuitOpen,
    ErrorInfo,
    InvalidRequest,
    NoProviderAvailable,
    RateLimited,
    RelayError,
    UpstreamQuotaExhausted,
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

_CAPACITY_KINDS = frozenset(
    {
        RateLimited.__name__,
        CircuitOpen.__name__,
        CapacityExhausted.__name__,
        UpstreamQuotaExhausted.__name__,
    }
)


def exhausted_error(failures: list[ErrorInfo], soonest_s: float | None) -> RelayError:
    """The one error a client sees once no candidate is left.

    Only capacity trouble (429s, open breakers, empty buckets) → 429 with ``Retry-After``;
    anything else → 503 naming each provider's reason.
    """
    if (failures and all(f.kind in _CAPACITY_KINDS for f in failures)) or not failures:
        hints = [f.retry_after for f in failures if f.retry_after is not None]
        if soonest_s is not None:
            hints.append(soonest_s)
        retry_after = max(1.0, min(hints)) if hints else 1.0
        return CapacityExhausted(
            "Every provider that can serve this model is at its rate limit right now. "
            f"Retry after {retry_after:.0f} s.",
            retry_after=retry_after,
        )
    reasons = "; ".join(f"{f.provider or '?'}: {f.message}" for f in failures[-5:])
    if all(f.kind == InvalidRequest.__name__ for f in failures):  # retrying cannot help
        return InvalidRequest(f"No provider can take this request ({reasons}).")
    return NoProviderAvailable(f"No provider could serve this request ({reasons}).")
