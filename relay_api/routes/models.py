"""``GET /v1/models``: OpenAI's model list, with each model's provider, limits and live state."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query

from relay_api.deps import OwnerDep, StateDep
from relay_core.errors import ModelNotFound
from relay_core.routing.live import live_states
from relay_core.routing.ranking import IDLE
from relay_core.routing.targets import Target, all_targets

router = APIRouter()


def _entry(t: Target, created: int) -> dict[str, Any]:
    limits = (t.model.limits or t.provider.limits).model_dump(exclude_none=True)
    return {
        "id": t.key,
        "object": "model",
        "created": created,
        "owned_by": t.provider.name,
        "root": t.model.id,
        "aliases": t.model.aliases,
        "provider": t.provider.name,
        "tier": t.provider.tier.value,
        "type": t.model.type,
        "scale": t.model.scale,
        "context_window": t.model.context_window,
        "limits": limits,
    }


@router.get("/v1/models")
async def list_models(
    state: StateDep,
    _owner: OwnerDep,
    type: Annotated[str | None, Query()] = None,
    scale: Annotated[str | None, Query()] = None,
    provider: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    targets = [
        t
        for t in all_targets(state.providers)
        if (type is None or type in t.model.type)
        and (scale is None or t.model.scale == scale)
        and (provider is None or t.provider.name == provider)
    ]
    live = await live_states(targets, state.limiter, state.breaker, time.time())
    created = int(time.time())
    data = (
        [
            {
                "id": state.settings.meta_model,
                "object": "model",
                "created": created,
                "owned_by": "relay",
            }
        ]
        if not (type or scale or provider)
        else []
    )
    for t in targets:
        s = live.get(t.key, IDLE)
        entry = _entry(t, created)
        entry["status"] = {
            "breaker": "open" if s.breaker_open else "closed",
            "available_in_s": round(s.wait_s, 3),
            "headroom": round(s.headroom, 3),
        }
        data.append(entry)
    return {"object": "list", "data": data}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, state: StateDep, _owner: OwnerDep) -> dict[str, Any]:
    created = int(time.time())
    if model_id == state.settings.meta_model:
        return {"id": model_id, "object": "model", "created": created, "owned_by": "relay"}
    for t in all_targets(state.providers):
        if model_id in (t.key, t.model.id, *t.model.aliases):
            return _entry(t, created)
    raise ModelNotFound(f"The model '{model_id}' does not exist.", param="model")
