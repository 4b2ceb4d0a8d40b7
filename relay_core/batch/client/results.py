"""Partial results (Relay's extension): the lines a batch finished so far, while it runs.

While the batch runs, its results live in Redis (one entry per finished ``custom_id``) and are
streamed from there, a few hundred at a time, in no particular order. Once it is final its
output or error file holds them (in input order): :func:`final_file` names it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from enum import StrEnum

from relay_core.batch.run.outputs import split
from relay_core.batch.store.record import BatchRecord
from relay_core.batch.store.store import BatchStore

SCAN_COUNT = 500


class Which(StrEnum):
    output = "output"
    errors = "errors"


def final_file(batch: BatchRecord, which: Which) -> str | None:
    """The id of a final batch's output or error file (None: it has no such lines)."""
    return batch.output_file_id if which is Which.output else batch.error_file_id


async def live_results(store: BatchStore, batch_id: str, which: Which) -> AsyncIterator[bytes]:
    """The ``which`` lines recorded so far, one JSONL line per chunk."""
    want_output = which is Which.output
    key = store.keys(batch_id).results
    async for _custom_id, value in store.redis.hscan_iter(key, count=SCAN_COUNT):
        is_output, line = split(value)
        if is_output == want_output:
            yield line + b"\n"
