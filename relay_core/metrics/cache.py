"""One scrape's text, shared by every scrape for a moment.

A collection (the live gauges' Redis reads, then rendering every process's metric files) cost
the API ~21 ms of CPU, so twenty scrapers took another tenant's median from 23 to 280 ms. A
:class:`ScrapeCache` makes at most one collection per ``ttl_s``, however many scrape: the first
scraper collects, the ones that arrive meanwhile wait for it and get the same text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class ScrapeCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._text: bytes | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, ttl_s: float, collect: Callable[[], Awaitable[bytes]]) -> bytes:
        """The text collected less than ``ttl_s`` ago, else ``collect()``'s (one at a time)."""
        async with self._lock:
            if self._text is not None and self.clock() - self._at < ttl_s:
                return self._text
            text = await collect()
            self._text, self._at = text, self.clock()
            return text
