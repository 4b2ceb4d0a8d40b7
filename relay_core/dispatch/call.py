"""One upstream call, and who is at fault when it fails: the provider, or the request.

Servers answer HTTP 500 to valid requests they cannot handle, and a 200 with an empty stream
to a streamed prompt over their window (llama.cpp's server does both). Counted against the
provider, one client's such requests would open its breaker for everyone; these decide when
a failure is the request's (:class:`UpstreamRequestFailed`, which the breaker never counts).
"""

from __future__ import annotations

from dataclasses import dataclass

from relay_core.breaker import BreakerState, Permit
from relay_core.dispatch.envelope import Envelope
from relay_core.dispatch.state import LiveTarget
from relay_core.errors import UpstreamError, UpstreamRequestFailed, UpstreamUnavailable
from relay_core.events import CallRecord
from relay_core.schemas.chat import ChatCompletionRequest, Usage
from relay_core.schemas.embeddings import EmbeddingUsage

HTTP_INTERNAL_ERROR = 500
# An empty stream for a prompt (and its output cap) using this share of the model's window or
# more is the prompt's fault.
NEAR_WINDOW = 0.8


@dataclass(frozen=True, slots=True)
class Call:
    target: LiveTarget
    permit: Permit
    request: ChatCompletionRequest
    estimate: int
    prompt: int  # Relay's estimate of the prompt sent


def may_be_the_request(exc: UpstreamError, call: Call) -> bool:
    """A plain 500 through a closed breaker: it may be the request's fault (servers answer
    500 to valid requests they cannot handle), so the same request is tried once more on
    the same candidate before the provider is blamed."""
    permit = call.permit
    return (
        type(exc) is UpstreamUnavailable
        and exc.upstream_status == HTTP_INTERNAL_ERROR
        and permit.state is BreakerState.closed
        and not permit.is_probe
        and bool(permit.keys)
    )


def near_window(call: Call) -> bool:
    reserve = call.request.output_limit() or 0
    return call.prompt + reserve >= NEAR_WINDOW * call.target.model.context_window


def too_long_for_it(exc: UpstreamError, call: Call) -> UpstreamRequestFailed:
    """An empty stream for a prompt near the window: servers answer an over-long streamed
    prompt so (llama.cpp's does), so the prompt, not the provider, is at fault."""
    t, reserve = call.target, call.request.output_limit() or 0
    return UpstreamRequestFailed(
        f"{t.name} streamed an empty answer for {t.model.id} to a prompt of about "
        f"{call.prompt:,} tokens (+{reserve:,} for the answer), near its "
        f"{t.model.context_window:,}-token window: the prompt is most likely too long for it.",
        provider=t.name,
        model=t.model.id,
        param="messages",
    )


def failed_before(env: Envelope, exc: UpstreamError) -> bool:
    """This request already failed on this candidate the same way (status and message)."""
    return any(
        (f.provider, f.model, f.upstream_status, f.message)
        == (exc.provider, exc.model, exc.upstream_status, exc.message)
        for f in env.failures
    )


def the_requests_fault(exc: UpstreamError, provider: str) -> UpstreamRequestFailed:
    """The same request failed the same way twice while the provider answers others."""
    return UpstreamRequestFailed(
        f"{exc.message} (twice, the same way, while {provider} answers other requests: "
        "this request is what it cannot handle)",
        provider=exc.provider,
        model=exc.model,
        upstream_status=exc.upstream_status,
        upstream_body=exc.upstream_body,
    )


def call_record(
    env: Envelope,
    target: LiveTarget,
    started: float,
    now: float,
    error: UpstreamError | None,
    *,
    usage: Usage | EmbeddingUsage | None = None,
    ttft_s: float | None = None,
) -> CallRecord:
    """What the event sinks (metrics, usage, learned outcomes...) hear of one call to
    ``target`` (a chat completion's or an embeddings request's)."""
    return CallRecord(
        provider=target.name,
        model=target.model.id,
        owner=env.owner,
        kind=env.kind.value,
        ok=error is None,
        error=None if error is None else type(error),
        latency_s=now - started,
        queue_wait_s=max(0.0, started - env.enqueued_at),
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if isinstance(usage, Usage) else 0,
        usage_estimated=usage is not None and usage.is_estimate(),
        ttft_s=ttft_s,
        at=now,
        family=None if env.profile is None else env.profile.family.value,
    )
