"""OpenAI's Files API for batch input: upload (streamed to storage), list, get, content, delete.

``POST /v1/files`` parses the multipart body as it arrives and writes the file part straight to
storage (``RELAY_STORAGE_DIR``, or the bucket of ``RELAY_STORAGE_URL``): memory stays flat
whatever the size, and going over ``RELAY_BATCH_MAX_FILE_BYTES`` (200 MB) stops the upload
with a 413, and a line over ``RELAY_BATCH_MAX_LINE_BYTES`` (1 MiB) with a 400 naming it.
Files are visible only to the gateway key that uploaded them (404 for any other).
``GET /v1/files/{id}/content`` also answers ``HEAD`` and ``Range`` (:mod:`relay_api.content`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from relay_api.content import Stored, stored_response
from relay_api.deps import OwnerDep, StateDep
from relay_api.state import ApiState
from relay_core.batch.client.files import FileStore, new_file_id
from relay_core.batch.client.upload import Upload, receive_upload
from relay_core.batch.models import FileObject, FilePurpose, ListPage
from relay_core.errors import InvalidRequest

router = APIRouter()


def file_store(state: ApiState) -> FileStore:
    return FileStore(state.redis, state.settings.key_prefix, state.storage)


async def stored_content(
    request: Request,
    store: FileStore,
    file_id: str,
    owner: str,
    *,
    media_type: str,
    filename: str | None = None,
) -> Response:
    """The owner's file ``file_id`` streamed from storage (404 when it is gone), whole or the
    ranges ``request`` asks, as an attachment named ``filename`` when given."""
    size = await store.content_size(file_id, owner)
    headers: dict[str, str] = {}
    if filename is not None:
        quoted = quote(filename)
        headers["content-disposition"] = (
            f'attachment; filename="{filename}"'
            if quoted == filename
            else f"attachment; filename*=utf-8''{quoted}"
        )
    stored = Stored(store.storage, store.name(file_id), size, media_type)
    return stored_response(request, stored, headers)


def _batch_purpose(upload: Upload) -> None:
    purpose = upload.fields.get("purpose", "")
    if purpose != FilePurpose.batch.value:
        raise InvalidRequest(
            f"Invalid purpose {purpose!r}: Relay stores files for purpose 'batch' only.",
            param="purpose",
        )


@router.post("/v1/files")
async def upload_file(request: Request, state: StateDep, owner: OwnerDep) -> FileObject:
    store = file_store(state)
    file_id = new_file_id()
    upload = await receive_upload(
        request.stream(),
        request.headers.get("content-type"),
        (store.storage, store.name(file_id)),
        state.settings.batch_max_file_bytes,
        max_line_bytes=state.settings.batch_max_line_bytes,
        accept=_batch_purpose,
    )
    record = await store.register(
        file_id,
        owner=owner,
        filename=upload.filename or "upload.jsonl",
        purpose=FilePurpose.batch,
        size=upload.bytes,
        lines=upload.lines,
    )
    return record.public()


@router.get("/v1/files")
async def list_files(
    state: StateDep,
    owner: OwnerDep,
    *,
    purpose: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    order: Literal["asc", "desc"] = "desc",
) -> dict[str, Any]:
    found, more = await file_store(state).page(
        owner, limit=limit, after=after, purpose=purpose, newest_first=order == "desc"
    )
    return ListPage.of([f.public() for f in found], more).model_dump(mode="json")


@router.get("/v1/files/{file_id}")
async def get_file(file_id: str, state: StateDep, owner: OwnerDep) -> FileObject:
    return (await file_store(state).get(file_id, owner)).public()


@router.get("/v1/files/{file_id}/content", response_model=None)
@router.head("/v1/files/{file_id}/content", response_model=None)
async def file_content(
    file_id: str, request: Request, state: StateDep, owner: OwnerDep
) -> Response:
    store = file_store(state)
    record = await store.get(file_id, owner)
    return await stored_content(
        request,
        store,
        file_id,
        owner,
        media_type="application/octet-stream",
        filename=record.filename,
    )


@router.delete("/v1/files/{file_id}")
async def delete_file(file_id: str, state: StateDep, owner: OwnerDep) -> dict[str, Any]:
    await file_store(state).delete(file_id, owner)
    return {"id": file_id, "object": "file", "deleted": True}
