"""``POST /v1/embeddings``: route to the embeddings models, enqueue, await the vectors.

Routed as a chat request is (the provider's queue, its limits and breakers, failover in the
worker), to the targets :mod:`relay_core.routing.embedding` allows: the named model's, then
models answering vectors of the same length. docs/embeddings.md.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from relay_api.deps import OwnerDep, StateDep
from relay_api.routes.chat import served_headers, wait_reply
from relay_api.state import ApiState
from relay_core.dispatch.envelope import Candidate, Envelope, Reply
from relay_core.routing.embedding import (
    embedding_targets,
    named_count,
    rank_embedding_targets,
    with_dimensions,
)
from relay_core.routing.targets import Selection, Target
from relay_core.schemas.embeddings import EmbeddingRequest, check_inputs, new_embedding_id

router = APIRouter()


async def embedding_route(
    state: ApiState, body: EmbeddingRequest, fallback: str | None
) -> tuple[EmbeddingRequest, list[Target]]:
    """The request as the workers send it (its vectors' length explicit) and its candidates,
    best first."""
    s = state.settings
    sel = Selection(
        body.model, fallback_any=(fallback or "").strip().lower() == "any", embeddings=True
    )
    targets, dimensions = embedding_targets(
        state.providers,
        sel,
        dimensions=body.dimensions,
        mode=s.mode,
        failover=s.embeddings_failover,
    )
    live = await state.live.states(targets)
    ranked = rank_embedding_targets(targets, live, named_count(state.providers, sel, targets))
    state.live.sent(ranked[0])
    return with_dimensions(body, dimensions), ranked


@router.post("/v1/embeddings", response_model=None)
async def embeddings(
    body: EmbeddingRequest,
    state: StateDep,
    owner: OwnerDep,
    *,
    x_relay_fallback: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    check_inputs(body, state.settings.embeddings_max_inputs)
    request, ranked = await embedding_route(state, body, x_relay_fallback)
    timeout = state.settings.request_timeout_s
    env = Envelope(
        id=new_embedding_id(),
        request=request,
        candidates=[Candidate(provider=t.provider.name, model=t.model.id) for t in ranked],
        deadline=time.time() + timeout,
        reply_to=state.hub.channel,
        owner=owner,
    )
    estimate = request.estimated_tokens()
    quota = await state.quotas.take(owner, estimate, env.id, time.time())
    reply = await wait_reply(state, env, timeout)
    if quota is not None and reply.embedding is not None:
        used = reply.embedding.usage.total_tokens
        await state.quotas.settle(quota, env.id, used, estimate, time.time())
    return answer(reply, env.id)


def answer(reply: Reply, request_id: str) -> JSONResponse:
    """The vectors as the client gets them, with who served them in ``x-relay-*`` headers."""
    assert reply.embedding is not None
    headers = served_headers(reply, request_id)
    if reply.embedding.usage.is_estimate():
        headers["x-relay-usage"] = "estimated"  # the upstream counted none: Relay's estimate
    return JSONResponse(reply.embedding.model_dump(mode="json"), headers=headers)
