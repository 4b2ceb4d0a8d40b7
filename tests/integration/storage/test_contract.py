"""One contract for file storage, run against both backends: a folder and an S3 bucket on a
real S3-protocol server (moto's). Relay's batch code relies on exactly these behaviours."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay_core.storage import ObjectStorage, StorageUnavailable
from relay_core.storage.base import CHUNK
from relay_core.storage.local import LocalStorage
from relay_core.storage.reader import lines, thread_reader
from relay_core.storage.s3 import PART, S3Storage
from tests.support.s3 import Bucket
from tests.support.servers import free_port


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStorage:
    if request.param == "local":
        return LocalStorage(tmp_path / "files")
    bucket: Bucket = request.getfixturevalue("s3_bucket")
    return S3Storage.from_url(bucket.url, bucket.endpoint_url)


async def put(storage: ObjectStorage, name: str, *chunks: bytes) -> None:
    async with storage.open_write(name) as out:
        for chunk in chunks:
            await out.write(chunk)


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_written_in_pieces_read_back_by_range_and_as_a_stream(storage: ObjectStorage):
    await put(storage, "file-a", b'{"n": 1}\n', b'{"n": 22}\n{"n"', b": 333}\n")
    data = b'{"n": 1}\n{"n": 22}\n{"n": 333}\n'
    assert await storage.size("file-a") == len(data)
    assert await read_all(storage.stream("file-a")) == data
    ranges = [(19, 11), (0, 9), (9, 10), (0, 9)]  # out of order, one twice
    assert await storage.read_ranges("file-a", ranges) == [data[o : o + n] for o, n in ranges]
    assert [line async for line in lines(storage.stream("file-a"))] == data.split(b"\n")[:-1]


async def test_a_file_larger_than_a_part_streams_in_bounded_chunks(storage: ObjectStorage):
    piece = bytes(range(256)) * 4096  # 1 MiB
    count = PART // len(piece) * 2 + 1  # three multipart parts on S3
    await put(storage, "file-big", *([piece] * count))
    size = len(piece) * count
    assert await storage.size("file-big") == size
    streamed = [len(c) async for c in storage.stream("file-big")]
    assert sum(streamed) == size and max(streamed) <= CHUNK
    edges = [(PART - 3, 6), (2 * PART - 1, 2), (size - 5, 5)]
    expected = [(piece * count)[o : o + n] for o, n in edges]
    assert await storage.read_ranges("file-big", edges) == expected


async def test_a_write_that_fails_leaves_what_was_there(storage: ObjectStorage):
    await put(storage, "file-keep", b"old\n")
    with pytest.raises(RuntimeError):
        async with storage.open_write("file-keep") as out:
            await out.write(b"new, half written")
            raise RuntimeError("the upload broke off")
    assert await read_all(storage.stream("file-keep")) == b"old\n"
    with pytest.raises(RuntimeError):
        async with storage.open_write("file-never") as out:
            await out.write(b"x" * 100)
            raise RuntimeError
    assert await storage.size("file-never") is None
    with pytest.raises(RuntimeError):  # parts already sent (S3) are not completed either
        async with storage.open_write("file-keep") as out:
            await out.write(b"y" * (PART + 1024))
            await out.write(b"y" * (PART + 1024))
            raise RuntimeError("the upload broke off after two parts")
    assert await read_all(storage.stream("file-keep")) == b"old\n"


async def test_missing_names_and_deletes(storage: ObjectStorage):
    assert await storage.size("file-none") is None
    with pytest.raises(FileNotFoundError):
        await storage.read_ranges("file-none", [(0, 1)])
    with pytest.raises(FileNotFoundError):
        await read_all(storage.stream("file-none"))
    await storage.delete("file-none")  # gone already is fine
    await put(storage, "file-gone", b"bytes\n")
    await storage.delete("file-gone")
    assert await storage.size("file-gone") is None


async def test_an_empty_file_is_stored_empty(storage: ObjectStorage):
    await put(storage, "file-empty")
    assert await storage.size("file-empty") == 0
    assert await read_all(storage.stream("file-empty")) == b""


async def test_a_thread_reads_a_stored_file_line_by_line(storage: ObjectStorage):
    """The validator's scan (a thread) reads lines through thread_reader."""
    body = b"".join(b'{"line": %d}\n' % i for i in range(20_000))  # over one chunk
    await put(storage, "file-lines", body)
    reader = thread_reader(storage.stream("file-lines"), asyncio.get_running_loop())

    def count_lines() -> tuple[int, int]:
        with reader as f:
            read = [f.readline(64) for _ in range(20_001)]
        return sum(1 for r in read if r), sum(len(r) for r in read)

    assert await asyncio.to_thread(count_lines) == (20_000, len(body))


async def test_an_unreachable_store_is_an_os_error_that_names_no_secret(s3_bucket: Bucket):
    dead = S3Storage.from_url(s3_bucket.url, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StorageUnavailable) as caught:
        await put(dead, "file-x", b"data\n")
    assert isinstance(caught.value, OSError)
    assert "relay-test-secret" not in str(caught.value)
    with pytest.raises(OSError):
        await dead.read_ranges("file-x", [(0, 1)])


async def test_a_byte_range_streams_just_those_bytes(storage: ObjectStorage):
    """A ranged download reads only its range, a chunk at a time, whatever the backend."""
    piece = bytes(range(256)) * 4096  # 1 MiB
    await put(storage, "file-ranged", *([piece] * 3))
    data = piece * 3
    for start, end in [(0, 1), (5, 300), (CHUNK - 1, CHUNK + 1), (10, 2 * CHUNK + 7)]:
        chunks = [c async for c in storage.stream("file-ranged", start, end)]
        assert b"".join(chunks) == data[start:end]
        assert max(len(c) for c in chunks) <= CHUNK
    assert await read_all(storage.stream("file-ranged", len(data) - 3)) == data[-3:]
    assert await read_all(storage.stream("file-ranged", 0, len(data) + 10)) == data
    with pytest.raises(FileNotFoundError):
        await read_all(storage.stream("file-none", 5, 10))
