"""OpenAI's Batch API, and Relay's extensions to it (see docs/batch.md).

OpenAI's: ``POST /v1/batches``, ``GET /v1/batches/{id}``, ``GET /v1/batches``,
``POST /v1/batches/{id}/cancel``. Relay's: ``GET /v1/batches/{id}/progress`` (per provider),
``GET /v1/batches/{id}/results`` (partial results while it runs), ``POST
/v1/batches/{id}/retry`` (a new batch from the failed and expired lines) and ``POST
/v1/batches/estimate``. Batches are visible only to the gateway key that created them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from relay_api.deps import OwnerDep, StateDep
from relay_api.routes.files import file_store, stored_content
from relay_api.state import ApiState
from relay_core.batch.client.create import (
    CreateBatch,
    RetryBatch,
    check_endpoint,
    check_input,
    check_metadata,
)
from relay_core.batch.client.estimate import Estimate, EstimateRequest, RouteCount, estimate
from relay_core.batch.client.estimate_view import read_view
from relay_core.batch.client.results import Which, final_file, live_results
from relay_core.batch.client.retry import retry_input
from relay_core.batch.models import (
    TERMINAL,
    BatchObject,
    BatchProgress,
    BatchStatus,
    ListPage,
    workflow_name,
)
from relay_core.batch.run.window import window_seconds
from relay_core.batch.store.store import BatchStore, NewBatch
from relay_core.errors import InvalidRequest
from relay_core.heartbeat import live_workers
from relay_core.routing.targets import Selection, Target, resolve_targets

router = APIRouter()

CANCELLABLE = (BatchStatus.validating, BatchStatus.in_progress)


def batch_store(state: ApiState) -> BatchStore:
    return BatchStore(state.redis, state.settings.key_prefix)


def resolver(state: ApiState) -> Callable[[Selection], list[Target]]:
    s = state.settings

    def resolve(sel: Selection) -> list[Target]:
        return resolve_targets(state.providers, sel, mode=s.mode, meta_model=s.meta_model)

    return resolve


async def _create(
    state: ApiState, owner: str, body: CreateBatch, retry_of: str | None
) -> BatchObject:
    check_endpoint(body.endpoint, [w.name for w in state.catalogue.workflows])
    default_model = body.model
    name = workflow_name(body.endpoint)
    if name is not None:  # its lines are paced on the workflow's first call's targets
        found = state.catalogue.workflow(name)
        assert found is not None  # check_endpoint refused an unknown name
        default_model = found.first_model() or state.settings.meta_model
    window_s = window_seconds(body.completion_window, state.settings.batch_min_window_s)
    check_metadata(body.metadata)
    if body.model:
        resolver(state)(Selection(body.model))
    check_input(await file_store(state).get(body.input_file_id, owner))
    new = NewBatch(
        owner=owner,
        endpoint=body.endpoint,
        input_file_id=body.input_file_id,
        completion_window=body.completion_window,
        window_s=window_s,
        metadata=body.metadata,
        default_model=default_model,
        retry_of=retry_of,
    )
    return await batch_store(state).create(new)


@router.post("/v1/batches")
async def create_batch(body: CreateBatch, state: StateDep, owner: OwnerDep) -> BatchObject:
    return await _create(state, owner, body, None)


@router.get("/v1/batches")
async def list_batches(
    state: StateDep,
    owner: OwnerDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    found, more = await batch_store(state).page(owner, limit=limit, after=after)
    return ListPage.of(found, more).model_dump(mode="json")


async def estimate_routes(
    state: ApiState,
    owner: str,
    requests: Sequence[RouteCount],
    answer_s: float | None = None,
) -> Estimate:
    """The estimate for ``requests`` at the pool's capacity now, beside ``owner``'s backlog
    (``answer_s``: the caller's answer time, else the one measured)."""
    resolve = resolver(state)
    targets = list({t.key: t for c in requests for t in resolve(c.route())}.values())
    beats = await live_workers(state.redis, state.settings.key_prefix)
    served = {p for w in beats for p in w.providers} or None
    view = await read_view(
        targets,
        limiter=state.limiter,
        breaker=state.breaker,
        served=served,
        redis=state.redis,
        prefix=state.settings.key_prefix,
        owner=owner,
        answer_s=answer_s,
    )
    backlog = await batch_store(state).backlog(owner)
    return estimate(requests, resolve, view, backlog)


@router.post("/v1/batches/estimate")
async def estimate_batch(body: EstimateRequest, state: StateDep, owner: OwnerDep) -> Estimate:
    check_endpoint(body.endpoint, [w.name for w in state.catalogue.workflows])
    return await estimate_routes(state, owner, body.requests, body.answer_s)


@router.get("/v1/batches/{batch_id}")
async def get_batch(batch_id: str, state: StateDep, owner: OwnerDep) -> BatchObject:
    return await batch_store(state).get(batch_id, owner)


@router.post("/v1/batches/{batch_id}/cancel")
async def cancel_batch(batch_id: str, state: StateDep, owner: OwnerDep) -> BatchObject:
    store = batch_store(state)
    batch = await store.owned(batch_id, owner)
    moved = await store.transition(
        batch_id, BatchStatus.cancelling, CANCELLABLE, cancelling_at=int(time.time())
    )
    if not moved and batch.status not in (BatchStatus.cancelling, BatchStatus.cancelled):
        status = batch.status.value if batch.status else "gone"
        raise InvalidRequest(
            f"Batch {batch_id} is {status} and can no longer be cancelled.",
            param="batch_id",
        )
    return await store.get(batch_id, owner)


@router.get("/v1/batches/{batch_id}/progress")
async def batch_progress(batch_id: str, state: StateDep, owner: OwnerDep) -> BatchProgress:
    store = batch_store(state)
    return await store.progress(await store.owned(batch_id, owner))


@router.get("/v1/batches/{batch_id}/results", response_model=None)
async def batch_results(
    batch_id: str, request: Request, state: StateDep, owner: OwnerDep, which: Which = Which.output
) -> Response:
    """A finished batch's output (or error) file, whole or by ``Range``; while it runs, the
    lines recorded so far, as they come."""
    store = batch_store(state)
    batch = await store.owned(batch_id, owner)
    if batch.status in TERMINAL:
        file_id = final_file(batch, which)
        if file_id is None:
            return Response(b"", media_type="application/jsonl")
        files = file_store(state)
        return await stored_content(request, files, file_id, owner, media_type="application/jsonl")
    return StreamingResponse(live_results(store, batch_id, which), media_type="application/jsonl")


@router.post("/v1/batches/{batch_id}/retry")
async def retry_batch(
    batch_id: str, state: StateDep, owner: OwnerDep, body: RetryBatch | None = None
) -> BatchObject:
    store = batch_store(state)
    batch = await store.owned(batch_id, owner)
    record = await retry_input(store, file_store(state), batch)
    old = await store.get(batch_id, owner)
    create = CreateBatch(
        input_file_id=record.id,
        endpoint=old.endpoint,
        completion_window=(body.completion_window if body else None) or old.completion_window,
        metadata=(body.metadata if body else None) or old.metadata,
        model=batch.default_model,
    )
    return await _create(state, owner, create, batch_id)
