"""Relay's file extensions for the console: prompts in, and a stored file's estimate.

``POST /v1/relay/files/prompts`` takes a text file (one prompt per line) or a CSV of prompts,
the same formats as ``relay batch submit`` (:mod:`relay_core.batch.client.prompts`), and
stores the batch JSONL built from it: the browser sends the file as it is, the conversion is
the CLI's own. ``POST /v1/relay/files/{file_id}/estimate`` is ``POST /v1/batches/estimate``
for the lines of a stored file. Both see only the caller's own files.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from relay_api.deps import OwnerDep, StateDep
from relay_api.routes.batches import estimate_routes, resolver
from relay_api.routes.files import file_store
from relay_core.batch.client.estimate import Estimate, RouteCount
from relay_core.batch.client.files import new_file_id
from relay_core.batch.client.prompts import build_jsonl, kind_of, route_counts
from relay_core.batch.client.upload import receive_upload
from relay_core.batch.models import FileObject, FilePurpose
from relay_core.errors import InvalidRequest
from relay_core.routing.targets import Selection
from relay_core.storage.base import CHUNK, ObjectStorage
from relay_core.storage.local import LocalStorage

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
        raise InvalidRequest(
            f"{name.name} is not UTF-8: convert it first (e.g. iconv -f latin1 -t utf-8).",
            param="file",
        ) from None
    if count == 0:
        raise InvalidRequest(f"{name.name} holds no prompt.", param="file")
    return count


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


async def _copy(path: Path, storage: ObjectStorage, name: str) -> int:
    """Stream the local file ``path`` into ``storage`` as ``name``; its size."""
    size = 0
    chunks = _chunks(path)
    async with storage.open_write(name) as out:
        while chunk := await run_in_threadpool(next, chunks, b""):
            await out.write(chunk)
            size += len(chunk)
    return size


@router.post("/v1/relay/files/prompts")
async def upload_prompts(request: Request, state: StateDep, owner: OwnerDep) -> FileObject:
    """A text or CSV file of prompts (multipart ``file``; ``model``, default the meta-model),
    stored as a batch file of ``/v1/chat/completions`` lines."""
    store = file_store(state)
    file_id = new_file_id()
    # The prompts and the JSONL built from them pass through a scratch folder (the CLI's own
    # conversion reads and writes files); the JSONL then streams to the files' storage.
    with tempfile.TemporaryDirectory(prefix="relay-prompts-") as scratch:
        work = LocalStorage(Path(scratch))
        upload = await receive_upload(
            request.stream(),
            request.headers.get("content-type"),
            (work, "prompts"),
            state.settings.batch_max_file_bytes,
            max_line_bytes=state.settings.batch_max_line_bytes,
        )
        name = _prompts_name(upload.filename)
        model = upload.fields.get("model") or state.settings.meta_model
        resolver(state)(Selection(model))  # an unknown model: a 404 naming it, now
        built = Path(scratch) / "batch.jsonl"
        lines = await _build(work.path("prompts"), built, model, name)
        size = await _copy(built, store.storage, store.name(file_id))
    record = await store.register(
        file_id,
        owner=owner,
        filename=f"{name.stem}.jsonl",
        purpose=FilePurpose.batch,
        size=size,
        lines=lines,
    )
    return record.public()


@router.post("/v1/relay/files/{file_id}/estimate")
async def estimate_file(
    file_id: str, state: StateDep, owner: OwnerDep, model: str | None = None
) -> Estimate:
    """How long the lines of the caller's file ``file_id`` would take (``model`` for the lines
    that name none, as a batch's ``model``)."""
    store = file_store(state)
    await store.get(file_id, owner)  # another owner's file: a 404, as for /v1/files
    with tempfile.TemporaryDirectory(prefix="relay-estimate-") as scratch:
        path = Path(scratch) / "batch.jsonl"
        with path.open("wb") as out:
            async for chunk in store.storage.stream(store.name(file_id)):
                await run_in_threadpool(out.write, chunk)
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
