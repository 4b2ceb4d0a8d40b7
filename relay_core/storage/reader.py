"""Reading a stored object from code that wants a file: the validator's scan runs in a thread
(it is CPU work that must stay off the event loop) and reads the object through
:func:`thread_reader`, which pulls each chunk from the async stream on the loop."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

from relay_core.storage.base import CHUNK


async def _step(chunks: AsyncIterator[bytes]) -> bytes:
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return b""


class _Raw(io.RawIOBase):
    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._chunks = chunks
        self._loop = loop
        self._left = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._left and not self._done:
            got = asyncio.run_coroutine_threadsafe(_step(self._chunks), self._loop).result()
            self._left, self._done = memoryview(got), not got
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


def thread_reader(
    chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop
) -> io.BufferedReader:
    """A blocking reader of ``chunks`` for a thread other than ``loop``'s (which must keep
    running: each read past the buffer waits on it)."""
    return io.BufferedReader(_Raw(chunks, loop), buffer_size=CHUNK)


async def lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Each line of the stream (its newline dropped)."""
    rest = b""
    async for chunk in chunks:
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        for part in parts:
            yield part
    if rest:
        yield rest
