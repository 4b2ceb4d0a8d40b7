"""A worker's slots grow with the calls it must keep in flight (Little's law).

Each call a worker makes holds one Celery pool thread, waiting on the event loop, until its
answer is in, and Celery takes a new message only while a slot is free (its prefetch count,
one per thread). With a fixed 64 threads, answers of 10 s cap a worker at 6.4 calls/s however
fast its providers would go. So the pool's threads may grow up to
``RELAY_WORKER_MAX_CONCURRENCY``, and once a second :class:`Elastic` sets the number of slots
(Celery's prefetch count, and the pool's advertised size) to what
:func:`relay_core.dispatch.capacity.slots_needed` asks for: the rate of the providers served x
the measured slot time, never fewer than ``RELAY_WORKER_CONCURRENCY``. Threads are started
only when a message needs one (``ThreadPoolExecutor``), and an idle one costs a stack, no CPU.

Growing is at once; shrinking waits until the need has stayed below :data:`SHRINK_BELOW` of the
slots for :data:`SHRINK_AFTER_S`, so a lull between two waves keeps its slots. The prefetch
count is changed as Celery's own autoscaler does (``Consumer._update_prefetch_count``), so
Celery's reconnect logic sees a consistent pool size.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from celery.concurrency.thread import TaskPool

log = logging.getLogger("relay.worker")

EVERY_S = 1.0
SHRINK_BELOW = 0.5
SHRINK_AFTER_S = 30.0


def elastic_pool(max_threads: int) -> type[TaskPool]:
    """Celery's threads pool, with room for ``max_threads`` threads; it starts advertising
    the concurrency it was given (``limit``), which :class:`Elastic` then moves."""

    class ElasticPool(TaskPool):
        executor: ThreadPoolExecutor

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.executor.shutdown(wait=False)
            self.executor = ThreadPoolExecutor(max_workers=max(max_threads, self.limit))

    return ElasticPool


class Needs(Protocol):
    async def slots_needed(self) -> float: ...


class Elastic:
    """Keeps a running Celery worker's slots at ``needs``' figure, in ``[base, bound]``."""

    def __init__(self, worker: Any, needs: Needs, *, base: int, bound: int) -> None:
        self.worker = worker  # celery.worker.WorkController
        self.needs = needs
        self.base = base
        self.bound = max(base, bound)
        self.slots = base
        self._low_since: float | None = None

    def target(self, need: float, now: float) -> int:
        """The slots to keep for ``need``: more at once, fewer only after a sustained lull."""
        wanted = max(self.base, min(self.bound, math.ceil(need)))
        if wanted >= self.slots:
            self._low_since = None
            return wanted
        if wanted > self.slots * SHRINK_BELOW:
            self._low_since = None
            return self.slots
        self._low_since = self._low_since if self._low_since is not None else now
        return wanted if now - self._low_since >= SHRINK_AFTER_S else self.slots

    def apply(self, slots: int) -> bool:
        """Set the worker's slots (False while its consumer is not consuming yet)."""
        consumer = getattr(self.worker, "consumer", None)
        pool = getattr(self.worker, "pool", None)
        if consumer is None or pool is None or getattr(consumer, "qos", None) is None:
            return False
        change = slots - self.slots
        if change:
            pool.limit = slots
            consumer._update_prefetch_count(change)
            log.info("worker slots %d -> %d", self.slots, slots)
            self.slots = slots
            self._low_since = None
        return True

    async def run(self) -> None:
        while True:
            try:
                self.apply(self.target(await self.needs.slots_needed(), time.monotonic()))
            except Exception:  # Redis blinked, say: the next round will do
                log.warning("sizing the worker's slots failed", exc_info=True)
            await asyncio.sleep(EVERY_S)
