"""Finalize a batch once: write its output and error files, then make it final.

Runs under the batch's ``finalize`` lease, after a status move that stops new records
(``in_progress → finalizing``, or ``cancelling`` with ``closing`` set), so the results it reads
are the last. Lines are written in input order; a line without a result goes to the error file
(counted as failed) with its last failed attempt if it ran, else as ``batch_expired`` or
``batch_cancelled``. The output file ids are derived from the batch id, so a finalize cut
short by a dead worker is simply redone.

Both files are streamed to storage (:mod:`relay_core.storage`: a folder, or S3 multipart uploads)
a chunk of lines at a time, never held whole, and appear only once complete.

When the files cannot be written (storage full or read-only, a path taken, the object store
unreachable: any :class:`OSError`), nothing is lost:
the results stay in Redis and the batch stays ``finalizing``. :func:`write_failed` says why in
the batch (its ``errors``, ``relay status``, ``/metrics``) and the finalize is tried again after
:func:`retry_delay`, doubled at each failure up to ``RELAY_BATCH_FINALIZE_RETRY_MAX_S``. A
finalize that succeeds clears the cause.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from relay_core.batch.client.files import FileStore
from relay_core.batch.lines import LineRef
from relay_core.batch.models import BatchStatus, EndReason, FilePurpose
from relay_core.batch.run.outputs import dropped, split
from relay_core.batch.store.record import BatchRecord
from relay_core.batch.store.store import BatchStore
from relay_core.settings import Settings
from relay_core.storage.base import Writer

CHUNK = 1000

_FINAL = {
    EndReason.completed: (BatchStatus.completed, "completed_at", "batch_expired"),
    EndReason.expired: (BatchStatus.expired, "expired_at", "batch_expired"),
    EndReason.cancelled: (BatchStatus.cancelled, "cancelled_at", "batch_cancelled"),
}


@dataclass
class _Out:
    file_id: str
    sink: Writer
    lines: int = 0
    size: int = 0
    pending: list[bytes] = field(default_factory=list)

    def add(self, line: bytes) -> None:
        self.pending += (line, b"\n")
        self.lines += 1
        self.size += len(line) + 1

    async def flush(self) -> None:
        if self.pending:
            await self.sink.write(b"".join(self.pending))
            self.pending.clear()


def output_ids(batch_id: str) -> tuple[str, str]:
    tail = batch_id.removeprefix("batch_")
    return f"file-{tail}-output", f"file-{tail}-errors"


async def finalize(
    store: BatchStore,
    files: FileStore,
    batch: BatchRecord,
    keep_lease: Callable[[], Awaitable[None]],
) -> BatchStatus:
    """Write the files and move the batch to its final status (returned)."""
    batch_id, owner = batch.id, batch.owner
    reason = batch.end_reason or EndReason.completed
    status, stamp, missing_code = _FINAL[reason]
    out_id, err_id = output_ids(batch_id)
    async with (
        files.storage.open_write(out_id) as out_sink,
        files.storage.open_write(err_id) as err_sink,
    ):  # an error inside leaves neither file (a full disk gets its room back)
        out, err = _Out(out_id, out_sink), _Out(err_id, err_sink)
        missing = await _write_all(store, batch_id, (out, err), missing_code, keep_lease)
    out_file = await _register(files, out, owner, f"{batch_id}_output.jsonl")
    err_file = await _register(files, err, owner, f"{batch_id}_errors.jsonl")
    failed = batch.failed + missing
    moved = await store.transition(
        batch_id,
        status,
        [BatchStatus.finalizing, BatchStatus.cancelling],
        **{stamp: int(time.time())},
        failed=failed,
        output_file_id=out_file or "",
        error_file_id=err_file or "",
        finalize_error="",  # written at last: nothing is failing any more
        finalize_failures=0,
    )
    if moved:  # the files hold the results now
        k = store.keys(batch_id)
        await store.redis.delete(k.results, k.inflight, k.tries, k.last)
    await store.retire(batch_id)
    return status


def retry_delay(failures: int, settings: Settings) -> float:
    """Seconds before the next attempt, after ``failures`` failed ones (1, 2, ...)."""
    first, cap = settings.batch_finalize_retry_s, settings.batch_finalize_retry_max_s
    return float(min(cap, first * 2 ** min(max(0, failures - 1), 30)))


async def write_failed(store: BatchStore, batch_id: str, exc: OSError, settings: Settings) -> float:
    """Record that writing ``batch_id``'s files failed with ``exc``; returns the seconds until
    the next attempt. The message names the cause, never the storage path (the batch's owner
    reads it; the log has the path)."""
    cause = exc.strerror or type(exc).__name__
    message = (
        f"The batch's output files could not be written to storage ({cause}). Its results "
        "are kept, and writing them is retried until storage accepts them."
    )
    failures = await store.finalize_failed(batch_id, message)
    return retry_delay(failures, settings)


async def _write_all(
    store: BatchStore,
    batch_id: str,
    outs: tuple[_Out, _Out],
    missing_code: str,
    keep_lease: Callable[[], Awaitable[None]],
) -> int:
    keys = store.keys(batch_id)
    out, err = outs
    missing, start = 0, 0
    while True:
        raws = await store.redis.lrange(keys.lines, start, start + CHUNK - 1)
        if not raws:
            return missing
        refs = [LineRef.decode(r) for r in raws]
        stored: list[bytes | None] = [
            None if v is None else _bytes(v)
            for v in await store.redis.hmget(keys.results, [r.custom_id for r in refs])
        ]
        unfinished = [start + i for i, v in enumerate(stored) if v is None]
        last = dict(zip(unfinished, await store.last_failures(batch_id, unfinished), strict=True))
        for i, (ref, value) in enumerate(zip(refs, stored, strict=True)):
            if value is None:
                missing += 1
            # A line without a result shows its last failure if it ran, else why it did not.
            found = value or last.get(start + i) or dropped(ref.custom_id, missing_code)
            is_output, line = split(found)
            (out if is_output else err).add(line)
        await out.flush()
        await err.flush()
        await asyncio.sleep(0)  # let the worker's other coroutines run between chunks
        await keep_lease()
        start += CHUNK


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


async def _register(files: FileStore, out: _Out, owner: str, filename: str) -> str | None:
    if out.lines == 0:
        await files.storage.delete(out.file_id)
        return None
    await files.register(
        out.file_id,
        owner=owner,
        filename=filename,
        purpose=FilePurpose.batch_output,
        size=out.size,
        lines=out.lines,
    )
    return out.file_id
