"""Streams per gateway key: at most ``RELAY_MAX_STREAMS_PER_KEY`` open at once in a process.

A stream holds an HTTP connection, a place in a stream reader and (in a worker) a call for as
long as it lasts, minutes when it waits for a slow first token. Without a cap one tenant could
open thousands and leave nothing to the others; beyond it a stream is refused at once with a
429 ``rate_limit_exceeded`` and ``Retry-After``, as OpenAI answers a rate limit. The count is
kept in memory (a slot is given back when its stream ends, however it ends), so it holds per
API process: the API runs one.
"""

from __future__ import annotations

from collections import Counter

from relay_core.errors import TooManyStreams

RETRY_AFTER_S = 1.0


class StreamSlot:
    """One open stream's place; :meth:`release` it once the stream ended (idempotent)."""

    def __init__(self, slots: StreamSlots, owner: str) -> None:
        self._slots: StreamSlots | None = slots
        self.owner = owner

    def release(self) -> None:
        if self._slots is not None:
            self._slots.give_back(self.owner)
            self._slots = None


class StreamSlots:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def take(self, owner: str) -> StreamSlot:
        """A slot for ``owner``'s new stream, or :class:`TooManyStreams`."""
        if self._open[owner] >= self.limit:
            raise TooManyStreams(
                f"This key already has {self.limit} streams open, the most it may "
                "(RELAY_MAX_STREAMS_PER_KEY). Finish or close one, then retry.",
                retry_after=RETRY_AFTER_S,
            )
        self._open[owner] += 1
        return StreamSlot(self, owner)

    def give_back(self, owner: str) -> None:
        self._open[owner] -= 1
        if self._open[owner] <= 0:
            del self._open[owner]

    def open(self, owner: str) -> int:
        return self._open[owner]
