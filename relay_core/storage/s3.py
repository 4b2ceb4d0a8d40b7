"""Any S3-compatible object store (AWS S3, MinIO, Ceph, R2, ...) through obstore.

obstore (Python bindings of the Rust ``object_store`` crate) is async, streams a get, reads
many byte ranges in one call (coalescing those that are close: a feeder tick's lines are one
request, not hundreds) and writes through a buffered multipart upload. Credentials come from
the usual ``AWS_*`` environment variables (or the instance's role), read by the client; Relay
never sees or logs them.

Memory: a writer holds at most :data:`PART` bytes per part being sent, :data:`PARTS_IN_FLIGHT`
parts at once; a stream yields :data:`~relay_core.storage.base.CHUNK`-sized pieces.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store

from relay_core.storage.base import CHUNK, StorageUnavailable

if TYPE_CHECKING:
    from obstore import AsyncWritableFile, GetOptions

PART = 5 * 1024 * 1024  # S3's smallest part (every part but the last)
PARTS_IN_FLIGHT = 2
# A store that does not answer fails the operation in seconds, not the client's minutes: a
# worker's tick must not stall on it (the finalize is retried; a line read is retried).
RETRY = {"max_retries": 3, "retry_timeout": timedelta(seconds=15)}
TIMEOUTS = {"connect_timeout": timedelta(seconds=5), "timeout": timedelta(seconds=60)}


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """obstore's errors (its own classes, or a bare :class:`OSError` for a failed request) as
    :class:`StorageUnavailable`; a missing object stays a :class:`FileNotFoundError`."""
    try:
        yield
    except (FileNotFoundError, StorageUnavailable):
        raise
    except (BaseError, OSError) as exc:
        raise StorageUnavailable(type(exc).__name__, str(exc)) from exc


class S3Writer:
    def __init__(self, handle: AsyncWritableFile) -> None:
        self._handle = handle

    async def write(self, data: bytes) -> None:
        with _translated():
            await self._handle.write(data)


class S3Storage:
    def __init__(self, store: S3Store, url: str) -> None:
        self.store = store
        self.url = url

    @classmethod
    def from_url(cls, url: str, endpoint_url: str | None = None) -> S3Storage:
        """``url`` is ``s3://bucket`` or ``s3://bucket/prefix``; ``endpoint_url`` a non-AWS
        store's address (``http://`` allowed only when given so)."""
        config: dict[str, Any] = {}
        client: dict[str, Any] = dict(TIMEOUTS)
        if endpoint_url:
            config["endpoint"] = endpoint_url
            client["allow_http"] = endpoint_url.startswith("http://")
        store = S3Store.from_url(url, client_options=client, retry_config=RETRY, **config)  # type: ignore[arg-type]
        return cls(store, url)

    @contextlib.asynccontextmanager
    async def open_write(self, name: str) -> AsyncIterator[S3Writer]:
        handle = obstore.open_writer_async(
            self.store, name, buffer_size=PART, max_concurrency=PARTS_IN_FLIGHT
        )
        with _translated():
            async with handle:  # an error inside leaves the upload uncompleted: no object
                yield S3Writer(handle)

    async def read_ranges(self, name: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        if not ranges:
            return []
        with _translated():
            found = await obstore.get_ranges_async(
                self.store,
                name,
                starts=[offset for offset, _ in ranges],
                lengths=[length for _, length in ranges],
            )
        return [bytes(b) for b in found]

    async def stream(
        self, name: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        options: GetOptions = {}
        if start or end is not None:  # one ranged GET; the store sends only those bytes
            options["range"] = {"offset": start} if end is None else (start, end)
        with _translated():
            result = await obstore.get_async(self.store, name, options=options)
            async for chunk in result.stream(min_chunk_size=CHUNK // 4):
                view = memoryview(chunk)  # the client may gather more than asked: cut it
                for at in range(0, len(view), CHUNK):
                    yield bytes(view[at : at + CHUNK])

    async def size(self, name: str) -> int | None:
        try:
            with _translated():
                meta = await obstore.head_async(self.store, name)
        except FileNotFoundError:
            return None
        return int(meta["size"])

    async def delete(self, name: str) -> None:
        with _translated():
            await obstore.delete_async(self.store, name)

    def describe(self) -> str:
        return self.url
