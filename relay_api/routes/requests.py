"""``GET /v1/requests/{id}/route``: the full audit of one of the caller's chat requests."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter

from relay_api.deps import OwnerDep, StateDep
from relay_core.errors import NotFound
from relay_core.routing.audit import READ

router = APIRouter()

REQUEST_ID = re.compile(r"^chatcmpl-[0-9a-f]{32}$")


@router.get("/v1/requests/{request_id}/route")
async def request_route(request_id: str, state: StateDep, owner: OwnerDep) -> dict[str, Any]:
    """Candidates, their gates and score terms, the policies that fired, the choice and
    every attempt. Another key's request, an unknown id and an expired audit are all 404."""
    audit = None
    if REQUEST_ID.match(request_id):
        audit = await state.audits.store.read(request_id, owner)
    if audit is None:
        raise NotFound(
            f"No route audit for request {request_id[:64]!r}: the id is the answer's 'id' "
            "(or its x-request-id header), kept for RELAY_ROUTE_AUDIT_TTL_S.",
            param="request_id",
        )
    shown: dict[str, Any] = READ.dump_python(audit, mode="json", exclude_none=True)
    return shown
