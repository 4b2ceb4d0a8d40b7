"""Running batches as ``relay status`` and the ``relay_batch_lines`` gauge see them."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from relay_core.batch.models import BatchProgress
from relay_core.batch.store.store import BatchStore

# A line is queued (not yet fed to a provider queue), in progress (fed, no result yet),
# completed or failed.
LINE_STATES = ("queued", "in_progress", "completed", "failed")


async def running_batches(redis: Redis, prefix: str) -> list[BatchProgress]:
    """Progress of every batch the workers look after (all owners), oldest first."""
    store = BatchStore(redis, prefix)
    found: list[BatchProgress] = []
    for batch_id in await store.active():
        batch = await store.batch(batch_id)
        if batch is not None:
            found.append(await store.progress(batch))
    return sorted(found, key=lambda b: (b.created_at, b.id))


def lines_by_state(batches: Sequence[BatchProgress]) -> dict[str, int]:
    """Lines of ``batches`` in each of :data:`LINE_STATES`."""
    counts = dict.fromkeys(LINE_STATES, 0)
    for b in batches:
        rc = b.request_counts
        dispatched = max(b.dispatched, rc.completed + rc.failed)
        counts["queued"] += max(0, rc.total - dispatched)
        counts["in_progress"] += max(0, dispatched - rc.completed - rc.failed)
        counts["completed"] += rc.completed
        counts["failed"] += rc.failed
    return counts
