"""A folder as object storage: ``{root}/{name}``, written to ``{root}/.{name}.part`` and
renamed into place, so a reader never sees half a file. Disk reads and writes run in a thread,
off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import BinaryIO

from relay_core.storage.base import CHUNK


class LocalWriter:
    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    async def write(self, data: bytes) -> None:
        self._handle.write(data)


def _read_ranges(path: Path, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    with path.open("rb") as f:
        out: list[bytes] = []
        for offset, length in ranges:
            f.seek(offset)
            out.append(f.read(length))
        return out


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        return self.root / name

    def staging_path(self, name: str) -> Path:
        return self.root / f".{name}.part"

    @contextlib.asynccontextmanager
    async def open_write(self, name: str) -> AsyncIterator[LocalWriter]:
        staged = self.staging_path(name)
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            with staged.open("wb") as handle:
                yield LocalWriter(handle)
            staged.replace(self.path(name))
        except BaseException:
            with contextlib.suppress(OSError):
                staged.unlink(missing_ok=True)  # a full disk gets its room back
            raise

    async def read_ranges(self, name: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        return await asyncio.to_thread(_read_ranges, self.path(name), ranges)

    async def stream(
        self, name: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        with self.path(name).open("rb") as f:
            f.seek(start)
            left = sys.maxsize if end is None else end - start
            while left > 0 and (chunk := await asyncio.to_thread(f.read, min(CHUNK, left))):
                left -= len(chunk)
                yield chunk

    async def size(self, name: str) -> int | None:
        path = self.path(name)
        return path.stat().st_size if path.is_file() else None

    async def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def describe(self) -> str:
        return str(self.root)
