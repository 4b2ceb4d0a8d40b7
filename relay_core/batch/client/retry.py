"""Retry (Relay's extension): a new input file holding a final batch's failed lines.

Every line of the error file (provider refusals, ``batch_expired``, ``batch_cancelled``) is
copied, byte for byte and in input order, from the original input file into a new one; the
caller creates a batch from it. The original batch and its files are left as they are. Both
files are read from storage as streams and by byte range, the new one written as a stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import orjson

from relay_core.batch.client.files import FileStore, new_file_id
from relay_core.batch.lines import LineRef
from relay_core.batch.models import TERMINAL, BatchStatus, FilePurpose, FileRecord
from relay_core.batch.store.record import BatchRecord
from relay_core.batch.store.store import BatchStore
from relay_core.errors import InvalidRequest
from relay_core.storage.base import ObjectStorage
from relay_core.storage.reader import lines

CHUNK = 2000


async def failed_ids(error_file: AsyncIterator[bytes]) -> set[str]:
    ids: set[str] = set()
    async for raw in lines(error_file):
        if raw.strip():
            ids.add(str(orjson.loads(raw)["custom_id"]))
    return ids


async def copy_lines(
    storage: ObjectStorage, source: str, refs: Sequence[LineRef], dest: str
) -> int:
    """Copy ``refs`` of ``source`` to ``dest`` (:data:`CHUNK` lines a read); the bytes
    written."""
    size = 0
    async with storage.open_write(dest) as out:
        for start in range(0, len(refs), CHUNK):
            chunk = refs[start : start + CHUNK]
            found = await storage.read_ranges(source, [(r.offset, r.length) for r in chunk])
            data = b"".join(raw if raw.endswith(b"\n") else raw + b"\n" for raw in found)
            await out.write(data)
            size += len(data)
    return size


async def _refs(store: BatchStore, batch_id: str, wanted: set[str]) -> list[LineRef]:
    found: list[LineRef] = []
    key, start = store.keys(batch_id).lines, 0
    while raws := await store.redis.lrange(key, start, start + CHUNK - 1):
        found += [r for r in map(LineRef.decode, raws) if r.custom_id in wanted]
        start += CHUNK
    return found


async def retry_input(store: BatchStore, files: FileStore, batch: BatchRecord) -> FileRecord:
    """The new input file of the batch's failed lines (a 400 when there are none)."""
    batch_id, owner, status = batch.id, batch.owner, batch.status
    if status is None or status not in TERMINAL or status is BatchStatus.failed:
        raise InvalidRequest(
            f"Batch {batch_id} is {status}: retry it once it is completed, expired or cancelled.",
            param="batch_id",
        )
    error_file = batch.error_file_id
    if not error_file:
        raise InvalidRequest(f"Batch {batch_id} has no failed lines to retry.", param="batch_id")
    file_id = new_file_id()
    try:
        wanted = await failed_ids(files.storage.stream(files.name(error_file)))
        refs = await _refs(store, batch_id, wanted)
        size = await copy_lines(
            files.storage, files.name(batch.input_file_id), refs, files.name(file_id)
        )
    except FileNotFoundError as exc:
        raise InvalidRequest(
            f"Batch {batch_id}'s input or error file was deleted: it cannot be retried.",
            param="batch_id",
        ) from exc
    return await files.register(
        file_id,
        owner=owner,
        filename=f"{batch_id}_retry.jsonl",
        purpose=FilePurpose.batch,
        size=size,
        lines=len(refs),
    )
