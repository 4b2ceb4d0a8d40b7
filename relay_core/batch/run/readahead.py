"""A batch's input lines read ahead, a block at a time, so that the feeder's tick does not wait
on storage.

The feeder claims lines in file order, a few per tick. Reading each tick's lines by range
costs one request per tick (an S3 ``GET``, tens of milliseconds to a store across a network,
during which the claimed lines sit unsent); instead one ranged read fetches :data:`BLOCK`
bytes from the first line wanted (a thousand or so lines), the next ticks are served from it,
and once the claims are halfway through it the next block is fetched in the background. A tick
then waits on storage only for the first block and for lines outside the blocks (sent again
after a timeout or a worker's death: read by range, as before).

Memory: per file being fed, at most two blocks (the one served and the one being fetched);
:meth:`ReadAhead.forget` drops them. Every worker reads the blocks it serves: with two feeding
workers each reads the file about once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from relay_core.storage.base import ObjectStorage

BLOCK = 512 * 1024
AHEAD_AT = 0.5  # fetch the next block once a claim gets this far into the current one


@dataclass(frozen=True)
class Block:
    start: int
    data: bytes

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def get(self, offset: int, length: int) -> bytes | None:
        if self.start <= offset and offset + length <= self.end:
            return self.data[offset - self.start : offset - self.start + length]
        return None


@dataclass
class _File:
    size: int
    current: Block | None = None
    fetching: asyncio.Task[Block] | None = None  # the next block, from ``fetch_at``
    fetch_at: int = 0


@dataclass
class ReadAhead:
    storage: ObjectStorage
    block: int = BLOCK
    _files: dict[str, _File] = field(default_factory=dict)

    async def read(self, name: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes at each ``(offset, length)`` of ``name`` (each a whole line), as
        :meth:`~relay_core.storage.base.ObjectStorage.read_ranges` reads them
        (:class:`FileNotFoundError` when it is not stored)."""
        if not ranges:
            return []
        held = await self._file(name)
        found: list[bytes | None] = [self._cached(held, o, n) for o, n in ranges]
        missing = [i for i, got in enumerate(found) if got is None]
        if missing and await self._reached_next(held, max(ranges[i][0] for i in missing)):
            for i in missing:
                found[i] = self._cached(held, *ranges[i])
            missing = [i for i in missing if found[i] is None]
        ahead = [i for i in missing if held.current is None or ranges[i][0] >= held.current.end]
        if ahead:  # past the blocks: a block from the first of them
            start = min(ranges[i][0] for i in ahead)
            last = max(ranges[i][0] + ranges[i][1] for i in ahead)
            held.current = await self._fetch(name, held.size, start, max(self.block, last - start))
            for i in ahead:
                found[i] = held.current.get(*ranges[i])
        behind = [i for i in missing if found[i] is None]
        if behind:  # lines sent again, from before the blocks: by range
            again = await self.storage.read_ranges(name, [ranges[i] for i in behind])
            for i, got in zip(behind, again, strict=True):
                found[i] = got
        self._maybe_prefetch(name, held, max(o + n for o, n in ranges))
        return [b"" if got is None else got for got in found]

    def forget(self, name: str) -> None:
        held = self._files.pop(name, None)
        if held is not None and held.fetching is not None:
            held.fetching.cancel()

    async def _file(self, name: str) -> _File:
        held = self._files.get(name)
        if held is None:
            size = await self.storage.size(name)
            if size is None:
                raise FileNotFoundError(name)
            held = self._files[name] = _File(size)
        return held

    @staticmethod
    def _cached(held: _File, offset: int, length: int) -> bytes | None:
        return None if held.current is None else held.current.get(offset, length)

    async def _reached_next(self, held: _File, offset: int) -> bool:
        """When the claims reached the block being fetched (a line at ``offset`` or past
        its start), wait for it and serve from it; a fetch that failed is dropped (the read
        that follows says why)."""
        task = held.fetching
        if task is None or offset < held.fetch_at:
            return False
        held.fetching = None
        try:
            held.current = await task
        except OSError:
            return False
        return True

    async def _fetch(self, name: str, size: int, start: int, length: int) -> Block:
        """The block from ``start`` (a line's first byte), cut after its last whole line
        (the next block starts at the next line)."""
        (data,) = await self.storage.read_ranges(name, [(start, max(0, min(length, size - start)))])
        if start + len(data) < size:
            data = data[: data.rfind(b"\n") + 1]
        return Block(start, data)

    def _maybe_prefetch(self, name: str, held: _File, upto: int) -> None:
        block = held.current
        if block is None or held.fetching is not None or not block.data or block.end >= held.size:
            return
        if upto - block.start >= AHEAD_AT * len(block.data):
            task = asyncio.ensure_future(self._fetch(name, held.size, block.end, self.block))
            task.add_done_callback(_quiet)
            held.fetching, held.fetch_at = task, block.end


def _quiet(task: asyncio.Task[Block]) -> None:
    """A prefetch that failed is retried by the read that needs it: no "never retrieved"
    warning for it."""
    if not task.cancelled():
        task.exception()
