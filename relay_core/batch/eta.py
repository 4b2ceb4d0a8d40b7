"""A running batch's measured rate and the time it has left at that rate.

The rate is the lines finished since the batch went ``in_progress`` over the time since; the
ETA is the lines left at that rate. Both are None until a line has finished (and once the
batch is no longer running, the ETA is). ``GET /v1/batches/{id}`` and its ``/progress`` give
them (``rate_per_s``, ``eta_seconds``); ``relay batch status --watch`` shows them.
"""

from __future__ import annotations

from relay_core.batch.models import BatchStatus
from relay_core.batch.store.record import BatchRecord


def measured_rate(batch: BatchRecord, now: float) -> float | None:
    """Lines finished per second since the batch went in_progress (None: none yet)."""
    if batch.in_progress_at is None or batch.done <= 0:
        return None
    return batch.done / max(1e-3, now - batch.in_progress_at)


def eta_s(batch: BatchRecord, now: float) -> float | None:
    """Seconds left at the measured rate, while the batch runs (None: unknown or over)."""
    rate = measured_rate(batch, now)
    if batch.status is not BatchStatus.in_progress or rate is None:
        return None
    return max(0, batch.total - batch.done) / rate
