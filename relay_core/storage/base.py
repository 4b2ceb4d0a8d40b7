"""What Relay asks of the place that holds file bytes (batch input, output and error files).

Two backends answer it: :class:`~relay_core.storage.local.LocalStorage` (a folder, the default)
and :class:`~relay_core.storage.s3.S3Storage` (any S3-compatible object store). Names are flat
(Relay's file ids); nothing is ever read or written whole:

- :meth:`ObjectStorage.open_write` streams bytes in and makes them visible only when the block
  exits cleanly (a local file renamed into place, an S3 multipart upload completed); on an
  error nothing is left under the name.
- :meth:`ObjectStorage.read_ranges` reads lines by byte offset (one request for many lines).
- :meth:`ObjectStorage.stream` yields an object's bytes (or one byte range of them, for a
  ranged download) a chunk at a time.

Errors are the built-in ones: :class:`FileNotFoundError` for a missing name, and
:class:`StorageUnavailable` (an :class:`OSError`) when the store refuses or cannot be reached,
so a caller that already handles a full disk handles an unreachable bucket the same way.
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

CHUNK = 1024 * 1024  # what a stream yields at a time, at most


class StorageUnavailable(OSError):
    """The object store refused the operation or could not be reached. ``strerror`` (what a
    batch's owner is shown) names the kind of failure; ``str()`` (for the log) adds the
    client's words, which name the store's address and the object, never the credentials."""

    def __init__(self, cause: str, detail: str = "") -> None:
        super().__init__(errno.EIO, f"object store unavailable: {cause}")
        self.detail = detail

    def __str__(self) -> str:
        return f"{super().__str__()} ({self.detail})" if self.detail else super().__str__()


class Writer(Protocol):
    async def write(self, data: bytes) -> None: ...


class ObjectStorage(Protocol):
    """File bytes by name: written as a stream, read by range or as a stream, deleted."""

    def open_write(self, name: str) -> AbstractAsyncContextManager[Writer]:
        """A writer whose bytes appear under ``name`` when the block exits without error
        (replacing what was there); on an error they are discarded."""
        ...

    async def read_ranges(self, name: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes at each ``(offset, length)``; :class:`FileNotFoundError` when ``name``
        is not stored."""
        ...

    def stream(self, name: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The object's bytes from ``start`` to ``end`` (exclusive; None: its end), a chunk
        (at most :data:`CHUNK`) at a time; :class:`FileNotFoundError` (at the first step)
        when ``name`` is not stored. ``start`` must lie inside the object unless it is 0."""
        ...

    async def size(self, name: str) -> int | None:
        """The object's size in bytes, or None when it is not stored."""
        ...

    async def delete(self, name: str) -> None:
        """Remove ``name`` (gone already is fine)."""
        ...

    def describe(self) -> str:
        """Where the bytes are, for logs (a folder, or ``s3://bucket/prefix``; no secret)."""
        ...
