"""Validating → in_progress or failed: check the input file and store its line index.

Run by one worker (under the batch's ``validate`` lease; a worker that dies mid-way leaves the
lease to expire and another starts over). The file scan runs in a thread, off the worker's
event loop, reading the stored file as a stream (:func:`~relay_core.storage.reader.thread_reader`).
Nothing is enqueued unless every line is valid.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

from relay_core.batch.client.files import FileStore
from relay_core.batch.client.validate import Scan
from relay_core.batch.models import (
    BatchError,
    BatchErrors,
    BatchStatus,
    Endpoint,
    FilePurpose,
    workflow_name,
)
from relay_core.batch.store.record import BatchRecord
from relay_core.batch.store.store import BatchStore
from relay_core.errors import NotFound
from relay_core.storage.reader import thread_reader

PUSH_CHUNK = 2000
# Scans run on threads of their own. A scan blocks on its file's reads, which the folder
# backend runs on the loop's default executor (asyncio.to_thread): scanning on that same
# executor, as many batches validating at once as it has threads (6 on 2 cores) each waited
# for a read no thread was left to run, and stayed ``validating`` for good.
SCANS = ThreadPoolExecutor(thread_name_prefix="relay-scan")

# (the file's bytes, endpoint, default model) -> the scan (runs in a thread)
Scanner = Callable[[BinaryIO, Endpoint | str, str | None], Scan]


async def _fail(store: BatchStore, batch_id: str, errors: list[BatchError]) -> BatchStatus:
    body = BatchErrors(data=errors).model_dump_json()
    await store.transition(
        batch_id,
        BatchStatus.failed,
        [BatchStatus.validating],
        errors=body,
        failed_at=int(time.time()),
    )
    await store.retire(batch_id)
    return BatchStatus.failed


async def _input_name(files: FileStore, batch: BatchRecord) -> str | BatchError:
    file_id = batch.input_file_id
    try:
        record = await files.get(file_id, batch.owner)
    except NotFound:
        return BatchError(
            code="file_not_found",
            message=f"Input file {file_id} does not exist.",
            param="input_file_id",
        )
    if record.purpose is not FilePurpose.batch:
        return BatchError(
            code="invalid_file_purpose",
            message=f"Input file {file_id} was uploaded with purpose '{record.purpose}', "
            "not 'batch'.",
            param="input_file_id",
        )
    return files.name(file_id)


async def validate_batch(
    store: BatchStore, files: FileStore, batch: BatchRecord, scanner: Scanner
) -> BatchStatus:
    """Validate the batch; its status afterwards (``in_progress``, ``failed``, or whatever a
    concurrent cancel made it)."""
    batch_id = batch.id
    name = await _input_name(files, batch)
    if isinstance(name, BatchError):
        return await _fail(store, batch_id, [name])
    loop = asyncio.get_running_loop()
    source = thread_reader(files.storage.stream(name), loop)
    endpoint = batch.endpoint if workflow_name(batch.endpoint) else Endpoint(batch.endpoint)
    scan = await loop.run_in_executor(SCANS, scanner, source, endpoint, batch.default_model)
    if scan.errors:
        return await _fail(store, batch_id, scan.errors)
    keys = store.keys(batch_id)
    await store.redis.delete(keys.lines, keys.routes)
    for start in range(0, len(scan.refs), PUSH_CHUNK):
        chunk = scan.refs[start : start + PUSH_CHUNK]
        await store.redis.rpush(keys.lines, *[r.encode() for r in chunk])
    if scan.routes:
        await store.redis.rpush(keys.routes, *[r.encode() for r in scan.routes])
    models = {r.model for r in scan.routes}
    await store.redis.hset(keys.meta, "total", len(scan.refs))
    moved = await store.transition(
        batch_id,
        BatchStatus.in_progress,
        [BatchStatus.validating],
        in_progress_at=int(time.time()),
        model=models.pop() if len(models) == 1 else "",
    )
    return BatchStatus.in_progress if moved else BatchStatus.cancelling
