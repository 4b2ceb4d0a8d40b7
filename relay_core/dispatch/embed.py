"""One worker visit to an envelope carrying an embeddings request.

The same steps as a chat visit (:mod:`relay_core.dispatch.executor`), with the executor's own
token wait, hop to a candidate with capacity, failover and final error: tokens first (the
inputs' estimate, against the target's RPM/TPM/RPD buckets), then the breaker, then the call
through the provider's :class:`~relay_core.providers.base.EmbeddingProvider`. What differs:
no context fitting, no answer checks, no hedging and no streams; and an answer is checked for
one vector per input, each of the length the request was routed for (a provider answering
another length is failed over, like any answer that is not what was asked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry.trace import SpanKind, StatusCode

from relay_core.breaker import Permit
from relay_core.dispatch.call import call_record
from relay_core.dispatch.envelope import Envelope, Reply
from relay_core.dispatch.outcome import Done, Outcome
from relay_core.dispatch.state import DEFAULT_PAUSE_S, LiveTarget
from relay_core.errors import (
    GatewayTimeout,
    InvalidRequest,
    RateLimited,
    RelayError,
    UpstreamError,
    UpstreamMalformed,
    UpstreamUnavailable,
)
from relay_core.events import emit
from relay_core.providers.base import Embedded, EmbeddingProvider
from relay_core.schemas.embeddings import (
    EmbeddingRequest,
    EmbeddingResponse,
    embedding_response,
)

if TYPE_CHECKING:  # the executor builds this and hands it its own steps
    from relay_core.dispatch.executor import Executor

MAX_FAILURES_KEPT = 8  # as the executor keeps them


def _with_failure(env: Envelope, exc: RelayError) -> Envelope:
    failures = [*env.failures, exc.to_info()][-MAX_FAILURES_KEPT:]
    return env.model_copy(update={"failures": failures})


def wanted_dimensions(request: EmbeddingRequest, target: LiveTarget) -> int:
    """The vectors' length this request was routed for (the API and the feeder make it
    explicit: relay_core/routing/embedding.py), else the model's own."""
    return request.dimensions or target.model.dimensions or 0


def checked(embedded: Embedded, request: EmbeddingRequest, target: LiveTarget) -> Embedded:
    """The answer, if it holds one vector per input of the wanted length."""
    want, count = wanted_dimensions(request, target), request.count()
    problem = None
    if len(embedded.vectors) != count:
        problem = f"{len(embedded.vectors)} vectors for {count} inputs"
    else:
        wrong = next((v for v in embedded.vectors if len(v) != want), None)
        if wrong is not None:
            problem = f"a vector of {len(wrong)} dimensions where {want} were asked"
    if problem is None:
        return embedded
    raise UpstreamMalformed(
        f"{target.name} answered {problem} ({target.model.id})",
        provider=target.name,
        model=target.model.id,
    )


@dataclass(frozen=True, slots=True)
class EmbedCall:
    """One upstream embeddings call: its target, the breaker's permit and the tokens taken."""

    env: Envelope
    request: EmbeddingRequest
    target: LiveTarget
    permit: Permit
    estimate: int
    started: float


class EmbeddingVisits:
    """What :meth:`Executor.visit` does with an embeddings envelope."""

    def __init__(self, executor: Executor) -> None:
        self.ex = executor

    async def visit(self, env: Envelope, request: EmbeddingRequest) -> Outcome:
        ex = self.ex
        if ex.clock() >= env.deadline:
            return ex._final(env, GatewayTimeout("No provider answered before the deadline."))
        if env.index >= len(env.candidates):
            return ex._next_round(env, None)
        target = ex.state.target(env.current)
        if target is None or not isinstance(target.provider, EmbeddingProvider):
            why = UpstreamUnavailable(
                f"{env.current.provider} does not serve embeddings from this worker.",
                provider=env.current.provider,
            )
            return ex._advance(env, why)
        estimate = request.estimated_tokens()
        wait = await ex._take(target, env, estimate)
        if wait is not None:
            return await ex._no_capacity(env, wait, estimate)
        permit = await ex.state.permit(target, ex.clock())
        if isinstance(permit, UpstreamError):
            await ex.state.refund(target, env.id, estimate, ex.clock())
            return ex._advance(env, permit)
        attributes = {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.system": target.name,
            "gen_ai.request.model": target.model.id,
        }
        with ex.tracer.start_as_current_span(
            f"embeddings {target.model.id}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            env = env.model_copy(update={"attempts": env.attempts + 1})
            call = EmbedCall(env, request, target, permit, estimate, ex.clock())
            outcome = await self._call(call)
            if isinstance(outcome, Done) and not outcome.reply.ok:
                span.set_status(StatusCode.ERROR)
            return outcome

    async def _call(self, call: EmbedCall) -> Outcome:
        ex, env, target, request = self.ex, call.env, call.target, call.request
        provider = target.provider
        assert isinstance(provider, EmbeddingProvider)  # checked by visit
        want = wanted_dimensions(request, target)
        shorten = want if want != target.model.dimensions else None
        try:
            answer = await provider.embed(request, target.model.id, shorten)
            embedded = checked(answer, request, target)
        except InvalidRequest as exc:  # this family cannot send it: nothing went out
            exc.provider, exc.model = target.name, target.model.id
            await ex.state.refund(target, env.id, call.estimate, ex.clock())
            await ex.state.breaker.record_permit(call.permit, True, ex.clock())
            return ex._advance(env, exc)
        except UpstreamError as exc:
            return await self._failed(call, exc)
        tokens = embedded.prompt_tokens
        body = embedding_response(embedded.vectors, target.model.id, tokens, request)
        self._later_success(call, embedded, body)
        return Done(
            Reply(
                id=env.id,
                ok=True,
                embedding=body,
                provider=target.name,
                model=target.model.id,
                attempts=env.attempts,
                queue_wait_s=max(0.0, call.started - env.enqueued_at),
                upstream_s=ex.clock() - call.started,
                failures=env.failures,
            )
        )

    def _later_success(self, call: EmbedCall, embedded: Embedded, body: EmbeddingResponse) -> None:
        """The book-keeping of a success, after the reply is on its way (as for chat)."""
        ex, used = self.ex, body.usage.prompt_tokens
        if ex.sinks:
            ex._later(
                emit(
                    ex.sinks,
                    call_record(
                        call.env, call.target, call.started, ex.clock(), None, usage=body.usage
                    ),
                )
            )
        ex._later(
            ex.state.after_success(
                call.target,
                permit=call.permit,
                lease=call.env.id,
                tokens=(call.estimate, used),
                feedback=embedded.feedback,
                now=ex.clock(),
            )
        )

    async def _failed(self, call: EmbedCall, exc: UpstreamError) -> Outcome:
        ex, env, target = self.ex, call.env, call.target
        exc.provider, exc.model = target.name, target.model.id
        if ex.sinks:
            await emit(ex.sinks, call_record(env, target, call.started, ex.clock(), exc))
        await ex.state.after_failure(
            target,
            permit=call.permit,
            lease=env.id,
            estimate=call.estimate,
            exc=exc,
            now=ex.clock(),
            started=call.started,
        )
        if not exc.retryable:
            return ex._final(env, exc)
        if isinstance(exc, RateLimited) and env.attempts < ex.settings.max_attempts:
            # The provider's pacing, not a failure: it stays a candidate once its pause ends.
            env = _with_failure(env, exc)
            return await ex._no_capacity(env, exc.retry_after or DEFAULT_PAUSE_S, call.estimate)
        return ex._advance(env, exc)
