"""``POST /v1/chat/completions``: route, enqueue on the provider's queue, await the reply."""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from relay_api.deps import OwnerDep, StateDep
from relay_api.state import ApiState
from relay_core.dispatch.broker import send_envelope
from relay_core.dispatch.envelope import Candidate, Envelope
from relay_core.errors import GatewayTimeout, InvalidRequest, RelayError
from relay_core.routing.live import live_states
from relay_core.routing.targets import Selection, Target, resolve_targets
from relay_core.schemas.chat import ChatCompletionRequest

router = APIRouter()


async def rank_candidates(
    state: ApiState, body: ChatCompletionRequest, fallback: str | None
) -> list[Target]:
    sel = Selection(
        model=body.model,
        model_type=body.model_type,
        model_scale=body.model_scale,
        model_name=body.model_name,
        fallback_any=(fallback or "").strip().lower() == "any",
    )
    targets = resolve_targets(
        state.providers, sel, mode=state.settings.mode, meta_model=state.settings.meta_model
    )
    if len(targets) == 1:
        return targets
    live = await live_states(targets, state.limiter, state.breaker, time.time())
    return state.ranker.rank(targets, live)


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest,
    state: StateDep,
    owner: OwnerDep,
    x_relay_fallback: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    if body.stream:
        raise InvalidRequest("Streaming is not available yet; send stream=false.", param="stream")
    ranked = await rank_candidates(state, body, x_relay_fallback)
    timeout = state.settings.request_timeout_s
    env = Envelope(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        request=body.model_dump(mode="json", exclude_none=True),
        candidates=[Candidate(provider=t.provider.name, model=t.model.id) for t in ranked],
        deadline=time.time() + timeout,
        reply_to=state.hub.channel,
        owner=owner,
    )
    fut = state.hub.expect(env.id)
    try:
        send_envelope(state.celery, state.settings.key_prefix, env)
    except Exception:
        state.hub.forget(env.id)
        raise
    reply = await state.hub.wait(env.id, fut, timeout + 1.0)
    if reply is None:
        raise GatewayTimeout(f"No provider answered within {timeout:.0f} s.")
    if not reply.ok or reply.body is None:
        raise RelayError.from_info(reply.error) if reply.error else GatewayTimeout("No answer.")
    headers = {
        "x-relay-provider": reply.provider or "",
        "x-relay-model": reply.model or "",
        "x-relay-attempts": str(reply.attempts),
        "x-request-id": env.id,
    }
    reply.body["id"] = env.id
    return JSONResponse(reply.body, headers=headers)
