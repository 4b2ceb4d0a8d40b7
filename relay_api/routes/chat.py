"""``POST /v1/chat/completions``: route, enqueue on the provider's queue, await the reply."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry.trace import SpanKind

from relay_api.deps import OwnerDep, StateDep
from relay_api.routing import Ask, Routing, cache_said, rank_candidates
from relay_api.state import ApiState
from relay_api.streaming import stream_chat
from relay_core.affinity import Affinity
from relay_core.answers.cache import hit_reply
from relay_core.answers.policy import cache_keys, cache_policy
from relay_core.answers.validate import schema_problem
from relay_core.dispatch.envelope import Candidate, Envelope, Reply, RouteFlags
from relay_core.dispatch.hedge import parse_hedge
from relay_core.errors import GatewayTimeout, InvalidRequest, RelayError
from relay_core.profile import parse_priority
from relay_core.schemas.chat import ChatCompletionRequest

router = APIRouter()


async def bound_messages(request: Request, state: StateDep) -> None:
    """Refuse more than ``RELAY_MAX_MESSAGES`` messages before the body is validated (FastAPI
    solves dependencies first): 300,000 tiny messages would otherwise become 300,000 models."""
    try:
        data = await request.json()  # already decoded by FastAPI, cached by Starlette
    except ValueError:
        return  # FastAPI's own validation says what is wrong
    messages = data.get("messages") if isinstance(data, dict) else None
    limit = state.settings.max_messages
    if isinstance(messages, list) and len(messages) > limit:
        raise InvalidRequest(
            f"A request may carry at most {limit} messages; this one has {len(messages)}. "
            "Drop older turns (or raise RELAY_MAX_MESSAGES).",
            param="messages",
        )


def refuse_unusable_schema(body: ChatCompletionRequest) -> None:
    problem = schema_problem(body.response_format)
    if problem is not None:
        raise InvalidRequest(problem, param="response_format")


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    request: Request,
    body: ChatCompletionRequest,
    state: StateDep,
    owner: OwnerDep,
    *,
    x_relay_fallback: Annotated[str | None, Header()] = None,
    x_session_id: Annotated[str | None, Header()] = None,
    x_relay_priority: Annotated[str | None, Header()] = None,
    x_relay_hedge: Annotated[str | None, Header()] = None,
    cache_control: Annotated[str | None, Header()] = None,
    x_relay_cache_ttl: Annotated[str | None, Header()] = None,
    x_relay_near_cache: Annotated[str | None, Header()] = None,
    _bounded: Annotated[None, Depends(bound_messages)] = None,
) -> Response:
    refuse_unusable_schema(body)
    ask = Ask(owner, request.headers, x_relay_fallback, None, parse_priority(x_relay_priority))
    policy = cache_policy(
        body,
        state.settings,
        cache_control=cache_control,
        ttl=x_relay_cache_ttl,
        near=x_relay_near_cache,
        routed=cache_said(state, body, ask),
    )
    request_id = f"chatcmpl-{uuid.uuid4().hex}"
    keys = None
    if policy.active:
        fallback_any = (x_relay_fallback or "").strip().lower() == "any"
        keys = cache_keys(body, state.settings, policy, fallback_any=fallback_any)
        found = await state.cache.get(owner, keys, "interactive") if policy.read else None
        if found is not None:
            said = {"x-relay-cache": "hit", "x-relay-cache-match": found.match}
            return answer(hit_reply(request_id, found.answer), request_id, said)
    affinity = Affinity(state.redis, state.settings)
    pinned = await affinity.pinned(owner, x_session_id)
    routing = await rank_candidates(state, body, replace(ask, pinned=pinned))
    body = routing.request  # the routing policies' caps applied
    timeout = state.settings.request_timeout_s
    # The x-relay-hedge header decides; without it, the setting or a policy that hedges.
    hedge = parse_hedge(x_relay_hedge, state.settings.hedging or routing.ruling.hedge)
    env = Envelope(
        id=request_id,
        request=body,
        candidates=[Candidate(provider=t.provider.name, model=t.model.id) for t in routing.ranked],
        deadline=time.time() + timeout,
        reply_to=None if body.stream else state.hub.channel,
        owner=owner,
        message_tokens=routing.costs,
        profile=routing.profile,
        flags=RouteFlags(hedge=hedge, cache=routing.ruling.cache),
    )
    estimate = routing.profile.prompt_tokens + routing.profile.expected_output_tokens
    quota = await state.quotas.take(owner, estimate, env.id, time.time())
    if body.stream:
        return await _stream(state, env, routing, request, affinity=affinity, session=x_session_id)
    try:
        reply = await wait_reply(state, env, timeout)
    except RelayError as exc:
        state.audits.later(env, routing, error=exc)
        raise
    state.audits.later(env, routing, reply)
    extra = {"x-relay-route": routing.note}
    if keys is not None:
        extra["x-relay-cache"] = "miss"
        if policy.write:
            await state.cache.put(owner, keys, reply, policy.ttl_s, "interactive")
    if quota is not None and reply.completion is not None and reply.completion.usage is not None:
        used = reply.completion.usage.total_tokens
        await state.quotas.settle(quota, env.id, used, estimate, time.time())
    if reply.provider and reply.model:
        await affinity.pin(owner, x_session_id, reply.provider, reply.model)
    return answer(reply, env.id, extra)


async def _stream(
    state: ApiState,
    env: Envelope,
    routing: Routing,
    request: Request,
    *,
    affinity: Affinity,
    session: str | None,
) -> Response:
    """Relay a ``stream: true`` request; its audit is written once the stream is over."""
    owner = env.owner or ""

    async def repin(provider: str, model: str) -> None:
        await affinity.pin(owner, session, provider, model)

    def ended(reply: Reply | None) -> None:
        state.audits.later(env, routing, reply)

    try:
        return await stream_chat(
            state,
            env,
            state.hub.publish,  # the hub watches its holder (a dead worker's stream goes again)
            request.receive,
            repin if session else None,
            on_end=ended,
        )
    except RelayError as exc:  # before the first chunk: an ordinary error answer
        state.audits.later(env, routing, error=exc)
        raise


async def wait_reply(state: ApiState, env: Envelope, limit_s: float) -> Reply:
    """Publish ``env`` and wait for its successful reply (a failure raises as its error), in
    a span the worker's visits continue (relay_core/tracing.py). A chat request's reply
    carries a completion, an embeddings request's its vectors."""
    operation = "chat" if isinstance(env.request, ChatCompletionRequest) else "embeddings"
    attributes = {"gen_ai.operation.name": operation, "gen_ai.request.model": env.request.model}
    with state.tracer.start_as_current_span(
        f"{operation} {env.request.model}", kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        span.set_attribute("relay.request_id", env.id)
        fut = state.hub.expect(env)
        try:
            await state.hub.publish(env)
        except Exception:
            state.hub.forget(env.id)
            raise
        reply = await state.hub.wait(env.id, fut, limit_s + 1.0)
        if reply is not None and reply.provider:
            span.set_attribute("gen_ai.system", reply.provider)
            span.set_attribute("gen_ai.response.model", reply.model or "")
    if reply is None:
        raise GatewayTimeout(f"No provider answered within {limit_s:.0f} s.")
    if not reply.ok or (reply.completion is None and reply.embedding is None):
        raise RelayError.from_info(reply.error) if reply.error else GatewayTimeout("No answer.")
    return reply


def served_headers(reply: Reply, request_id: str) -> dict[str, str]:
    """Who served a reply, how many attempts it took and where its time went."""
    return {
        "x-relay-provider": reply.provider or "",
        "x-relay-model": reply.model or "",
        "x-relay-attempts": str(reply.attempts),
        "x-relay-queue-ms": f"{reply.queue_wait_s * 1000:.1f}",
        "x-relay-upstream-ms": f"{reply.upstream_s * 1000:.1f}",
        "x-request-id": request_id,
    }


def answer(reply: Reply, request_id: str, extra: dict[str, str]) -> JSONResponse:
    """The completion as the client gets it, with who served it in the ``x-relay-*``
    headers (and every answer check: docs/answers.md)."""
    assert reply.completion is not None
    headers = {**served_headers(reply, request_id), **extra}
    if reply.checks:
        headers["x-relay-answer-checks"] = ",".join(c.header() for c in reply.checks)
    if reply.hedged:
        headers["x-relay-hedged"] = "true"  # a second copy, sent after a slow first, won
    completion = reply.completion.model_copy(update={"id": request_id})
    if completion.usage is not None and completion.usage.is_estimate():
        headers["x-relay-usage"] = "estimated"  # the upstream sent none: Relay's estimate
    return JSONResponse(completion.model_dump(mode="json", exclude_none=True), headers=headers)
