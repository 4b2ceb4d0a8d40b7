"""Relay's file extensions for the console: prompts in, and a stored file's estimate.

``POST /v1/relay/files/prompts`` takes a text file (one prompt per line) or a CSV of prompts,
the same formats as ``relay batch submit`` (:mod:`relay_core.batch.client.prompts`), and
stores the batch JSONL built from it: the browser sends the file as it is, the conversion is
the CLI's own. ``POST /v1/relay/files/{file_id}/estimate`` is ``POST /v1/batches/estimate``
for the lines of a stored file. Both see only the caller's own files.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from relay_api.deps import OwnerDep, StateDep
from relay_api.routes.batches import estimate_routes, resolver
from relay_api.routes.files import file_store
from relay_core.batch.client.estimate import Estimate, RouteCount
from relay_core.batch.client.files import new_file_id
from relay_core.batch.client.prompts import build_jsonl, kind_of, route_counts
from relay_core.batch.client.upload import discard, receive_upload
from relay_core.batch.models import FileObject, FilePurpose
from relay_core.errors import InvalidRequest
from relay_core.routing.targets import Selection

router = APIRouter()


def _prompts_name(filename: str | None) -> Path:
    name = Path(filename or "prompts.txt")
    if kind_of(name) == "jsonl":
        raise InvalidRequest(
            f"{name.name} is a JSONL batch file: upload it to POST /v1/files (purpose 'batch').",
            param="file",
        )
    return name


async def _build(source: Path, dest: Path, model: str, name: Path) -> int:
    """The prompts of ``source`` (uploaded as ``name``: its extension tells text from CSV)."""
    try:
        count = await run_in_threadpool(build_jsonl, source, dest, model, kind_of(name))
    except UnicodeDecodeError:
        discard(dest)
        raise InvalidRequest(
            f"{name.name} is not UTF-8: convert it first (e.g. iconv -f latin1 -t utf-8).",
            param="file",
        ) from None
    if count == 0:
        discard(dest)
        raise InvalidRequest(f"{name.name} holds no prompt.", param="file")
    return count


@router.post("/v1/relay/files/prompts")
async def upload_prompts(request: Request, state: StateDep, owner: OwnerDep) -> FileObject:
    """A text or CSV file of prompts (multipart ``file``; ``model``, default the meta-model),
    stored as a batch file of ``/v1/chat/completions`` lines."""
    store = file_store(state)
    file_id = new_file_id()
    source = store.dir / f".{file_id}.prompts"
    upload = await receive_upload(
        request.stream(),
        request.headers.get("content-type"),
        source,
        state.settings.batch_max_file_bytes,
        max_line_bytes=state.settings.batch_max_line_bytes,
    )
    staged = store.staging_path(file_id)
    try:
        name = _prompts_name(upload.filename)
        model = upload.fields.get("model") or state.settings.meta_model
        resolver(state)(Selection(model))  # an unknown model: a 404 naming it, now
        lines = await _build(source, staged, model, name)
    finally:
        discard(source)
    record = await store.register(
        file_id,
        owner=owner,
        filename=f"{name.stem}.jsonl",
        purpose=FilePurpose.batch,
        size=staged.stat().st_size,
        lines=lines,
    )
    return record.public()


@router.post("/v1/relay/files/{file_id}/estimate")
async def estimate_file(
    file_id: str, state: StateDep, owner: OwnerDep, model: str | None = None
) -> Estimate:
    """How long the lines of the caller's file ``file_id`` would take (``model`` for the lines
    that name none, as a batch's ``model``)."""
    path = await file_store(state).content_path(file_id, owner)
    counts = await run_in_threadpool(route_counts, path, model)
    if not counts:
        raise InvalidRequest(
            f"No line of {file_id} names a model: give one (model=...).", param="model"
        )
    requests = [
        RouteCount(
            model=sel.model,
            model_type=sel.model_type,
            model_scale=sel.model_scale,
            model_name=sel.model_name,
            count=n,
        )
        for sel, n in counts.items()
    ]
    return await estimate_routes(state, owner, requests)
