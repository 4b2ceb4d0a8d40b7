"""Counts gathered in memory and written out together, every so often.

For counters nobody reads to the millisecond (usage per key and day, the successes of a closed
circuit breaker): under load one write carries hundreds of calls instead of one write each.
A write that fails keeps its counts for the next one; :meth:`Tally.aclose` writes what is left,
after any write under way. Only a process killed outright loses its last ``every_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

log = logging.getLogger("relay.tally")


class Tally(Generic[K]):
    def __init__(
        self, write: Callable[[Mapping[K, int]], Awaitable[None]], every_s: float, what: str
    ) -> None:
        self._write = write
        self.every_s = every_s
        self.what = what  # for the log
        self._counts: Counter[K] = Counter()
        self._timer: asyncio.Task[None] | None = None
        self._writing = asyncio.Lock()  # one write at a time

    def add(self, key: K, n: int = 1) -> None:
        """Count ``n`` more under ``key``; written within ``every_s`` (call on the loop)."""
        self._counts[key] += n
        if self._timer is None or self._timer.done():
            self._timer = asyncio.ensure_future(self._later())

    @property
    def pending(self) -> int:
        return sum(self._counts.values())

    async def _later(self) -> None:
        await asyncio.sleep(self.every_s)
        try:
            await asyncio.shield(self.flush())  # a close waits for it rather than cutting it
        except Exception:  # Redis blinked, say: the counts wait for the next write
            log.warning("%s not written yet", self.what, exc_info=True)

    async def flush(self) -> None:
        """Write the counts gathered so far (kept for the next write if this one fails)."""
        async with self._writing:
            counts = self._counts
            if not counts:
                return
            self._counts = Counter()
            try:
                await self._write(counts)
            except BaseException:
                self._counts.update(counts)
                raise

    async def aclose(self) -> None:
        """Write what is left (at shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        await self.flush()
